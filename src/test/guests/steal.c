/* steal: steal time that means something. Run with --smp 2 and the personality named on the command line
 * (kvm, xen or vmware). The BSP starts an AP that spins forever (spin_tramp.S), registers the ABI's steal
 * structure, spins itself, and checks that its steal grows while both vCPUs are runnable on the VMM's
 * single host thread: about half of the elapsed time, since the two vCPUs run round-robin.
 *   kvm:    MSR_KVM_STEAL_TIME record (arch/x86/kernel/kvm.c kvm_register_steal_time), version seqlock,
 *           against kvmclock time;
 *   xen:    VCPUOP_register_runstate_memory_area, time[RUNSTATE_runnable] against state_entry_time
 *           (drivers/xen/time.c xen_steal_clock);
 *   vmware: STEALCLOCK backdoor command, stolen TSC cycles against rdtsc (arch/x86/kernel/cpu/vmware.c). */
#include "rt.h"

extern char spin_tramp[], spin_tramp_end[];
#define TRAMPOLINE 0x8000
#define COUNTER ((volatile u32 *)0x7000)
#define AP_SPINS ((volatile u32 *)0x7004)
#define LAPIC 0xFEE00000u
#define REG(off) (*(volatile u32 *)(uptr)(LAPIC + (off)))

static inline void wrmsr(u32 msr, u64 v) { __asm__ volatile("wrmsr" :: "c"(msr), "a"((u32)v), "d"((u32)(v >> 32))); }
static inline u64 rdtsc(void) { u32 lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return (u64)hi << 32 | lo; }
static void cpuid(u32 leaf, u32 r[4]) { __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0)); }
static void delay(u32 n) { for (volatile u32 i = 0; i < n; i++) { } }

struct pvti { volatile u32 version, pad0; volatile u64 tsc_timestamp, system_time; volatile u32 mul; volatile signed char shift; volatile u8 flags, pad[2]; };
struct steal { volatile u64 steal; volatile u32 version, flags; volatile u8 preempted, pad[47]; };
static struct pvti pvti __attribute__((aligned(64)));
static struct steal st __attribute__((aligned(64)));

/* ((delta << shift) * mul) >> 32 without 64-bit division (pvclock_scale_delta). */
static u64 scale(u64 d, u32 mul, int shift) {
    if (shift < 0) d >>= -shift; else d <<= shift;
    return (d >> 32) * mul + (((d & 0xFFFFFFFFu) * mul) >> 32);
}
static u64 kvmclock_ns(void) {
    for (;;) {
        u32 v = pvti.version;
        __asm__ volatile("" ::: "memory");
        u64 ns = pvti.system_time + scale(rdtsc() - pvti.tsc_timestamp, pvti.mul, pvti.shift);
        __asm__ volatile("" ::: "memory");
        if (!(v & 1) && v == pvti.version) return ns;
    }
}
/* Reads steal under its version seqlock (kvm_steal_clock). */
static u64 read_steal(u32 *ver) {
    for (;;) {
        u32 v = st.version;
        __asm__ volatile("" ::: "memory");
        u64 s = st.steal;
        __asm__ volatile("" ::: "memory");
        if (!(v & 1) && v == st.version) { *ver = v; return s; }
    }
}

static void send_ipi(u32 apic_id, u32 low) {
    REG(0x310) = apic_id << 24;
    REG(0x300) = low;
    for (int i = 0; i < 1000 && (REG(0x300) & (1u << 12)); i++) { }
}

struct mbi { u32 flags, mem_lower, mem_upper, boot_device, cmdline; };

static void start_spinning_ap(void) {
    *COUNTER = 0;
    memcpy((void *)TRAMPOLINE, spin_tramp, (uptr)(spin_tramp_end - spin_tramp));
    REG(0xF0) = 0x1FF;
    send_ipi(1, 0x00004500); delay(10000);
    send_ipi(1, 0x00008500); delay(10000);
    send_ipi(1, 0x00004600 | (TRAMPOLINE >> 12));
    for (u32 i = 0; i < 10000000 && *COUNTER == 0; i++) { }
    check(*COUNTER == 1, "steal: the AP started and spins");
}

/* steal/elapsed within [20 %, 80 %]: two spinning vCPUs share one host thread about equally. */
static void check_share(u64 ds, u64 dt, const char *what) {
    printf("elapsed %u, steal %u (same unit)\n", (u32)dt, (u32)ds);
    check(ds * 5 >= dt && ds * 5 <= dt * 4, what);
}

