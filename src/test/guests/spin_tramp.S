/* Real-mode AP trampoline for the steal guest, copied to 0x8000 and entered by SIPI at 0800:0000:
 * counts itself in at 0x7000, then spins forever (a runnable vCPU competing for the host thread). */
    .section .rodata
    .globl spin_tramp, spin_tramp_end
    .code16
spin_tramp:
    cli
    xor %ax, %ax
    mov %ax, %ds
    lock incl 0x7000
1:  incl 0x7004
    jmp 1b
spin_tramp_end:
    .code32
    .section .note.GNU-stack, "", @progbits
