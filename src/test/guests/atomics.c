/* atomics: x86 LOCK semantics across vCPUs (SDM Vol. 3A 9.1.2.2 "Software Controlled Bus Locking"). The
 * BSP starts one AP (INIT, SIPI) and both run the same loop of locked read-modify-writes on shared words
 * at once (atomics_tramp.S): LOCK ADD, XADD, a CMPXCHG increment loop, an XCHG spinlock and a BTS/BTR
 * lock each guarding a plain increment, LOCK INC/DEC on a word and two bytes of one dword, a CMPXCHG8B
 * 64-bit counter that carries into its high half, LOCK DEC/NOT/SUB/ADC/SBB/XOR/NEG, and a multi-producer
 * log whose slots are claimed with LOCK XADD. With one host thread per vCPU any non-atomic RMW loses
 * updates, so every total below is exact only if each locked instruction is one atomic operation. */
#include "rt.h"

extern char atomics_tramp[], atomics_tramp_end[];
extern void bsp_hammer(void);
#define N 60000
#define LOGN 8000
#define TRAMPOLINE 0x8000
#define V32(off) (*(volatile u32 *)(uptr)(0x7000 + (off)))
#define V16(off) (*(volatile u16 *)(uptr)(0x7000 + (off)))
#define V8(off) (*(volatile u8 *)(uptr)(0x7000 + (off)))
#define V64(off) (*(volatile u64 *)(uptr)(0x7000 + (off)))
#define LOG ((volatile u32 *)0x10000)
#define LAPIC 0xFEE00000u
#define REG(off) (*(volatile u32 *)(uptr)(LAPIC + (off)))

static void send_ipi(u32 apic_id, u32 low) {
    REG(0x310) = apic_id << 24;
    REG(0x300) = low;
    for (int i = 0; i < 1000 && (REG(0x300) & (1u << 12)); i++) { }
}

static void delay(u32 n) { for (volatile u32 i = 0; i < n; i++) { } }

/* The log: 2 * LOGN slots all written, each vCPU's LOGN entries exactly once and in its program order. */
static int log_ok(void) {
    u32 next[2] = {1, 1};
    for (u32 i = 0; i < 2 * LOGN; i++) {
        u32 v = LOG[i], cpu = v >> 16, seq = v & 0xFFFF;
        if (cpu > 1 || seq != next[cpu]) {
            printf("log slot %u holds %x, expected cpu %u seq %u or cpu %u seq %u\n", i, v, 0, next[0], 1, next[1]);
            return 0;
        }
        next[cpu]++;
    }
    return next[0] == LOGN + 1 && next[1] == LOGN + 1;
}

int main(void) {
    for (u32 off = 0; off < 0x80; off += 4) V32(off) = 0;
    for (u32 i = 0; i < 2 * LOGN + 16; i++) LOG[i] = 0;
    V64(0x30) = 0xFFFFF000u;     /* low half carries into the high one after 4096 increments */
    V32(0x44) = 0x12345678;
    V32(0x54) = 0x0F0F0F0F;
    V32(0x58) = 7;
    V8(0x27) = 0;
    memcpy((void *)TRAMPOLINE, atomics_tramp, (uptr)(atomics_tramp_end - atomics_tramp));
    REG(0xF0) = 0x1FF;
    send_ipi(1, 0x00004500); delay(10000);
    send_ipi(1, 0x00008500); delay(10000);
    send_ipi(1, 0x00004600 | (TRAMPOLINE >> 12));
    for (u32 i = 0; i < 100000000 && V32(0x00) == 0; i++) { }
    check(V32(0x00) == 1, "atomics: the AP started");
    V32(0x04) = 1;                                   /* go: both hammer at once */
    bsp_hammer();
    for (u32 i = 0; i < 1000000000 && V32(0x08) == 0; i++) __asm__ volatile("pause");
    check(V32(0x08) == 1, "atomics: the AP finished");
    u32 n2 = 2 * N;
    printf("cmpxchg retries: bsp %u, ap %u\n", V32(0x5C), V32(0x60));
    check(V32(0x10) == n2, "atomics: LOCK ADD total");
    check(V32(0x14) == n2, "atomics: LOCK XADD total");
    check(V32(0x18) == n2, "atomics: CMPXCHG loop total");
    check(V32(0x20) == n2 && V32(0x1C) == 0, "atomics: XCHG spinlock guards a plain increment");
    check(V16(0x24) == (u16)n2, "atomics: LOCK INC word");
    check(V8(0x26) == (u8)n2 && V8(0x27) == (u8)(0 - n2), "atomics: LOCK INC/DEC bytes in the same dword");
    check(V32(0x2C) == n2 && V32(0x28) == 0, "atomics: LOCK BTS/BTR lock guards a plain increment");
    check(V64(0x30) == 0xFFFFF000ull + n2, "atomics: CMPXCHG8B 64-bit counter");
    check(V32(0x40) == 0 - n2, "atomics: LOCK DEC total");
    check(V32(0x44) == 0x12345678, "atomics: LOCK NOT, an even number of times");
    check(V32(0x48) == 0 - 3 * n2, "atomics: LOCK SUB total");
    check(V32(0x4C) == n2, "atomics: LOCK ADC with carry in");
    check(V32(0x50) == 0 - n2, "atomics: LOCK SBB without borrow in");
    check(V32(0x54) == 0x0F0F0F0F, "atomics: LOCK XOR, an even number of times");
    check(V32(0x58) == 7, "atomics: LOCK NEG, an even number of times");
    check(V32(0x38) == 2 * LOGN && log_ok(), "atomics: lock-free multi-producer log");
    finish();
}
