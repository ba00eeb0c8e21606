/* (e) user mode: ring 3 entered with IRETQ, system calls with SYSCALL/SYSRET and INT 0x80/IRETQ,
 * privileged instructions and supervisor pages refused with #GP/#PF (U/S bit, error code bit 2). */
#include "rt64.h"

static u8 super_page[4096] __attribute__((aligned(4096)));
static u8 ro_page[4096] __attribute__((aligned(4096)));
static u8 user_stack[8192] __attribute__((aligned(16)));
#define SUPER_VA (MAP_BASE + 0x10000)
#define RO_VA (MAP_BASE + 0x11000)

static volatile u64 syscall_cs, syscall_rflags;
static volatile int user_cpl, sys_ok, gp_vec, pf_vec, pf_err, pf_write_err, iret_ok;

u64 syscall_dispatch(u64 nr, u64 arg, u64 user_rflags) {
    syscall_cs = read_cs();
    syscall_rflags = user_rflags;
    if (nr == 1) putc((char)arg);
    if (nr == 2) return arg * 2;
    return 0;
}

static u64 sys(u64 nr, u64 arg) {
    u64 r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(arg) : "rcx", "r11", "memory");
    return r;
}

static void uputs(const char *s) { while (*s) sys(1, (u8)*s++); }

static void int80_putc(char c) {
    __asm__ volatile("int $0x80" :: "a"(1ULL), "D"((u64)(u8)c) : "memory");
}

static void user_main(void) {
    user_cpl = read_cs() & 3;
    uputs("hello from ring 3 via SYSCALL\n");
    sys_ok = sys(2, 21) == 42;
    const char *m = "hello from ring 3 via INT 0x80\n";
    while (*m) int80_putc(*m++);
    iret_ok = 1;
    gp_vec = 0;
    /* Privileged instruction at CPL 3: #GP(0). */
    {
        u64 fx;
        __asm__ volatile("lea 1f(%%rip), %0\n\tmov %0, fixup_rip(%%rip)\n\tcli\n\t1: movq $0, fixup_rip(%%rip)"
                         : "=&r"(fx) :: "memory");
        gp_vec = (int)fault_vector;
    }
    pf_vec = probe_read(SUPER_VA);
    pf_err = (int)fault_error;
    probe_write(RO_VA, 1);
    pf_write_err = (int)fault_error;
    __asm__ volatile("int $0x80" :: "a"(0ULL), "D"(0x5AULL));
    for (;;) { }
}

int main(void) {
    map_page(SUPER_VA, (u64)super_page, PTE_P | PTE_RW);
    map_page(RO_VA, (u64)ro_page, PTE_P | PTE_US);
    u64 r = enter_user(user_main, (u64)(user_stack + sizeof user_stack));
    check(r == 0x5A, "INT 0x80 from ring 3 returned to the kernel with its argument");
    check(user_cpl == 3, "user code runs at CPL 3");
    check(sys_ok, "SYSCALL/SYSRET round trip with a result");
    check(syscall_cs == 0x08, "SYSCALL enters with the kernel CS from STAR");
    check((syscall_rflags & 0x200) != 0, "SYSCALL saved the user RFLAGS (IF=1) in R11");
    check(iret_ok, "INT 0x80 putc returned to ring 3 through IRETQ");
    check(gp_vec == 13, "CLI at CPL 3 raises #GP");
    printf("user read of supervisor page: vector %d error %x\n", pf_vec, pf_err);
    check(pf_vec == 14 && pf_err == 0x5, "user read of a supervisor page: #PF error P|U");
    check(pf_write_err == 0x7, "user write to a read-only user page: #PF error P|W|U");
    finish();
}
