/* rt32 entry: a Multiboot v1 kernel (ELF32). The loader enters here in 32-bit protected mode,
 * paging off, EAX = 0x2BADB002, EBX = multiboot_info (Multiboot 0.6.96, 3.2). */
#define MB_FLAGS 0x3                    /* page-align modules, memory info */
    .section .multiboot, "a"
    .align 4
    .long 0x1BADB002, MB_FLAGS, -(0x1BADB002 + MB_FLAGS)

    .text
    .globl _start
_start:
    mov $stack_top, %esp
    push %ebx
    push %eax
    call main
    push %eax
    call exit

    .bss
    .align 16
    .space 16384
stack_top:
