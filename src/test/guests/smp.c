/* (h) smp: the BSP starts the application processors with INIT and two start-up IPIs through its
 * LAPIC's ICR (SDM Vol. 3A, 8.4.4.1 "Typical BSP Initialization Sequence"). Each AP runs a real-mode
 * trampoline copied to 0x8000 (SIPI vector 0x08) that counts itself in at 0x7000 and halts. */
#include "rt.h"

extern char ap_tramp[], ap_tramp_end[];
#define TRAMPOLINE 0x8000
#define COUNTER ((volatile u32 *)0x7000)
#define LAPIC 0xFEE00000u
#define REG(off) (*(volatile u32 *)(uptr)(LAPIC + (off)))
#define ID 0x20
#define SVR 0xF0
#define ICR_LO 0x300
#define ICR_HI 0x310

static void send_ipi(u32 apic_id, u32 low) {
    REG(ICR_HI) = apic_id << 24;
    REG(ICR_LO) = low;
    for (int i = 0; i < 1000 && (REG(ICR_LO) & (1u << 12)); i++) { }  /* delivery status */
}

static void delay(u32 n) { for (volatile u32 i = 0; i < n; i++) { } }

int main(void) {
    *COUNTER = 0;
    memcpy((void *)TRAMPOLINE, ap_tramp, (uptr)(ap_tramp_end - ap_tramp));
    REG(SVR) = 0x1FF;                                   /* software-enable the LAPIC, spurious vector 0xFF */
    u32 bsp = REG(ID) >> 24;
    printf("bsp apic id %u\n", bsp);
    send_ipi(1, 0x00004500);                            /* INIT, level assert, to APIC ID 1 */
    delay(10000);
    send_ipi(1, 0x00008500);                            /* INIT level de-assert */
    delay(10000);
    send_ipi(1, 0x00004600 | (TRAMPOLINE >> 12));      /* STARTUP */
    delay(10000);
    send_ipi(1, 0x00004600 | (TRAMPOLINE >> 12));      /* second STARTUP: ignored by a running AP */
    for (u32 i = 0; i < 10000000 && *COUNTER == 0; i++) { }
    delay(100000);
    printf("application processors started: %u\n", *COUNTER);
    check(bsp == 0, "the BSP has APIC ID 0");
    check(*COUNTER == 1, "one AP ran the trampoline exactly once");
    finish();
}