static void test_kvm(void) {
    u32 r[4];
    cpuid(0x40000000, r);
    check(r[1] == 0x4b4d564b && r[2] == 0x564b4d56 && r[3] == 0x4d, "steal: KVM signature");
    cpuid(0x40000001, r);
    check((r[0] >> 5) & 1, "steal: KVM_FEATURE_STEAL_TIME advertised");
    wrmsr(0x4b564d01, (u32)&pvti | 1);
    wrmsr(0x4b564d03, (u32)&st | 1);
    u32 v0;
    u64 s0 = read_steal(&v0);
    printf("steal before the AP starts: %u ns (version %u)\n", (u32)s0, v0);
    check(s0 == 0, "steal: zero while only the BSP runs");
    start_spinning_ap();
    u32 va, vb;
    u64 sa = read_steal(&va), ta = kvmclock_ns();
    u32 spins_a = *AP_SPINS;
    delay(3000000);
    u64 sb = read_steal(&vb), tb = kvmclock_ns();
    u32 spins_b = *AP_SPINS;
    printf("version %u -> %u, AP spun %u times\n", va, vb, spins_b - spins_a);
    check(spins_b != spins_a, "steal: the AP kept running meanwhile");
    check(sb > sa, "steal: grows while another vCPU runs");
    check(!(vb & 1) && vb > va, "steal: record version even and advancing");
    check_share(sb - sa, tb - ta, "steal: 20-80 % of elapsed kvmclock time with two spinning vCPUs");
    check(st.preempted == 0 && st.flags == 0, "steal: preempted and flags stay 0");
}

/* Xen 32-bit hypercall: nr in EAX, args EBX, ECX, EDX (pv-abi.md 6.2). */
static long xen_hc(u32 nr, u32 a1, u32 a2, u32 a3) {
    long ret;
    __asm__ volatile("vmmcall" : "=a"(ret), "+b"(a1), "+c"(a2), "+d"(a3) : "a"(nr) : "memory", "esi", "edi");
    return ret;
}
static struct { volatile u32 state, pad; volatile u64 entry, time[4]; } runstate __attribute__((aligned(64)));

static void test_xen(void) {
    u32 r[4];
    cpuid(0x40000000, r);
    check(r[1] == 0x566e6558 && r[2] == 0x65584d4d && r[3] == 0x4d4d566e, "steal: Xen signature");
    static u64 area;
    area = (u32)&runstate;
    check(xen_hc(24, 5, 0, (u32)&area) == 0, "steal: VCPUOP_register_runstate_memory_area -> 0");
    check(runstate.state == 0 && runstate.time[1] == 0, "steal: running, time[runnable] 0 while only the BSP runs");
    start_spinning_ap();
    u64 sa = runstate.time[1], ea = runstate.entry;
    delay(3000000);
    u64 sb = runstate.time[1], eb = runstate.entry;
    check(sb > sa, "steal: time[RUNSTATE_runnable] grows while another vCPU runs");
    check(runstate.state == 0, "steal: state stays RUNSTATE_running");
    check(runstate.time[0] + runstate.time[1] == runstate.entry, "steal: time[running] + time[runnable] = state_entry_time");
    check_share(sb - sa, eb - ea, "steal: 20-80 % of elapsed Xen system time with two spinning vCPUs");
}

static volatile u64 vmw_steal __attribute__((aligned(64)));
static void test_vmware(void) {
    u32 a = 0x564D5868, b = 0, c = 91, d = 0x5658, si = 0, di = (u32)&vmw_steal;
    __asm__ volatile("inl (%%dx), %%eax" : "+a"(a), "+b"(b), "+c"(c), "+d"(d), "+S"(si), "+D"(di) :: "memory");
    check(a == 1, "steal: VMware STEALCLOCK enabled");
    check(vmw_steal == 0, "steal: VMware steal clock 0 while only the BSP runs");
    start_spinning_ap();
    u64 sa = vmw_steal, ta = rdtsc();
    delay(3000000);
    u64 sb = vmw_steal, tb = rdtsc();
    check(sb > sa, "steal: VMware steal clock grows while another vCPU runs");
    check_share(sb - sa, tb - ta, "steal: 20-80 % of elapsed TSC cycles with two spinning vCPUs");
}

int main(u32 magic, struct mbi *mbi) {
    const char *arg = "kvm";
    if (magic == 0x2BADB002 && (mbi->flags & 4)) {
        const char *s = (const char *)(uptr)mbi->cmdline;
        while (*s && *s != ' ') s++;
        while (*s == ' ') s++;
        if (*s) arg = s;
    }
    printf("steal guest: %s\n", arg);
    if (strcmp(arg, "kvm") == 0) test_kvm();
    else if (strcmp(arg, "xen") == 0) test_xen();
    else if (strcmp(arg, "vmware") == 0) test_vmware();
    else { printf("FAIL unknown personality '%s' (kvm, xen, vmware)\n", arg); return 1; }
    finish();
}
