/* The atomics guest's hammer loop (atomics.c), once as the AP's real-mode trampoline (copied to 0x8000,
 * entered by SIPI at 0800:0000, DS = 0, ES = 0x1000 for the log) and once as a 32-bit function the BSP
 * calls (flat segments). Both vCPUs run it at the same time on the shared words at 0x7000-0x7060 and
 * the log at 0x10000; atomics.c checks the exact totals. The variables (offsets from 0x7000):
 *   00 ready  04 go  08 done  10 LOCK ADD  14 LOCK XADD  18 CMPXCHG loop  1C XCHG spinlock word
 *   20 counter under the XCHG lock  24 LOCK INC word / 26 LOCK INC byte / 27 LOCK DEC byte (one dword)
 *   28 BTS/BTR lock word  2C counter under the BTS lock  30 CMPXCHG8B 64-bit counter
 *   38 log tail (LOCK XADD)  40 LOCK DEC  44 LOCK NOT twice  48 LOCK SUB 3  4C LOCK ADC 0 with CF=1
 *   50 LOCK SBB 1 with CF=0  54 LOCK XOR twice  58 LOCK NEG twice  5C CMPXCHG retries of this vCPU (per-CPU, 5C/60)
 * Per iteration each vCPU also appends (cpu << 16 | iteration + 1) to the log while iteration < LOGN, at a
 * slot claimed with LOCK XADD: a multi-producer lock-free queue. */
#define N 60000
#define LOGN 8000
#define V(off) (0x7000 + off)

.macro HAMMER cpu, retries
    xor %esi, %esi
1:  lock addl $1, V(0x10)
    mov $1, %eax
    lock xaddl %eax, V(0x14)
2:  mov V(0x18), %eax
    lea 1(%eax), %edx
    lock cmpxchgl %edx, V(0x18)
    jz 3f
    incl \retries
    jmp 2b
3:  mov $1, %eax
    xchgl %eax, V(0x1C)
    test %eax, %eax
    jnz 3b
    mov V(0x20), %eax
    inc %eax
    mov %eax, V(0x20)
    movl $0, V(0x1C)
    lock incw V(0x24)
    lock incb V(0x26)
    lock decb V(0x27)
    xor %edi, %edi
4:  lock btsl %edi, V(0x28)
    jc 4b
    incl V(0x2C)
    lock btrl $0, V(0x28)
5:  mov V(0x30), %eax
    mov V(0x34), %edx
    mov %eax, %ebx
    mov %edx, %ecx
    add $1, %ebx
    adc $0, %ecx
    lock cmpxchg8b V(0x30)
    jnz 5b
    lock decl V(0x40)
    lock notl V(0x44)
    lock notl V(0x44)
    lock subl $3, V(0x48)
    stc
    lock adcl $0, V(0x4C)
    clc
    lock sbbl $1, V(0x50)
    lock xorl $0x5a5a, V(0x54)
    lock xorl $0x5a5a, V(0x54)
    lock negl V(0x58)
    lock negl V(0x58)
    cmp $LOGN, %esi
    jae 6f
    mov $1, %eax
    lock xaddl %eax, V(0x38)
    lea 1(%esi), %edx
    or $(\cpu << 16), %edx
    LOGSTORE
6:  inc %esi
    cmp $N, %esi
    jb 1b
.endm

    .section .rodata
    .globl atomics_tramp, atomics_tramp_end
    .code16
atomics_tramp:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov $0x1000, %ax
    mov %ax, %es
    lock incl V(0x00)
7:  pause
    cmpl $0, V(0x04)
    je 7b
.macro LOGSTORE
    movl %edx, %es:(,%eax,4)
.endm
    HAMMER 1, V(0x60)
    lock incl V(0x08)
8:  hlt
    jmp 8b
atomics_tramp_end:

    .text
    .code32
    .globl bsp_hammer
bsp_hammer:
    push %ebx
    push %esi
    push %edi
.purgem LOGSTORE
.macro LOGSTORE
    movl %edx, 0x10000(,%eax,4)
.endm
    HAMMER 0, V(0x5C)
    pop %edi
    pop %esi
    pop %ebx
    ret
    .section .note.GNU-stack, "", @progbits
