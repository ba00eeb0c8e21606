/* abi: exercises one hypervisor personality's paravirtual ABI without Linux. The multiboot command line
 * names it: kvm, hyperv, xen, vmware, bare, or "garbage" (random hypercalls, MSRs and backdoor calls
 * against whatever the VM presents; the guest must survive them and the VMM must stay alive).
 * Each check prints "ok <what>" or "FAIL <what>"; details go on the line before a failure.
 * Facts: /work/shared/reference/pv-abi.md; Linux 6.1 arch/x86/kernel/{kvm,kvmclock,pvclock}.c,
 * arch/x86/hyperv/hv_init.c, arch/x86/xen/, arch/x86/kernel/cpu/vmware.c. */
#include "rt64.h"

struct mbi { u32 flags, mem_lower, mem_upper, boot_device, cmdline; };

/* ---- primitives ---- */

static void cpuid(u32 leaf, u32 sub, u32 r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}
static inline u64 rdtsc(void) { u32 lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return (u64)hi << 32 | lo; }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

/* Faults the checks provoke on purpose (#GP from an MSR, #UD from a hypercall) resume after the
 * instruction: the handler records the vector and skips trap_skip bytes. */
static volatile int trapped = -1;
static volatile u64 trap_skip;
static void on_trap(struct frame *f) { trapped = (int)f->vector; f->rip += trap_skip; }
static void on_nmi(struct frame *f) { (void)f; }

