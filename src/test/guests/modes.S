/* (b) modes: 32-bit protected mode (multiboot entry) -> 16-bit protected -> real mode -> protected
 * -> IA-32e compatibility mode (PAE, EFER.LME, CR0.PG) -> 64-bit mode -> compatibility mode ->
 * paging off, back to legacy protected mode (SDM Vol. 3A, 10.9 and 10.8.5.4). Prints one line per
 * mode, with a check that proves the mode (operand size, CS, EFER.LMA), and exits 0 on success. */
#define MB_FLAGS 0x3
#define REAL_BASE 0x8000             /* the real-mode blob is copied here (below 1 MiB) */
#define RM(x) ((x) - rm_blob)         /* offset of a blob label from CS/DS base REAL_BASE */

    .section .multiboot, "a"
    .align 4
    .long 0x1BADB002, MB_FLAGS, -(0x1BADB002 + MB_FLAGS)

    .text
    .code32
    .globl _start
_start:
    mov $stack_top, %esp
    cmp $0x2BADB002, %eax
    jne fail32
    mov $m_pm32, %esi
    call print32
    lgdt gdt_ptr
    ljmp $0x08, $1f
1:  mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    /* Copy the real-mode blob below 1 MiB and enter it through a 16-bit code segment based there. */
    mov $rm_blob, %esi
    mov $REAL_BASE, %edi
    mov $(rm_blob_end - rm_blob), %ecx
    cld
    rep movsb
    ljmp $0x18, $RM(pm16)

/* 32-bit protected mode again, entered from real mode. */
pm32_again:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $stack_top, %esp
    mov $m_pm32b, %esi
    call print32
    /* Identity-map 1 GiB with 2 MiB pages and enable IA-32e mode. */
    mov $pdpt, %eax
    or $3, %eax
    mov %eax, pml4
    mov $pd, %eax
    or $3, %eax
    mov %eax, pdpt
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, pd(,%ecx,8)
    inc %ecx
    cmp $512, %ecx
    jb 2b
    mov $pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax
    mov %eax, %cr4
    mov $0xC0000080, %ecx
    rdmsr
    or $0x100, %eax                 /* LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000000, %eax
    mov %eax, %cr0                  /* now in compatibility mode: LMA=1, CS.L=0 */
    mov $0xC0000080, %ecx
    rdmsr
    test $0x400, %eax               /* EFER.LMA */
    jz fail32
    mov $m_compat, %esi
    call print32
    ljmp $0x28, $lm64

compat_back:                        /* compatibility mode, from 64-bit via far return */
    mov $0x10, %ax
    mov %ax, %ss
    mov %cr0, %eax
    and $0x7FFFFFFF, %eax
    mov %eax, %cr0                  /* paging off: IA-32e mode is left, LMA clears */
    mov $0xC0000080, %ecx
    rdmsr
    test $0x400, %eax
    jnz fail32
    and $~0x100, %eax
    wrmsr
    mov %cr4, %eax
    and $~0x20, %eax
    mov %eax, %cr4
    mov $m_back, %esi
    call print32
    mov $m_ok, %esi
    call print32
    xor %eax, %eax
    outl %eax, $0xF4
    hlt

fail32:
    mov $m_fail, %esi
    call print32
    mov $1, %eax
    outl %eax, $0xF4
    hlt

print32:                            /* ESI = NUL-terminated string */
    push %eax
    push %edx
1:  lodsb
    test %al, %al
    jz 3f
    mov %al, %ah
    mov $0x3FD, %dx
2:  inb %dx, %al
    test $0x20, %al
    jz 2b
    mov $0x3F8, %dx
    mov %ah, %al
    outb %al, %dx
    jmp 1b
3:  pop %edx
    pop %eax
    ret

    .code64
lm64:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %ss
    movabs $0x123456789, %rax       /* a 64-bit immediate survives only in 64-bit mode */
    shr $32, %rax
    cmp $1, %rax
    jne 9f
    mov $m_lm64, %esi
1:  lodsb
    test %al, %al
    jz 3f
    mov %al, %bl
    mov $0x3FD, %dx
2:  inb %dx, %al
    test $0x20, %al
    jz 2b
    mov $0x3F8, %dx
    mov %bl, %al
    outb %al, %dx
    jmp 1b
3:  pushq $0x08
    mov $compat_back, %eax          /* zero-extends: the image lies below 4 GiB */
    push %rax
    lretq
9:  mov $1, %eax
    outl %eax, $0xF4
    hlt

/* ---- position-independent real-mode blob, run at REAL_BASE ---- */
    .code16
rm_blob:
pm16:                               /* 16-bit protected mode, CS base REAL_BASE */
    mov $0x20, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    lidt RM(ivt_ptr)
    mov %cr0, %eax
    and $~1, %eax
    mov %eax, %cr0
    ljmp $(REAL_BASE >> 4), $RM(real)
real:
    mov %cs, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $RM(rm_stack_top), %sp
    cmp $(REAL_BASE >> 4), %ax
    jne 9f
    mov $RM(m_real), %si
1:  lodsb
    test %al, %al
    jz 3f
    mov %al, %bl
    mov $0x3FD, %dx
2:  inb %dx, %al
    test $0x20, %al
    jz 2b
    mov $0x3F8, %dx
    mov %bl, %al
    outb %al, %dx
    jmp 1b
3:  /* 16-bit operand size is the default here: a 16-bit add wraps. */
    mov $0xFFFF, %ax
    add $1, %ax
    jnz 9f
    lgdtl RM(rm_gdt_ptr)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    .byte 0x66, 0xEA                /* ljmpl $0x08, $pm32_again */
    .long pm32_again
    .word 0x08
9:  mov $1, %eax
    outl %eax, $0xF4
    hlt
m_real: .asciz "real mode: CS=0800, 16-bit arithmetic\n"
    .align 4
ivt_ptr: .word 0x3FF
    .long 0
rm_gdt_ptr: .word gdt_end - gdt - 1
    .long gdt
    .align 2
    .space 256
rm_stack_top:
rm_blob_end:

    .data
    .align 8
gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF        /* 0x08 32-bit code */
    .quad 0x00CF92000000FFFF        /* 0x10 data */
    .quad 0x00009A008000FFFF        /* 0x18 16-bit code, base REAL_BASE, limit 64 KiB */
    .quad 0x000092008000FFFF        /* 0x20 16-bit data, base REAL_BASE */
    .quad 0x00AF9A000000FFFF        /* 0x28 64-bit code */
gdt_end:
gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt
m_pm32:  .asciz "protected mode: 32-bit, flat, paging off\n"
m_pm32b: .asciz "protected mode again, from real mode\n"
m_compat: .asciz "compatibility mode: EFER.LMA=1\n"
m_lm64:  .asciz "64-bit mode: 64-bit immediate\n"
m_back:  .asciz "protected mode, paging off, EFER.LMA=0\n"
m_ok:    .asciz "modes: PASSED\n"
m_fail:  .asciz "modes: FAILED\n"

    .bss
    .align 4096
pml4: .space 4096
pdpt: .space 4096
pd:   .space 4096
    .space 4096
stack_top:
