/* Real-mode AP trampoline, copied to 0x8000 and entered by SIPI at 0800:0000. */
    .section .rodata
    .globl ap_tramp, ap_tramp_end
    .code16
ap_tramp:
    cli
    xor %ax, %ax
    mov %ax, %ds
    lock incl 0x7000
1:  hlt
    jmp 1b
ap_tramp_end:
    .code32
    .section .note.GNU-stack, "", @progbits