static int rdmsr_safe(u32 msr, u64 *v) {
    u32 lo = 0, hi = 0;
    trapped = -1; trap_skip = 2;
    __asm__ volatile("rdmsr" : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
    *v = (u64)hi << 32 | lo;
    return trapped;
}
static int wrmsr_safe(u32 msr, u64 v) {
    trapped = -1; trap_skip = 2;
    __asm__ volatile("wrmsr" :: "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)) : "memory");
    return trapped;
}

/* VMMCALL with every argument register a hypervisor may read: RAX, RBX, RCX, RDX, RSI, RDI, R8, R10.
 * On #UD rax comes back unchanged and trapped = 6. */
struct regs { u64 rax, rbx, rcx, rdx, rsi, rdi, r8, r10; };
static void hypercall_regs(struct regs *r) {
    register u64 r8 __asm__("r8") = r->r8;
    register u64 r10 __asm__("r10") = r->r10;
    trapped = -1; trap_skip = 3;
    __asm__ volatile("vmmcall"
                     : "+a"(r->rax), "+b"(r->rbx), "+c"(r->rcx), "+d"(r->rdx), "+S"(r->rsi), "+D"(r->rdi), "+r"(r8), "+r"(r10)
                     :: "memory", "r9", "r11");
    r->r8 = r8; r->r10 = r10;
}
static int vmcall_ud(void) {
    u64 a = 0;
    trapped = -1; trap_skip = 3;
    __asm__ volatile("vmcall" : "+a"(a) :: "memory", "rbx", "rcx", "rdx", "rsi", "rdi");
    return trapped == 6;
}

static int check_sig(const u32 r[4], const char *sig) {
    char s[13];
    memcpy(s, &r[1], 4); memcpy(s + 4, &r[2], 4); memcpy(s + 8, &r[3], 4);
    s[12] = 0;
    if (memcmp(s, sig, 12) != 0) printf("  signature '%s' expected '%s'\n", s, sig);
    return memcmp(s, sig, 12) == 0;
}

static void spin(u32 n) { for (volatile u32 i = 0; i < n; i++) { } }

static const char *cmdline = "";
static int arg_is(const char *name) {
    uptr n = strlen(name);
    return memcmp(cmdline, name, n) == 0 && (cmdline[n] == 0 || cmdline[n] == ' ');
}

/* ---- pvclock (struct pvclock_vcpu_time_info, shared by KVM and Xen; pvclock.c) ---- */

struct pvti {
    volatile u32 version, pad0;
    volatile u64 tsc_timestamp, system_time;
    volatile u32 tsc_to_system_mul;
    volatile signed char tsc_shift;
    volatile u8 flags, pad[2];
};

static u64 scale_delta(u64 delta, u32 mul, int shift) {
    if (shift < 0) delta >>= -shift; else delta <<= shift;
    return (u64)(((unsigned __int128)delta * mul) >> 32);
}

/* pvclock_clocksource_read: retry while the version is odd or changed. Returns ns, or ~0 when the
 * version never settled. *ver gets the version used. */
static u64 pvclock_read(struct pvti *p, u32 *ver, u8 *flags, u64 *tsc_used) {
    for (int tries = 0; tries < 1000; tries++) {
        u32 v = p->version;
        barrier();
        u64 ts = p->tsc_timestamp, st = p->system_time;
        u32 mul = p->tsc_to_system_mul;
        int shift = p->tsc_shift;
        u8 f = p->flags;
        u64 tsc = rdtsc();
        barrier();
        if ((v & 1) || v != p->version) continue;
        *ver = v;
        if (flags) *flags = f;
        if (tsc_used) *tsc_used = tsc;
        return st + scale_delta(tsc - ts, mul, shift);
    }
    return ~0ULL;
}

/* TSC kHz implied by the pvti's scale (pvclock_tsc_khz). */
static u64 pvclock_khz(struct pvti *p) {
    u64 khz = (1000000ULL << 32) / p->tsc_to_system_mul;
    return p->tsc_shift < 0 ? khz << -p->tsc_shift : khz >> p->tsc_shift;
}

/* Reads the clock 200 times with spinning in between: every version even, time never going back, and
 * advancing overall; also checks that the elapsed pvclock time equals the elapsed TSC (the values the
 * reads used) scaled by the structure's own factor, i.e. no rewrite of the structure moved the clock. */
static void result(int ok, const char *who, const char *what) {
    printf("%s %s %s\n", ok ? "ok" : "FAIL", who, what);
    if (!ok) failures++;
}

static void check_pvclock(struct pvti *p, const char *who) {
    u32 ver;
    u8 fl;
    u64 tsc0, tsc1;
    u64 prev = pvclock_read(p, &ver, &fl, &tsc0);
    u64 t0 = prev;
    int even = prev != ~0ULL && ver != 0, mono = 1;
    for (int i = 0; i < 200; i++) {
        spin(200);
        u64 now = pvclock_read(p, &ver, 0, &tsc1);
        if (now == ~0ULL || ver == 0) even = 0;
        if (now < prev) { mono = 0; printf("  %s went back: %llx after %llx\n", who, now, prev); }
        prev = now;
    }
    u64 by_tsc = scale_delta(tsc1 - tsc0, p->tsc_to_system_mul, p->tsc_shift);
    u64 elapsed = prev - t0;
    u64 khz = pvclock_khz(p);
    printf("  %s: version %u flags %u, %llu ns over %llu TSC ticks (scaled %llu ns), tsc %llu kHz\n",
           who, ver, fl, elapsed, tsc1 - tsc0, by_tsc, khz);
    result(even, who, "version settles even and non-zero");
    result(mono, who, "is monotonic over 200 reads");
    result(elapsed > 0, who, "advances");
    u64 diff = elapsed > by_tsc ? elapsed - by_tsc : by_tsc - elapsed;
    result(diff <= by_tsc / 10000 + 1000, who, "elapsed time matches rdtsc scaled by mul/shift");
    result(khz >= 100000 && khz <= 100000000, who, "TSC frequency from mul/shift is plausible");
}

/* Scratch pages for structures the hypervisor writes. */
static u8 page_a[4096] __attribute__((aligned(4096)));
static u8 page_b[4096] __attribute__((aligned(4096)));
static u8 page_c[4096] __attribute__((aligned(4096)));
static u8 page_d[4096] __attribute__((aligned(4096)));
static u8 page_e[4096] __attribute__((aligned(4096)));
static u8 page_f[4096] __attribute__((aligned(4096)));

#define CHECKF(cond, ...) do { int c_ = (cond); if (!c_) printf("  " __VA_ARGS__); check(c_, _what); } while (0)

/* ================================ KVM ================================ */

static long kvm_hc(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3) {
    struct regs r = {.rax = nr, .rbx = a0, .rcx = a1, .rdx = a2, .rsi = a3};
    hypercall_regs(&r);
    return (long)r.rax;
}

static void test_kvm(void) {
    u32 r[4];
    u64 v;
    const char *_what;
    cpuid(1, 0, r);
    check(r[2] >> 31, "kvm: CPUID.1:ECX.hypervisor is set");
    /* Find KVM the way Linux does (hypervisor_cpuid_base: every 0x100 from 0x40000000): stacked behind
     * Hyper-V it sits at 0x40000100. */
    u32 base = 0;
    for (u32 b = 0x40000000; b < 0x40010000 && !base; b += 0x100) {
        cpuid(b, 0, r);
        if (r[1] == 0x4b4d564b && r[2] == 0x564b4d56 && r[3] == 0x4d) base = b;
    }
    printf("  KVM base %x\n", base);
    cpuid(base, 0, r);
    check(base && check_sig(r, "KVMKVMKVM\0\0\0"), "kvm: signature KVMKVMKVM found by the CPUID base scan");
    _what = "kvm: max leaf covers KVM_CPUID_FEATURES";
    CHECKF(r[0] >= base + 1, "eax %x\n", r[0]);
    cpuid(base + 1, 0, r);
    static const struct { int bit; const char *name; } feats[] = {
        {0, "kvm: feature CLOCKSOURCE"}, {1, "kvm: feature NOP_IO_DELAY"}, {3, "kvm: feature CLOCKSOURCE2"},
        {5, "kvm: feature STEAL_TIME"}, {6, "kvm: feature PV_EOI"}, {7, "kvm: feature PV_UNHALT"},
        {9, "kvm: feature PV_TLB_FLUSH"}, {11, "kvm: feature PV_SEND_IPI"}, {12, "kvm: feature POLL_CONTROL"},
        {13, "kvm: feature PV_SCHED_YIELD"}, {24, "kvm: feature CLOCKSOURCE_STABLE_BIT"}};
    for (unsigned i = 0; i < sizeof feats / sizeof feats[0]; i++) check((r[0] >> feats[i].bit) & 1, feats[i].name);
    check(!((r[0] >> 4) & 1) && !((r[0] >> 14) & 1), "kvm: async PF not advertised");

    /* kvmclock: MSR_KVM_SYSTEM_TIME_NEW = GPA | enable (kvmclock.c kvm_register_clock) */
    struct pvti *p = (struct pvti *)page_a;
    check(wrmsr_safe(0x4b564d01, (u64)p | 1) < 0, "kvm: wrmsr SYSTEM_TIME_NEW");
    check(rdmsr_safe(0x4b564d01, &v) < 0 && v == ((u64)p | 1), "kvm: SYSTEM_TIME_NEW reads back");
    u32 ver1 = p->version;
    check(p->flags & 1, "kvm: pvclock PVCLOCK_TSC_STABLE_BIT set");
    check_pvclock(p, "kvm: kvmclock");
    check(wrmsr_safe(0x4b564d01, (u64)p | 1) < 0 && p->version > ver1 && !(p->version & 1),
          "kvm: re-registering bumps the version by an even step");
    /* The legacy MSR 0x12 reaches the same structure. */
    struct pvti *q = (struct pvti *)(page_a + 64);
    check(wrmsr_safe(0x12, (u64)q | 1) < 0 && q->version && !(q->version & 1), "kvm: legacy MSR 0x12 fills a pvti");
    check_pvclock(q, "kvm: legacy kvmclock");
    /* A GPA outside RAM is accepted and simply not written (KVM ignores it until it becomes valid). */
    check(wrmsr_safe(0x4b564d01, 0xFFFFFFFFF000ULL | 1) < 0, "kvm: SYSTEM_TIME outside RAM does not fault");
    check(wrmsr_safe(0x4b564d01, (u64)p | 1) < 0, "kvm: SYSTEM_TIME re-registered");

    /* Wall clock: MSR_KVM_WALL_CLOCK_NEW = GPA of {version, sec, nsec} */
    volatile u32 *wc = (volatile u32 *)(page_b);
    check(wrmsr_safe(0x4b564d00, (u64)wc) < 0, "kvm: wrmsr WALL_CLOCK_NEW");
    _what = "kvm: wall clock version even, seconds after 2020, nsec < 1e9";
    CHECKF(wc[0] && !(wc[0] & 1) && wc[1] > 1577836800u && wc[2] < 1000000000u, "version %u sec %u nsec %u\n", wc[0], wc[1], wc[2]);
    volatile u32 *wc2 = (volatile u32 *)(page_b + 64);
    check(wrmsr_safe(0x11, (u64)wc2) < 0 && wc2[1] > 1577836800u, "kvm: legacy wall clock MSR 0x11");

    /* Steal time: 64-byte aligned struct kvm_steal_time; bits 5:1 reserved (msr.rst). */
    volatile u8 *st = page_b + 1024;
    check(wrmsr_safe(0x4b564d03, (u64)st | 1) < 0, "kvm: wrmsr STEAL_TIME");
    check(rdmsr_safe(0x4b564d03, &v) < 0 && v == ((u64)st | 1), "kvm: STEAL_TIME reads back");
    u32 sver = *(volatile u32 *)(st + 8);
    _what = "kvm: steal record version even and non-zero, flags 0";
    CHECKF(sver && !(sver & 1) && *(volatile u32 *)(st + 12) == 0, "version %u flags %u\n", sver, *(volatile u32 *)(st + 12));
    _what = "kvm: steal is 0 with one vCPU";
    CHECKF(*(volatile u64 *)st == 0, "steal %llu\n", *(volatile u64 *)st);
    check(*(volatile u8 *)(st + 16) == 0, "kvm: preempted flag clear");
    check(wrmsr_safe(0x4b564d03, (u64)st | 1 | 2) == 13, "kvm: STEAL_TIME reserved bit 1 -> #GP");
    check(wrmsr_safe(0x4b564d03, (u64)st | 1 | 0x20) == 13, "kvm: STEAL_TIME reserved bit 5 -> #GP");

    /* PV EOI: 4-byte aligned word; the host never sets bit 0 here, so it must stay 0. */
    volatile u32 *eoi = (volatile u32 *)(page_b + 2048);
    *eoi = 0;
    check(wrmsr_safe(0x4b564d04, (u64)eoi | 1) < 0, "kvm: wrmsr PV_EOI_EN");
    check(rdmsr_safe(0x4b564d04, &v) < 0 && v == ((u64)eoi | 1), "kvm: PV_EOI_EN reads back");
    check(*eoi == 0, "kvm: PV EOI word left clear (guest always EOIs)");
    check(wrmsr_safe(0x4b564d04, (u64)eoi | 1 | 2) == 13, "kvm: PV_EOI_EN misaligned -> #GP");

    /* Poll control: reset value 1, bit 0 only. Async PF: only the disable is accepted. */
    check(rdmsr_safe(0x4b564d05, &v) < 0 && v == 1, "kvm: POLL_CONTROL resets to 1");
    check(wrmsr_safe(0x4b564d05, 0) < 0 && rdmsr_safe(0x4b564d05, &v) < 0 && v == 0, "kvm: POLL_CONTROL write 0");
    check(wrmsr_safe(0x4b564d05, 2) == 13, "kvm: POLL_CONTROL reserved bit -> #GP");
    check(wrmsr_safe(0x4b564d02, 0) < 0, "kvm: ASYNC_PF_EN disable accepted");
    check(wrmsr_safe(0x4b564d02, (u64)page_c | 1) == 13, "kvm: ASYNC_PF_EN enable -> #GP (not offered)");
    check(rdmsr_safe(0x4b564d10, &v) == 13, "kvm: unimplemented MSR 0x4b564d10 -> #GP");

    /* Hypercalls (kvm_emulate_hypercall): RAX nr, RBX/RCX/RDX/RSI args. */
    long ret = kvm_hc(999, 0, 0, 0, 0);
    _what = "kvm: unknown hypercall -> -KVM_ENOSYS (-1000)";
    CHECKF(ret == -1000, "returned %lx\n", ret);
    check(kvm_hc(1, 0, 0, 0, 0) == -1000, "kvm: KVM_HC_VAPIC_POLL_IRQ (not offered) -> -1000");
    check(trapped < 0, "kvm: VMMCALL does not #UD");
    check(kvm_hc(5, 0, 0, 0, 0) == 0, "kvm: KICK_CPU self -> 0");
    check(kvm_hc(5, 0, 200, 0, 0) == 0, "kvm: KICK_CPU unknown APIC ID ignored -> 0");
    /* PV unhalt (kvm.c kvm_wait): a kick that came before the HLT is sticky and resumes it even with
     * IF=0; without it this HLT would stop the VM ("halted with interrupts disabled"). */
    volatile int resumed = 0;
    check(kvm_hc(5, 0, 0, 0, 0) == 0, "kvm: KICK_CPU self before HLT -> 0");
    __asm__ volatile("cli; hlt" ::: "memory");
    resumed = 1;
    check(resumed, "kvm: HLT with IF=0 after a KICK_CPU resumes at once (sticky kick)");
    check(kvm_hc(11, 0, 0, 0, 0) == 0, "kvm: SCHED_YIELD -> 0");
    check(kvm_hc(10, 0, 0, 0, 0x0F0) == 0, "kvm: SEND_IPI empty bitmap -> 0 delivered");
    check(kvm_hc(10, 1, 0, 0, 0x8F0) == -22, "kvm: SEND_IPI logical destination -> -KVM_EINVAL");
    check(kvm_hc(10, 1, 0, 0, 0xC00F0) == -22, "kvm: SEND_IPI with shorthand -> -KVM_EINVAL");
    /* Turn the per-vCPU structures off again (bit 0 clear). */
    check(wrmsr_safe(0x4b564d03, 0) < 0 && wrmsr_safe(0x4b564d04, 0) < 0, "kvm: steal time and PV EOI disabled");
}

/* ================================ Hyper-V ================================ */

static u64 hv_page;
static u64 hv_call_page(u64 control, u64 in, u64 out) {
    u64 status;
    register u64 r8 __asm__("r8") = out;
    __asm__ volatile("call *%[page]" : "=a"(status), "+c"(control), "+d"(in), "+r"(r8)
                     : [page] "r"(hv_page) : "memory", "r9", "r10", "r11");
    return status;
}
static u64 hv_call_direct(u64 control, u64 in, u64 out) {
    struct regs r = {.rcx = control, .rdx = in, .r8 = out};
    hypercall_regs(&r);
    return r.rax;
}

static void test_hyperv(void) {
    u32 r[4];
    u64 v;
    const char *_what;
    cpuid(1, 0, r);
    check(r[2] >> 31, "hyperv: CPUID.1:ECX.hypervisor is set");
    cpuid(0x40000000, 0, r);
    check(check_sig(r, "Microsoft Hv"), "hyperv: signature 'Microsoft Hv'");
    _what = "hyperv: max leaf 0x4000000A";
    CHECKF(r[0] == 0x4000000A, "eax %x\n", r[0]);
    cpuid(0x40000001, 0, r);
    check(r[0] == 0x31237648, "hyperv: interface 'Hv#1'");
    cpuid(0x40000002, 0, r);
    _what = "hyperv: version leaf has a build number";
    CHECKF(r[0] != 0 && (r[1] >> 16) >= 6, "eax %x ebx %x\n", r[0], r[1]);
    cpuid(0x40000003, 0, r);
    u32 feat = r[0];
    static const struct { int bit; const char *name; } privs[] = {
        {1, "hyperv: privilege AccessPartitionReferenceCounter"}, {2, "hyperv: privilege AccessSynicRegs"},
        {3, "hyperv: privilege AccessSyntheticTimerRegs"}, {5, "hyperv: privilege AccessHypercallMsrs"},
        {6, "hyperv: privilege AccessVpIndex"}, {10, "hyperv: privilege AccessGuestIdleReg"}, {9, "hyperv: privilege AccessPartitionReferenceTsc"},
        {11, "hyperv: privilege AccessFrequencyMsrs"}};
    for (unsigned i = 0; i < sizeof privs / sizeof privs[0]; i++) check((feat >> privs[i].bit) & 1, privs[i].name);
    _what = "hyperv: group B privileges PostMessages (4) and SignalEvents (5) only, never CreatePartitions (root)";
    CHECKF(r[1] == (1u << 4 | 1u << 5), "ebx %x\n", r[1]);
    check((r[3] >> 8) & 1, "hyperv: frequency MSRs available (EDX bit 8)");
    cpuid(0x40000004, 0, r);
    check(r[1] == 0xFFFFFFFF, "hyperv: spinlock retries never (EBX = -1)");
    cpuid(0x40000005, 0, r);
    _what = "hyperv: implementation limits: 1 VP";
    CHECKF(r[0] == 1, "max VPs %u\n", r[0]);
    int empty = 1;
    for (u32 leaf = 0x40000006; leaf <= 0x4000000A; leaf++) {
        cpuid(leaf, 0, r);
        if (r[0] | r[1] | r[2] | r[3]) { empty = 0; printf("  leaf %x: %x %x %x %x\n", leaf, r[0], r[1], r[2], r[3]); }
    }
    check(empty, "hyperv: leaves 0x40000006-0x4000000A zero (no hardware features, no nested)");

    /* Hypercall page: refused until the guest OS id is set (TLFS 3.13; KVM kvm_hv_set_msr_pw). */
    hv_page = (u64)page_a;
    check(wrmsr_safe(0x40000001, hv_page | 1) < 0, "hyperv: wrmsr HYPERCALL before guest OS id");
    check(rdmsr_safe(0x40000001, &v) < 0 && !(v & 1), "hyperv: hypercall page stays disabled without a guest OS id");
    u64 os_id = 0x8100000000000000ULL | (6ULL << 48); /* Linux, open source (hv_generate_guest_id) */
    check(wrmsr_safe(0x40000000, os_id) < 0 && rdmsr_safe(0x40000000, &v) < 0 && v == os_id, "hyperv: guest OS id written and read back");
    check(wrmsr_safe(0x40000001, hv_page | 1) < 0 && rdmsr_safe(0x40000001, &v) < 0 && v == (hv_page | 1), "hyperv: hypercall page enabled");
    _what = "hyperv: hypercall page holds VMMCALL/VMCALL; RET";
    CHECKF(page_a[0] == 0x0F && page_a[1] == 0x01 && (page_a[2] == 0xD9 || page_a[2] == 0xC1) && page_a[3] == 0xC3,
           "bytes %x %x %x %x\n", page_a[0], page_a[1], page_a[2], page_a[3]);

    /* Calls through the page: control RCX, input RDX, output R8; status in RAX (TLFS 3.7). */
    u64 s = hv_call_page(0x0008 | 1ULL << 16, 100, 0);
    _what = "hyperv: HvCallNotifyLongSpinWait (fast) through the page -> HV_STATUS_SUCCESS";
    CHECKF(s == 0, "status %llx\n", s);
    s = hv_call_page(0x7777, (u64)page_c, 0);
    _what = "hyperv: unknown call code -> HV_STATUS_INVALID_HYPERCALL_CODE (2)";
    CHECKF((s & 0xFFFF) == 2, "status %llx\n", s);
    s = hv_call_page(0x000B, (u64)page_c + 4, 0);
    _what = "hyperv: misaligned input GPA -> HV_STATUS_INVALID_ALIGNMENT (4)";
    CHECKF((s & 0xFFFF) == 4, "status %llx\n", s);
    s = hv_call_page(0x0002 | 3ULL << 32, (u64)page_c, 0);
    _what = "hyperv: rep count on a simple call -> HV_STATUS_INVALID_HYPERCALL_INPUT (3)";
    CHECKF((s & 0xFFFF) == 3, "status %llx\n", s);
    s = hv_call_page(0x0002 | 1ULL << 60, (u64)page_c, 0);
    _what = "hyperv: reserved control bits -> HV_STATUS_INVALID_HYPERCALL_INPUT (3)";
    CHECKF((s & 0xFFFF) == 3, "status %llx\n", s);
    u64 *in = (u64 *)page_c;
    in[0] = 5; in[1] = 1; /* HvCallSendSyntheticClusterIpi: vector 5 is below 0x10 */
    s = hv_call_page(0x000B, (u64)in, 0);
    _what = "hyperv: IPI vector < 0x10 -> HV_STATUS_INVALID_PARAMETER (5)";
    CHECKF((s & 0xFFFF) == 5, "status %llx\n", s);
    s = hv_call_page(0x000B, 0xFFFFFFF000ULL, 0);
    _what = "hyperv: input page outside RAM -> HV_STATUS_INVALID_HYPERCALL_INPUT (3)";
    CHECKF((s & 0xFFFF) == 3, "status %llx\n", s);
    in[0] = 0; in[1] = 1; in[2] = 0; /* HvCallFlushVirtualAddressList: all processors, 3 GVA entries */
    s = hv_call_page(0x0003 | 3ULL << 32, (u64)in, 0);
    _what = "hyperv: rep hypercall reports 3 reps completed (RAX bits 43:32)";
    CHECKF((s & 0xFFFF) == 0 && ((s >> 32) & 0xFFF) == 3, "status %llx\n", s);
    s = hv_call_page(0x005D | 1ULL << 16, 0x1234, 0);
    _what = "hyperv: HvSignalEvent (fast) to no connection -> HV_STATUS_INVALID_CONNECTION_ID (0x12)";
    CHECKF((s & 0xFFFF) == 0x12, "status %llx\n", s);
    s = hv_call_page(0x005D | 1ULL << 16, 0x100001234ULL, 0);
    _what = "hyperv: HvSignalEvent with a flag number -> HV_STATUS_INVALID_PORT_ID (0x11)";
    CHECKF((s & 0xFFFF) == 0x11, "status %llx\n", s);
    in[0] = 0x77; in[1] = 1ULL | 300ULL << 32; /* hv_input_post_message: connection 0x77, type 1, payload_size 300 */
    s = hv_call_page(0x005C, (u64)in, 0);
    _what = "hyperv: HvPostMessage with a payload over 240 bytes -> HV_STATUS_INVALID_HYPERCALL_INPUT (3)";
    CHECKF((s & 0xFFFF) == 3, "status %llx\n", s);
    in[1] = 1ULL | 8ULL << 32;
    s = hv_call_page(0x005C, (u64)in, 0);
    _what = "hyperv: HvPostMessage to no connection -> HV_STATUS_INVALID_CONNECTION_ID (0x12)";
    CHECKF((s & 0xFFFF) == 0x12, "status %llx\n", s);
    s = hv_call_direct(0x0008 | 1ULL << 16, 1, 0);
    check(s == 0 && trapped < 0, "hyperv: direct VMMCALL hypercall -> HV_STATUS_SUCCESS");

    /* Reference counter (100 ns units) and VP index. */
    u64 c0, c1;
    rdmsr_safe(0x40000020, &c0);
    int mono = 1;
    for (int i = 0; i < 100; i++) {
        spin(200);
        rdmsr_safe(0x40000020, &c1);
        if (c1 < c0) mono = 0;
        c0 = c1;
    }
    check(mono, "hyperv: HV_X64_MSR_TIME_REF_COUNT is monotonic");
    u64 start; rdmsr_safe(0x40000020, &start); spin(200000); rdmsr_safe(0x40000020, &c1);
    _what = "hyperv: reference counter advances";
    CHECKF(c1 > start, "%llu -> %llu\n", start, c1);
    check(wrmsr_safe(0x40000020, 5) == 13, "hyperv: reference counter is read-only (#GP)");
    check(rdmsr_safe(0x40000002, &v) < 0 && v == 0, "hyperv: VP index 0 on the BSP");
    check(wrmsr_safe(0x40000002, 3) == 13, "hyperv: VP index is read-only (#GP)");
    u64 tsc_hz = 0, apic_hz = 0;
    check(rdmsr_safe(0x40000022, &tsc_hz) < 0 && tsc_hz > 100000000ULL, "hyperv: TSC frequency MSR");
    check(rdmsr_safe(0x40000023, &apic_hz) < 0 && apic_hz > 1000000ULL, "hyperv: APIC frequency MSR");

    /* Reference TSC page: ref = ((tsc * scale) >> 64) + offset while sequence is stable and non-zero. */
    volatile u8 *tp = page_b;
    check(wrmsr_safe(0x40000021, (u64)tp | 1) < 0, "hyperv: reference TSC page enabled");
    u32 seq = *(volatile u32 *)tp;
    u64 scale = *(volatile u64 *)(tp + 8);
    long offset = *(volatile long *)(tp + 16);
    _what = "hyperv: TSC page sequence valid (non-zero, not 0xFFFFFFFF)";
    CHECKF(seq != 0 && seq != 0xFFFFFFFFu, "sequence %x\n", seq);
    u64 per_s = (u64)(((unsigned __int128)tsc_hz * scale) >> 64);
    _what = "hyperv: TSC page scale converts TSC Hz to 10 MHz";
    CHECKF(per_s >= 9999000 && per_s <= 10001000, "scale %llx gives %llu per second\n", scale, per_s);
    int agree = 1;
    for (int i = 0; i < 50; i++) {
        u64 m0, m1;
        rdmsr_safe(0x40000020, &m0);
        u64 ref = (u64)(((unsigned __int128)rdtsc() * scale) >> 64) + offset;
        rdmsr_safe(0x40000020, &m1);
        if (*(volatile u32 *)tp != seq) continue;
        /* the counter MSR read before and after bracket the page's value (1 tick of slack for rounding) */
        if (ref + 1 < m0 || ref > m1 + 1) { agree = 0; printf("  page %llu not within MSR [%llu, %llu]\n", ref, m0, m1); break; }
        spin(1000);
    }
    check(agree, "hyperv: reference TSC page matches HV_X64_MSR_TIME_REF_COUNT");
    check(rdmsr_safe(0x40000100, &v) == 13, "hyperv: unimplemented synthetic MSR -> #GP");
    check(wrmsr_safe(0x40000090, 5) == 13, "hyperv: unmasked SINT with vector < 16 -> #GP");
    check(wrmsr_safe(0x40000083, 0xFFFFFFFFF000ULL | 1) == 13, "hyperv: SIMP outside RAM -> #GP");
    /* VP assist page (hyperv.vp-assist): accepted and read back. */
    check(wrmsr_safe(0x40000073, (u64)page_e | 1) < 0 && rdmsr_safe(0x40000073, &v) < 0 && v == ((u64)page_e | 1),
          "hyperv: VP assist page MSR written and read back");

    /* SynIC (hyperv.synic): SCONTROL, SVERSION, SIEFP/SIMP pages are zeroed on enable. */
    check(rdmsr_safe(0x40000081, &v) < 0 && v == 1, "hyperv: SVERSION is 1");
    check(wrmsr_safe(0x40000080, 1) < 0 && rdmsr_safe(0x40000080, &v) < 0 && v == 1, "hyperv: SCONTROL enabled");
    memset(page_d, 0xAA, 4096);
    memset(page_f, 0xAA, 4096);
    check(wrmsr_safe(0x40000082, (u64)page_d | 1) < 0 && page_d[0] == 0 && page_d[4095] == 0, "hyperv: SIEFP enable zeroes the page");
    check(wrmsr_safe(0x40000083, (u64)page_f | 1) < 0 && page_f[0] == 0 && page_f[4095] == 0, "hyperv: SIMP enable zeroes the page");
    check(rdmsr_safe(0x40000092, &v) < 0 && (v & (1ULL << 16)), "hyperv: SINTs start masked");
    check(wrmsr_safe(0x40000092, 1ULL << 16 | 0x40) < 0 && rdmsr_safe(0x40000092, &v) < 0 && v == (1ULL << 16 | 0x40),
          "hyperv: SINT2 set (masked, vector 0x40)");

    /* Synthetic timer 0 in message mode on SINT2, one-shot at an absolute reference time 1 ms ahead:
     * the HVMSG_TIMER_EXPIRED message appears in SIMP slot 2 (polled: the SINT is masked, IF stays 0). */
    u64 now_ref;
    rdmsr_safe(0x40000020, &now_ref);
    u64 due = now_ref + 10000;
    check(wrmsr_safe(0x400000B0, 1 | 2ULL << 16) < 0, "hyperv: STIMER0_CONFIG enable, SINT2, one-shot");
    check(wrmsr_safe(0x400000B1, due) < 0, "hyperv: STIMER0_COUNT absolute expiry");
    volatile u8 *slot = page_f + 2 * 256;
    u32 polls = 0;
    while (*(volatile u32 *)slot == 0 && polls < 50000000) { polls++; spin(10); }
    u64 delivered = *(volatile u64 *)(slot + 32), expired = *(volatile u64 *)(slot + 24);
    _what = "hyperv: stimer posts HVMSG_TIMER_EXPIRED (0x80000010) in SIMP slot 2";
    CHECKF(*(volatile u32 *)slot == 0x80000010u && slot[4] == 24, "type %x size %u after %u polls\n", *(volatile u32 *)slot, slot[4], polls);
    _what = "hyperv: timer message: index 0, expiration = count, delivery >= expiration";
    CHECKF(*(volatile u32 *)(slot + 16) == 0 && expired == due && delivered >= expired,
           "index %u expiration %llu (due %llu) delivery %llu\n", *(volatile u32 *)(slot + 16), expired, due, delivered);
    check(rdmsr_safe(0x400000B0, &v) < 0 && !(v & 1), "hyperv: one-shot stimer clears its enable bit after firing");
    *(volatile u32 *)slot = 0;
    check(wrmsr_safe(0x40000084, 0) < 0, "hyperv: EOM accepted");
    check(wrmsr_safe(0x400000B0, 0) < 0, "hyperv: stimer disabled");

    /* GUEST_IDLE (hyperv.guest-idle): idles until an interrupt (or the VMM's bounded wait) and reads 0. */
    check(rdmsr_safe(0x400000F0, &v) < 0 && v == 0, "hyperv: GUEST_IDLE read returns 0");

    /* Cluster IPI and the Ex (sparse VP set) forms: to VP 0, vector 0x40; IF=0 keeps it pending. */
    in[0] = 0x40; in[1] = 1;
    s = hv_call_page(0x000B, (u64)in, 0);
    _what = "hyperv: HvCallSendSyntheticClusterIpi to VP 0 -> HV_STATUS_SUCCESS";
    CHECKF(s == 0, "status %llx\n", s);
    in[0] = 0x40; in[1] = 0; /* format HV_GENERIC_SET_SPARSE_4K */ in[2] = 1; /* bank 0 */ in[3] = 1; /* VP 0 */
    s = hv_call_page(0x0015 | 1ULL << 17, (u64)in, 0);
    _what = "hyperv: HvCallSendSyntheticClusterIpiEx sparse set -> HV_STATUS_SUCCESS";
    CHECKF(s == 0, "status %llx\n", s);
    in[2] = 3; /* two banks announced, one in the variable header */
    s = hv_call_page(0x0015 | 1ULL << 17, (u64)in, 0);
    _what = "hyperv: Ex VP set with more banks than the header -> HV_STATUS_INVALID_HYPERCALL_INPUT";
    CHECKF((s & 0xFFFF) == 3, "status %llx\n", s);
    in[0] = 0; in[1] = 1; in[2] = 0; in[3] = 0; /* HvCallFlushVirtualAddressSpaceEx: all processors */
    s = hv_call_page(0x0013, (u64)in, 0);
    _what = "hyperv: HvCallFlushVirtualAddressSpaceEx -> HV_STATUS_SUCCESS";
    CHECKF(s == 0, "status %llx\n", s);

    /* Clearing the guest OS id disables the hypercall page; VMMCALL then belongs to nobody -> #UD. */
    check(wrmsr_safe(0x40000000, 0) < 0 && rdmsr_safe(0x40000001, &v) < 0 && !(v & 1), "hyperv: guest OS id 0 disables the hypercall page");
    hv_call_direct(0x0008 | 1ULL << 16, 1, 0);
    check(trapped == 6, "hyperv: hypercall without a guest OS id -> #UD");
    wrmsr_safe(0x40000000, os_id);
}

/* ================================ Xen ================================ */

static u64 xen_page;
static long xen_direct(u64 nr, u64 a1, u64 a2, u64 a3) {
    struct regs r = {.rax = nr, .rdi = a1, .rsi = a2, .rdx = a3};
    hypercall_regs(&r);
    return (long)r.rax;
}
/* Through the hypercall page: call page + nr * 32 (arch/x86/include/asm/xen/hypercall.h). */
static long xen_paged(u64 nr, u64 a1, u64 a2, u64 a3) {
    long ret;
    register u64 rdx __asm__("rdx") = a3;
    __asm__ volatile("call *%[stub]" : "=a"(ret), "+D"(a1), "+S"(a2), "+r"(rdx)
                     : [stub] "r"(xen_page + nr * 32) : "memory", "rcx", "r8", "r9", "r10", "r11");
    return ret;
}

#define ENOSYS_ (-38L)
#define EINVAL_ (-22L)
#define EFAULT_ (-14L)

static void test_xen(void) {
    u32 r[4];
    u64 v;
    long ret;
    const char *_what;
    cpuid(1, 0, r);
    check(r[2] >> 31, "xen: CPUID.1:ECX.hypervisor is set");
    cpuid(0x40000000, 0, r);
    check(check_sig(r, "XenVMMXenVMM"), "xen: signature XenVMMXenVMM");
    _what = "xen: max leaf base+4";
    CHECKF(r[0] == 0x40000004, "eax %x\n", r[0]);
    cpuid(0x40000001, 0, r);
    u32 version = r[0];
    _what = "xen: version leaf 4.16";
    CHECKF(version == 0x00040010, "eax %x\n", version);
    cpuid(0x40000002, 0, r);
    _what = "xen: hypercall page leaf: 1 page, MSR 0x40000000";
    CHECKF(r[0] == 1 && r[1] == 0x40000000, "eax %x ebx %x\n", r[0], r[1]);
    u32 msr = r[1];
    cpuid(0x40000004, 0, r);
    check((r[0] >> 3) & 1 && r[1] == 0, "xen: HVM leaf: vCPU id present, BSP is 0");

    /* Direct VMMCALL path (6.1.158+). */
    ret = xen_direct(17, 0, 0, 0);
    _what = "xen: direct xen_version(XENVER_version) matches CPUID";
    CHECKF(ret == (long)version, "returned %lx\n", ret);
    /* Hypercall page path (older 6.1): wrmsr(MSR, GPA), then call stubs. */
    xen_page = (u64)page_a;
    check(wrmsr_safe(msr, xen_page) < 0 && rdmsr_safe(msr, &v) < 0 && v == xen_page, "xen: hypercall page MSR written and read back");
    _what = "xen: stub 17 is mov $17,%eax; vmmcall/vmcall; ret";
    CHECKF(page_a[17 * 32] == 0xB8 && page_a[17 * 32 + 1] == 17 && page_a[17 * 32 + 5] == 0x0F && page_a[17 * 32 + 8] == 0xC3,
           "bytes %x %x %x %x\n", page_a[17 * 32], page_a[17 * 32 + 1], page_a[17 * 32 + 5], page_a[17 * 32 + 8]);
    ret = xen_paged(17, 0, 0, 0);
    _what = "xen: xen_version through the hypercall page";
    CHECKF(ret == (long)version, "returned %lx\n", ret);
    check(wrmsr_safe(msr, xen_page | 5) == 13, "xen: hypercall page MSR with a page index > 0 -> #GP");
    check(wrmsr_safe(msr, 0xFFFFFFFFF000ULL) == 13, "xen: hypercall page MSR outside RAM -> #GP");

    u32 *fi = (u32 *)page_c;
    fi[0] = 0; fi[1] = 0;
    ret = xen_direct(17, 6, (u64)fi, 0);
    _what = "xen: XENVER_get_features: auto-translated physmap, callback vector, safe pvclock";
    CHECKF(ret == 0 && (fi[1] & (1u << 2)) && (fi[1] & (1u << 8)) && (fi[1] & (1u << 9)), "ret %lx submap %x\n", ret, fi[1]);
    char *ev = (char *)page_c + 64;
    ret = xen_direct(17, 1, (u64)ev, 0);
    check(ret == 0 && ev[0] == '.', "xen: XENVER_extraversion writes a string");
    check(xen_direct(17, 1, 0x7FFF00000000ULL, 0) == EFAULT_, "xen: xen_version to an unmapped pointer -> -EFAULT");
    check(xen_direct(17, 99, 0, 0) == ENOSYS_, "xen: unknown xen_version command -> -ENOSYS");
    check(xen_direct(50, 0, 0, 0) == ENOSYS_, "xen: unknown hypercall 50 -> -ENOSYS");
    check(xen_direct(0x1000, 0, 0, 0) == ENOSYS_, "xen: out-of-range hypercall -> -ENOSYS");

    /* XENMEM_add_to_physmap(shared_info) (xen_hvm_init_shared_info). */
    u64 *xatp = (u64 *)(page_c + 256);
    u8 *shinfo = page_b;
    xatp[0] = 0x7FF0 | 0ULL << 32; /* domid DOMID_SELF, size 0, space XENMAPSPACE_shared_info */
    xatp[1] = 0; xatp[2] = (u64)shinfo >> 12;
    check(xen_direct(12, 7, (u64)xatp, 0) == 0, "xen: XENMEM_add_to_physmap(shared_info) -> 0");
    struct pvti *t = (struct pvti *)(shinfo + 32); /* vcpu_info[0].time */
    check(t->flags & 1, "xen: vcpu_info[0].time has the TSC-stable flag");
    check_pvclock(t, "xen: shared_info vcpu_info[0].time");
    volatile u32 *wc = (volatile u32 *)(shinfo + 0xC00);
    _what = "xen: shared_info wall clock version even, seconds after 2020";
    CHECKF(!(wc[0] & 1) && wc[0] && wc[1] > 1577836800u && wc[2] < 1000000000u, "version %u sec %u nsec %u\n", wc[0], wc[1], wc[2]);
    xatp[0] = 5;
    check(xen_direct(12, 7, (u64)xatp, 0) == -3, "xen: add_to_physmap for another domain -> -ESRCH");
    xatp[0] = 0x7FF0; xatp[1] = 1;
    check(xen_direct(12, 7, (u64)xatp, 0) == EINVAL_, "xen: add_to_physmap idx 1 -> -EINVAL");
    xatp[0] = 0x7FF0 | 1ULL << 32; xatp[1] = 0;
    check(xen_direct(12, 7, (u64)xatp, 0) == ENOSYS_, "xen: add_to_physmap grant table space -> -ENOSYS");
    check(xen_direct(12, 7, 0x7FFF00000000ULL, 0) == EFAULT_, "xen: add_to_physmap from an unmapped pointer -> -EFAULT");

    /* HVMOP_set_param(HVM_PARAM_CALLBACK_IRQ, 2<<56 | 0xF3) (xen_set_callback_via). */
    u64 *hp = (u64 *)(page_c + 512);
    hp[0] = 0x7FF0 | 0ULL << 32; hp[1] = 2ULL << 56 | 0xF3;
    check(xen_direct(34, 0, (u64)hp, 0) == 0, "xen: HVMOP_set_param callback vector 0xF3 -> 0");
    hp[1] = 0;
    check(xen_direct(34, 1, (u64)hp, 0) == 0 && hp[1] == (2ULL << 56 | 0xF3), "xen: HVMOP_get_param reads the callback back");
    hp[1] = 2ULL << 56 | 0x05;
    check(xen_direct(34, 0, (u64)hp, 0) == EINVAL_, "xen: callback vector < 0x10 -> -EINVAL");
    hp[1] = 1ULL << 56 | 0x20;
    check(xen_direct(34, 0, (u64)hp, 0) == ENOSYS_, "xen: callback via PCI INTx -> -ENOSYS");
    hp[0] = 0x7FF0 | 1000ULL << 32;
    check(xen_direct(34, 0, (u64)hp, 0) == EINVAL_, "xen: HVM param index out of range -> -EINVAL");
    check(xen_direct(34, 99, (u64)hp, 0) == ENOSYS_, "xen: unknown hvm_op -> -ENOSYS");

    /* Event channels: bind_ipi, send (2-level pending bits), close. */
    u32 *eb = (u32 *)(page_c + 1024);
    eb[0] = 0; eb[1] = 0;
    ret = xen_direct(32, 7, (u64)eb, 0);
    u32 port = eb[1];
    _what = "xen: EVTCHNOP_bind_ipi -> 0 and a port";
    CHECKF(ret == 0 && port > 0 && port < 4096, "ret %ld port %u\n", ret, port);
    volatile u64 *pending = (volatile u64 *)(shinfo + 0x800);
    volatile u8 *vi0 = shinfo;
    *(volatile u64 *)(vi0 + 8) = 0; vi0[0] = 0;
    eb[2] = port;
    check(xen_direct(32, 4, (u64)&eb[2], 0) == 0, "xen: EVTCHNOP_send on the IPI port -> 0");
    check((pending[port / 64] >> (port % 64)) & 1, "xen: send sets the port's evtchn_pending bit");
    check(((*(volatile u64 *)(vi0 + 8)) >> (port / 64)) & 1, "xen: send sets vcpu_info[0].evtchn_pending_sel");
    check(vi0[0] == 1, "xen: send sets vcpu_info[0].evtchn_upcall_pending");
    check(xen_direct(32, 3, (u64)&eb[2], 0) == 0, "xen: EVTCHNOP_close -> 0");
    check(xen_direct(32, 4, (u64)&eb[2], 0) == EINVAL_, "xen: send on a closed port -> -EINVAL");
    eb[3] = 5000;
    check(xen_direct(32, 3, (u64)&eb[3], 0) == EINVAL_, "xen: close of port 5000 -> -EINVAL");
    eb[0] = 7;
    check(xen_direct(32, 7, (u64)eb, 0) == -2, "xen: bind_ipi to a vCPU that does not exist -> -ENOENT");
    check(xen_direct(32, 99, (u64)eb, 0) == ENOSYS_, "xen: unknown event channel op -> -ENOSYS");
    check(xen_direct(32, 4, 0x7FFF00000000ULL, 0) == EFAULT_, "xen: send with an unmapped argument -> -EFAULT");

    /* Single-shot timer (VCPUOP_set_singleshot_timer) raising VIRQ_TIMER on a bound port. */
    u32 *vb = (u32 *)(page_c + 1536);
    vb[0] = 0; vb[1] = 0; vb[2] = 0; /* virq VIRQ_TIMER, vcpu 0, OUT port */
    ret = xen_direct(32, 1, (u64)vb, 0);
    u32 tport = vb[2];
    _what = "xen: EVTCHNOP_bind_virq(VIRQ_TIMER) -> 0 and a port";
    CHECKF(ret == 0 && tport > 0 && tport < 4096, "ret %ld port %u\n", ret, tport);
    check(xen_direct(32, 1, (u64)vb, 0) == -17, "xen: binding VIRQ_TIMER twice -> -EEXIST");
    _what = "xen: a freshly bound port is not pending (close cleared the old event, Xen free_evtchn)";
    CHECKF(!((pending[tport / 64] >> (tport % 64)) & 1), "port %u (IPI port was %u) already pending\n", tport, port);
    u32 v0;
    u64 now = pvclock_read(t, &v0, 0, 0);
    u64 *sst = (u64 *)(page_c + 1600);
    /* VCPU_SSHOTTMR_future with a past time; under --clock icount the guest may start less than 1 ms after
     * time 0, and Xen compares the u64 timeout unsigned (xen/common/domain.c), so do not wrap below 0. */
    sst[0] = now > 1000000 ? now - 1000000 : 0; sst[1] = 1;
    check(xen_direct(24, 8, 0, (u64)sst) == -62, "xen: single-shot timer in the past with VCPU_SSHOTTMR_future -> -ETIME");
    sst[0] = now + 1000000; sst[1] = 0;
    check(xen_direct(24, 8, 0, (u64)sst) == 0, "xen: VCPUOP_set_singleshot_timer 1 ms ahead -> 0");
    u32 polls = 0;
    while (!((pending[tport / 64] >> (tport % 64)) & 1) && polls < 50000000) { polls++; spin(10); }
    u64 fired = pvclock_read(t, &v0, 0, 0);
    _what = "xen: the timer sets VIRQ_TIMER's port pending, not before its deadline";
    CHECKF(((pending[tport / 64] >> (tport % 64)) & 1) && fired >= sst[0], "after %u polls, now %llu deadline %llu\n", polls, fired, sst[0]);
    check(xen_direct(15, 0, 0, 0) == 0, "xen: set_timer_op(0) cancels -> 0");
    u32 *pl = (u32 *)(page_c + 1700);
    u64 *poll = (u64 *)(page_c + 1664);
    pl[0] = tport; poll[0] = (u64)pl; poll[1] = 1; poll[2] = 0;
    check(xen_direct(29, 3, (u64)poll, 0) == 0, "xen: SCHEDOP_poll on a pending port returns 0 at once");
    check(xen_direct(29, 0, 0, 0) == 0, "xen: SCHEDOP_yield -> 0");
    check(xen_direct(29, 77, 0, 0) == ENOSYS_, "xen: unknown sched_op -> -ENOSYS");
    check(xen_direct(21, 0, 5, 0) == 0, "xen: VMASST runstate_update_flag enabled");
    check(xen_direct(21, 0, 3, 0) == EINVAL_, "xen: unknown VM assist -> -EINVAL");

    /* VCPUOP_register_vcpu_info moves vcpu_info 0 out of shared_info: everything marked pending, time valid. */
    u64 *rvi = (u64 *)(page_c + 1800);
    rvi[0] = 0xFFFFFFFFFULL; rvi[1] = 128;
    check(xen_direct(24, 10, 0, (u64)rvi) == EINVAL_, "xen: vcpu_info outside RAM -> -EINVAL");
    rvi[0] = (u64)page_e >> 12; rvi[1] = 4090;
    check(xen_direct(24, 10, 0, (u64)rvi) == EINVAL_, "xen: vcpu_info crossing the page end -> -EINVAL");
    rvi[0] = (u64)page_e >> 12; rvi[1] = 128; /* mfn, offset 128 */
    check(xen_direct(24, 10, 0, (u64)rvi) == 0, "xen: VCPUOP_register_vcpu_info -> 0");
    check(page_e[128] == 1 && *(u64 *)(page_e + 128 + 8) == ~0ULL, "xen: moved vcpu_info has upcall pending and every selector bit");
    check_pvclock((struct pvti *)(page_e + 128 + 32), "xen: registered vcpu_info time");
    check(xen_direct(24, 10, 0, (u64)rvi) == EINVAL_, "xen: registering vcpu_info twice -> -EINVAL");

    /* Runstate area: RUNSTATE_running, steal (time[runnable]) 0 with one vCPU. */
    u64 *rs = (u64 *)(page_d);
    u64 *ra = (u64 *)(page_c + 2048);
    ra[0] = (u64)rs;
    check(xen_direct(24, 5, 0, (u64)ra) == 0, "xen: VCPUOP_register_runstate_memory_area -> 0");
    _what = "xen: runstate running, entry time set, time[runnable] 0";
    CHECKF(*(u32 *)rs == 0 && rs[1] != 0 && rs[3] == 0, "state %u entry %llu runnable %llu\n", *(u32 *)rs, rs[1], rs[3]);
    check(xen_direct(24, 5, 9, (u64)ra) == -2, "xen: VCPUOP for vCPU 9 -> -ENOENT");
}

/* ================================ VMware ================================ */

struct bd { u32 eax, ebx, ecx, edx, esi, edi; };
static void backdoor(struct bd *b) {
    __asm__ volatile("inl (%%dx), %%eax"
                     : "+a"(b->eax), "+b"(b->ebx), "+c"(b->ecx), "+d"(b->edx), "+S"(b->esi), "+D"(b->edi) :: "memory");
}
#define VMW_MAGIC 0x564D5868u

static void test_vmware(void) {
    u32 r[4];
    const char *_what;
    cpuid(1, 0, r);
    check(r[2] >> 31, "vmware: CPUID.1:ECX.hypervisor is set");
    cpuid(0x40000000, 0, r);
    check(check_sig(r, "VMwareVMware"), "vmware: signature VMwareVMware");
    _what = "vmware: max leaf 0x40000010";
    CHECKF(r[0] == 0x40000010, "eax %x\n", r[0]);
    cpuid(0x40000010, 0, r);
    u32 tsc_khz = r[0];
    _what = "vmware: timing leaf: TSC kHz and bus kHz 1000000";
    CHECKF(tsc_khz > 100000 && r[1] == 1000000, "eax %u ebx %u\n", r[0], r[1]);

    struct bd b = {VMW_MAGIC, ~0u, 10, 0x5658, 0, 0};
    backdoor(&b);
    _what = "vmware: GETVERSION -> version 6, EBX magic, product type in ECX";
    CHECKF(b.eax == 6 && b.ebx == VMW_MAGIC && b.ecx == 2, "eax %x ebx %x ecx %x\n", b.eax, b.ebx, b.ecx);
    b = (struct bd){VMW_MAGIC, ~0u, 45, 0x5658, 0, 0};
    backdoor(&b);
    u64 hz = (u64)b.ebx << 32 | b.eax;
    _what = "vmware: GETHZ TSC Hz in EBX:EAX matches the timing leaf, bus Hz in ECX";
    CHECKF(hz / 1000 == tsc_khz && b.ecx == 1000000000u, "hz %llu ecx %u\n", hz, b.ecx);
    /* The TSC ticks at that rate: the backdoor's Hz against 1 s of... the guest has no other clock, so
     * check only that rdtsc moves while we spin. */
    u64 t0 = rdtsc(); spin(10000);
    check(rdtsc() > t0, "vmware: rdtsc advances");
    b = (struct bd){0x12345678, 0xABCD, 10, 0x5658, 0, 0};
    backdoor(&b);
    _what = "vmware: wrong magic -> EAX all ones, EBX untouched (no backdoor)";
    CHECKF(b.eax == 0xFFFFFFFFu && b.ebx == 0xABCD && b.ecx == 10, "eax %x ebx %x ecx %x\n", b.eax, b.ebx, b.ecx);
    b = (struct bd){VMW_MAGIC, 0xABCD, 9999, 0x5658, 0, 0};
    backdoor(&b);
    _what = "vmware: unknown command -> EAX all ones";
    CHECKF(b.eax == 0xFFFFFFFFu && b.ebx == 0xABCD, "eax %x ebx %x\n", b.eax, b.ebx);
    u8 byte;
    __asm__ volatile("inb (%%dx), %%al" : "=a"(byte) : "a"(VMW_MAGIC), "d"(0x5658), "b"(0), "c"(10));
    check(byte == 0xFF, "vmware: 8-bit IN is not a backdoor call (0xFF)");
    b = (struct bd){VMW_MAGIC, 0, 68, 0x5658, 0, 0};
    backdoor(&b);
    check(b.eax == 0, "vmware: GETVCPU_INFO -> no reserved bit, no legacy x2APIC");

    /* Steal clock: ESI:EDI = PA (64-byte aligned) to enable, (0, 1) to disable. */
    volatile u64 *steal = (volatile u64 *)page_a;
    *steal = 0x5555;
    b = (struct bd){VMW_MAGIC, 0, 91, 0x5658, 0, (u32)(u64)steal};
    backdoor(&b);
    check(b.eax == 1, "vmware: STEALCLOCK enable -> 1");
    _what = "vmware: steal clock 0 with one vCPU";
    CHECKF(*steal == 0, "clock %llu\n", *steal);
    b = (struct bd){VMW_MAGIC, 0, 91, 0x5658, 0, (u32)(u64)steal + 8};
    backdoor(&b);
    check(b.eax == 0, "vmware: STEALCLOCK misaligned area -> 0 (disabled)");
    b = (struct bd){VMW_MAGIC, 0, 91, 0x5658, 0xFF, 0};
    backdoor(&b);
    check(b.eax == 0, "vmware: STEALCLOCK outside RAM -> 0 (disabled)");
    b = (struct bd){VMW_MAGIC, 0, 91, 0x5658, 0, 1};
    backdoor(&b);
    check(b.eax == 0, "vmware: STEALCLOCK disable -> 0");
    check(vmcall_ud(), "vmware: VMCALL not advertised -> #UD");
}

/* ================================ bare ================================ */

static void test_bare(void) {
    u32 r[4];
    u64 v;
    cpuid(1, 0, r);
    check(!(r[2] >> 31), "bare: CPUID.1:ECX.hypervisor is clear");
    int zero = 1;
    for (u32 leaf = 0x40000000; leaf <= 0x40000010; leaf++) {
        cpuid(leaf, 0, r);
        u32 basic[4];
        cpuid(0, 0, basic);
        /* No hypervisor leaves: zeros (an Intel CPU would repeat its highest basic leaf instead). */
        if (r[0] | r[1] | r[2] | r[3]) { zero = 0; printf("  leaf %x: %x %x %x %x\n", leaf, r[0], r[1], r[2], r[3]); }
    }
    check(zero, "bare: leaves 0x40000000-0x40000010 are zero");
    check(vmcall_ud(), "bare: VMCALL -> #UD");
    struct regs h = {0};
    hypercall_regs(&h);
    check(trapped == 6, "bare: VMMCALL -> #UD");
    check(rdmsr_safe(0x4b564d01, &v) == 13, "bare: KVM MSR -> #GP");
    check(rdmsr_safe(0x40000000, &v) == 13, "bare: Hyper-V guest OS id MSR -> #GP");
    struct bd b = {VMW_MAGIC, 0xABCD, 10, 0x5658, 0, 0};
    backdoor(&b);
    check(b.ebx == 0xABCD && b.eax == 0xFFFFFFFFu, "bare: no VMware backdoor on port 0x5658");
}

/* ================================ garbage ================================ */

static u64 rng = 0x9E3779B97F4A7C15ULL;
static u64 rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

#define SCRATCH 0x2000000ULL /* [32 MiB, 48 MiB): RAM nothing else uses; garbage may point into it */
#define UNMAPPED_VA (MAP_BASE + 0x100000) /* never mapped */

/* Pointers the hypervisor must cope with: scratch RAM at any alignment, a linear address mapped to the
 * LAPIC's MMIO page, one mapped beyond RAM, unmapped, non-canonical, all ones, random. Physical-address
 * users see the same values as GPAs: MMIO, beyond RAM, huge. */
static u64 nasty(void) {
    switch (rnd() % 9) {
    case 0: case 1: return SCRATCH + rnd() % 0x1000000;
    case 2: return MAP_BASE;                 /* -> LAPIC MMIO */
    case 3: return MAP_BASE + 0x1000;        /* -> beyond RAM */
    case 4: return UNMAPPED_VA + (rnd() & 0xFFF);
    case 5: return 0x8000000000000000ULL | rnd();
    case 6: return ~0ULL - (rnd() & 0xFFF);
    case 7: return 0xFEE00000ULL | (rnd() & 1);
    default: return rnd();
    }
}

/* MSR values: a nasty pointer, optionally with an enable bit, or raw randomness. Low memory and the
 * guest's own image are never targets, so the guest survives whatever the hypervisor writes. */
static u64 msr_value(void) {
    u64 v = rnd() % 3 == 0 ? rnd() : nasty();
    if (v < SCRATCH) v = SCRATCH + (v & 0xFFFFF);
    if (v >= SCRATCH + 0x1000000 && v < MAP_BASE) v = SCRATCH + (v & 0xFFFFF);
    return v;
}

static u32 msr_index(void) {
    static const u32 ranges[] = {0x4b564d00, 0x40000000, 0x40000080, 0x400000B0, 0x40000200};
    switch (rnd() % 5) {
    case 0: { u32 i = (u32)rnd(); return i >= 0xC0000000u ? 0x4b564d40 : i; } /* not EFER & co. */
    case 1: return 0x11 + (u32)(rnd() % 2);  /* KVM's legacy kvmclock MSRs */
    default: return ranges[rnd() % 5] + (u32)(rnd() % 0x40);
    }
}

static void test_garbage(void) {
    u32 r[4];
    cpuid(0x40000000, 0, r);
    char sig[13];
    memcpy(sig, &r[1], 4); memcpy(sig + 4, &r[2], 4); memcpy(sig + 8, &r[3], 4); sig[12] = 0;
    for (int i = 0; i < 12; i++) if (sig[i] < 32 || sig[i] > 126) sig[i] = '.';
    printf("garbage against '%s'\n", sig);
    map_page(MAP_BASE, 0xFEE00000ULL, PTE_P | PTE_RW);
    map_page(MAP_BASE + 0x1000, 0x10000000ULL, PTE_P | PTE_RW);
    /* A Hyper-V guest OS id makes Hyper-V claim hypercalls too (it is ignored by other personalities). */
    wrmsr_safe(0x40000000, 0x8100000000000000ULL);

    u32 gp = 0, msrs = 0, calls = 0, ud = 0, ports = 0;
    for (int i = 0; i < 6000; i++) {
        u32 idx = msr_index();
        u64 v;
        if (idx == 0x400000F0) continue; /* Hyper-V GUEST_IDLE: a well-formed "idle until an interrupt" */
        if (rnd() & 1) gp += wrmsr_safe(idx, msr_value()) == 13;
        else gp += rdmsr_safe(idx, &v) == 13;
        msrs++;

        struct regs h = {rnd(), nasty(), nasty(), nasty(), nasty(), nasty(), nasty(), nasty()};
        switch (rnd() % 4) {
        case 0: h.rax = rnd() % 64; break;                          /* Xen/KVM-sized numbers */
        case 1: h.rcx = (rnd() % 0x20) | (rnd() & 0x0FFF0FFF00010000ULL); break; /* Hyper-V control words */
        default: break;
        }
        /* Calls that legitimately end or park the VM are not garbage: Xen SCHEDOP_block/poll/shutdown
         * (sched_op 29), Xen vcpu_op (may block on the BSP), and the VMware port is exercised below. */
        if (h.rax == 29 || h.rax == 24) h.rax = 17;
        hypercall_regs(&h);
        calls++;
        ud += trapped == 6;

        struct bd b = {(rnd() & 1) ? VMW_MAGIC : (u32)rnd(), (u32)rnd(), (u32)rnd() % 100, 0x5658,
                       (u32)(rnd() % 3 ? 0 : rnd()), (u32)msr_value()};
        if (b.ecx == 91 && b.esi == 0 && b.edi < SCRATCH) b.edi = (u32)SCRATCH;
        backdoor(&b);
        ports++;
    }
    printf("garbage: %u MSR accesses (%u #GP), %u hypercalls (%u #UD), %u backdoor calls\n", msrs, gp, calls, ud, ports);
    check(calls == ports && msrs == calls && calls > 5000, "garbage: every call returned to the guest");
    /* The VMM still answers: CPUID is intact and a well-formed call still works. */
    u32 r2[4];
    cpuid(0x40000000, 0, r2);
    check(r2[0] == r[0] && r2[1] == r[1] && r2[2] == r[2] && r2[3] == r[3], "garbage: CPUID signature unchanged afterwards");
    if (memcmp(sig, "KVMKVMKVM", 9) == 0) check(kvm_hc(999, 0, 0, 0, 0) == -1000, "garbage: KVM still answers -KVM_ENOSYS");
    if (memcmp(sig, "XenVMMXenVMM", 12) == 0) check(xen_direct(17, 0, 0, 0) == 0x00040010, "garbage: Xen still answers xen_version");
    if (memcmp(sig, "VMwareVMware", 12) == 0) {
        struct bd b = {VMW_MAGIC, ~0u, 10, 0x5658, 0, 0};
        backdoor(&b);
        check(b.eax == 6, "garbage: VMware backdoor still answers GETVERSION");
    }
    if (memcmp(sig, "Microsoft Hv", 12) == 0) {
        wrmsr_safe(0x40000000, 0x8100000000000000ULL);
        check(hv_call_direct(0x0008 | 1ULL << 16, 1, 0) == 0, "garbage: Hyper-V still answers NotifyLongSpinWait");
    }
}

int main(u32 magic, struct mbi *mbi) {
    if (magic == 0x2BADB002 && (mbi->flags & 4)) {
        static char buf[64];
        const char *s = (const char *)(uptr)mbi->cmdline;
        while (*s && *s != ' ') s++; /* skip the image name */
        while (*s == ' ') s++;
        uptr n = strlen(s);
        if (n >= sizeof buf) n = sizeof buf - 1;
        memcpy(buf, s, n);
        buf[n] = 0;
        cmdline = buf;
    }
    set_handler(13, on_trap, 0, 0);
    set_handler(6, on_trap, 0, 0);
    set_handler(2, on_nmi, 0, 0);
    printf("abi guest: %s\n", cmdline);
    if (arg_is("kvm")) test_kvm();
    else if (arg_is("hyperv")) test_hyperv();
    else if (arg_is("xen")) test_xen();
    else if (arg_is("vmware")) test_vmware();
    else if (arg_is("bare")) test_bare();
    else if (arg_is("garbage")) test_garbage();
    else { printf("FAIL unknown personality '%s' (kvm, hyperv, xen, vmware, bare, garbage)\n", cmdline); return 1; }
    finish();
}
