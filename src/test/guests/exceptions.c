/* (d) exceptions: #UD delivered to a handler that prints and resumes, #DE, #GP, INT3 (a trap), and
 * #DF from a fault during delivery (SDM Vol. 3A, 6.15 and Table 6-5). */
#include "rt64.h"

static volatile int ud_count, bp_count;
static volatile u64 bp_rip;

static void on_ud(struct frame *f) {
    printf("caught #UD at %lx, resuming\n", f->rip);
    ud_count++;
    f->rip += 2;                    /* skip the UD2 */
}

static void on_bp(struct frame *f) {
    bp_count++;
    bp_rip = f->rip;                /* a trap: RIP already points after INT3 */
}

extern char int3_next[];

int main(void) {
    set_handler(6, on_ud, 0, 0);
    __asm__ volatile("ud2");
    __asm__ volatile("ud2");
    check(ud_count == 2, "#UD handler ran twice and execution resumed");

    int v = probe_div0();
    printf("#DE: vector %d rip %lx\n", v, fault_rip);
    check(v == 0 && fault_rip == (u64)probe_div0_insn, "#DE is a fault at the DIV");

    v = probe_read(0x8000000000000000ULL);
    check(v == 13 && fault_error == 0, "#GP(0) on a non-canonical address");

    u64 fixup;
    __asm__ volatile("lea 1f(%%rip), %0\n\t"
                     "mov %0, fixup_rip(%%rip)\n\t"
                     "mov $0x1230, %%eax\n\t"
                     "mov %%eax, %%ds\n\t"
                     "1: movq $0, fixup_rip(%%rip)"
                     : "=&r"(fixup) :: "rax", "memory");
    printf("#GP from mov ds: vector %d error %lx\n", (int)fault_vector, fault_error);
    check(fault_vector == 13 && fault_error == 0x1230, "#GP(selector) loading DS beyond the GDT limit");

    set_handler(3, on_bp, 3, 0);
    __asm__ volatile("int3\n\t.globl int3_next\nint3_next:");
    check(bp_count == 1 && bp_rip == (u64)int3_next, "INT3 traps with RIP after the instruction");

    set_gate_present(0, 0);          /* #DE cannot be delivered: #NP, contributory twice -> #DF */
    v = probe_div0();
    set_gate_present(0, 1);
    printf("double fault: vector %d error %lx\n", v, fault_error);
    check(v == 8 && fault_error == 0, "#NP while delivering #DE escalates to #DF");

    finish();
}
