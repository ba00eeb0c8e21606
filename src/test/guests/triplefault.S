/* (d') triple fault: prints a line, loads an empty IDT and executes UD2. #UD cannot be delivered
 * (#GP), nor can #GP (-> #DF), nor #DF: the processor shuts down (SDM Vol. 3A, 6.15, interrupt 8). */
#define MB_FLAGS 0x3
    .section .multiboot, "a"
    .align 4
    .long 0x1BADB002, MB_FLAGS, -(0x1BADB002 + MB_FLAGS)
    .text
    .code32
    .globl _start
_start:
    mov $msg, %esi
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
3:  lidt idt_empty
    ud2
    /* Not reached: report failure through the debug-exit device. */
    mov $0x7F, %eax
    outl %eax, $0xF4
    hlt
    .data
idt_empty:
    .word 0
    .long 0
msg: .asciz "about to triple fault\n"
