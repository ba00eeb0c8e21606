/* rt64 entry: a Multiboot v1 kernel entered in 32-bit protected mode (paging off) that builds an
 * identity map of the first 1 GiB with 2 MiB pages (user-accessible), enables PAE, EFER.LME|NXE|SCE
 * and paging, and jumps to 64-bit code (SDM Vol. 3A, 10.8.5). Also holds the GDT/TSS, the
 * exception/interrupt stubs, the SYSCALL entry and the ring-3 entry/return trampolines. */
#define MB_FLAGS 0x3
    .section .multiboot, "a"
    .align 4
    .long 0x1BADB002, MB_FLAGS, -(0x1BADB002 + MB_FLAGS)

    .section .text.entry, "ax"
    .code32
    .globl _start
_start:
    mov %eax, %edi
    mov %ebx, %esi
    mov $stack_top, %esp
    mov $pdpt, %eax
    or $7, %eax
    mov %eax, pml4
    mov $pd, %eax
    or $7, %eax
    mov %eax, pdpt
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x87, %eax                  /* P | RW | US | PS */
    mov %eax, pd(,%ecx,8)
    movl $0, pd+4(,%ecx,8)
    inc %ecx
    cmp $512, %ecx
    jb 1b
    mov $pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax                  /* PAE */
    mov %eax, %cr4
    mov $0xC0000080, %ecx
    rdmsr
    or $0x901, %eax                 /* SCE | LME | NXE */
    wrmsr
    mov %cr0, %eax
    or $0x80000000, %eax            /* PG: IA-32e mode becomes active (LMA) */
    mov %eax, %cr0
    lgdt gdt_ptr
    ljmp $0x08, $long_entry

    .code64
long_entry:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov $stack_top, %rsp
    push %rdi
    push %rsi
    call rt64_init
    pop %rsi
    pop %rdi
    call main
    mov %eax, %edi
    call exit

/* ---- exception and interrupt stubs: push a uniform frame (struct frame in rt64.h) ---- */
.macro STUB vec, err
    .globl isr\vec
isr\vec:
    .if \err == 0
    push $0
    .endif
    push $\vec
    jmp isr_common
.endm
STUB 0,0; STUB 1,0; STUB 2,0; STUB 3,0; STUB 4,0; STUB 5,0; STUB 6,0; STUB 7,0
STUB 8,1; STUB 9,0; STUB 10,1; STUB 11,1; STUB 12,1; STUB 13,1; STUB 14,1; STUB 15,0
STUB 16,0; STUB 17,1; STUB 18,0; STUB 19,0; STUB 20,0; STUB 21,1; STUB 128,0

isr_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    call isr_dispatch
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp
    iretq

/* ---- probes: return -1 when the access completes, else the vector of the fault taken ---- */
    .globl probe_read, probe_write, probe_exec, probe_div0, probe_div0_insn
probe_read:
    lea 9f(%rip), %rax
    mov %rax, fixup_rip(%rip)
    movzbl (%rdi), %eax
    jmp 8f
probe_write:
    lea 9f(%rip), %rax
    mov %rax, fixup_rip(%rip)
    mov %sil, (%rdi)
    jmp 8f
probe_exec:                         /* the target must hold "jmp *%rcx" (ff e1) */
    lea 9f(%rip), %rax
    mov %rax, fixup_rip(%rip)
    lea 8f(%rip), %rcx
    jmp *%rdi
probe_div0:
    lea 9f(%rip), %rax
    mov %rax, fixup_rip(%rip)
    xor %ecx, %ecx
    mov $1, %eax
    xor %edx, %edx
probe_div0_insn:
    div %ecx
8:  movq $0, fixup_rip(%rip)
    mov $-1, %eax
    ret
9:  movq $0, fixup_rip(%rip)
    mov fault_vector(%rip), %eax
    ret

/* ---- ring 3: enter_user(fn, user_rsp) returns the value passed to the exit-user call ---- */
    .globl enter_user, user_return
enter_user:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, kernel_saved_rsp(%rip)
    push $0x23                      /* SS: user data, RPL 3 */
    push %rsi
    push $0x202                     /* RFLAGS: IF */
    push $0x2b                      /* CS: 64-bit user code, RPL 3 */
    push %rdi
    iretq
user_return:
    mov kernel_saved_rsp(%rip), %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret

/* ---- SYSCALL entry (LSTAR): RAX = number, RDI = argument; RCX/R11 hold the user RIP/RFLAGS ---- */
    .globl syscall_entry
syscall_entry:
    mov %rsp, syscall_user_rsp(%rip)
    lea syscall_stack_top(%rip), %rsp
    push %rcx
    push %r11
    push %rdi                       /* the C dispatcher may clobber the caller-saved registers */
    push %rsi
    push %rdx
    push %r8
    push %r9
    push %r10
    mov %rdi, %rsi
    mov %rax, %rdi
    mov %r11, %rdx
    call syscall_dispatch
    pop %r10
    pop %r9
    pop %r8
    pop %rdx
    pop %rsi
    pop %rdi
    pop %r11
    pop %rcx
    mov syscall_user_rsp(%rip), %rsp
    sysretq

    .data
    .align 16
    .globl gdt
gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF        /* 0x08 kernel code, 64-bit */
    .quad 0x00CF92000000FFFF        /* 0x10 kernel data */
    .quad 0x00CFFA000000FFFF        /* 0x18 user code, 32-bit (SYSRET CS base) */
    .quad 0x00CFF2000000FFFF        /* 0x20 user data */
    .quad 0x00AFFA000000FFFF        /* 0x28 user code, 64-bit */
    .quad 0, 0                      /* 0x30 TSS, filled by rt64_init */
gdt_end:
gdt_ptr:
    .word gdt_end - gdt - 1
    .quad gdt

    .bss
    .align 4096
    .globl pml4, pdpt, pd
pml4: .space 4096
pdpt: .space 4096
pd:   .space 4096
    .align 16
    .space 16384
stack_top:
    .space 8192
syscall_stack_top:
kernel_saved_rsp: .quad 0
syscall_user_rsp: .quad 0
