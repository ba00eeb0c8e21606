package dev.polyvisor.kernel;

import dev.polyvisor.kernel.BtfBuilder.M;
import dev.polyvisor.kernel.BtfType.IntType;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A miniature running kernel for tests: BTF for the shapes of arch/x86/include/asm/paravirt_types.h,
 * apic.h, x86_init.h, clocksource.h, clockchips.h, jump_label.h and static_call_types.h (cut down to
 * a few members each); a symbol table; an ELF whose .data holds linux_banner; and RAM in which the
 * image sits at a KASLR slide with its tables filled in as a KVM guest would have them.
 */
final class SyntheticKernel {
    static final long TEXT = 0xFFFF_FFFF_8100_0000L, DATA = 0xFFFF_FFFF_8200_0000L;
    static final String BANNER = "Linux version 6.1.0-synthetic (test@polyvisor) #1 SMP\n";

    final long virtualSlide, physBase, pageOffsetBase;
    final KernelAddresses addresses;
    final KernelImage image;
    final SparseRam ram = new SparseRam(1L << 30);
    private final List<KernelSymbols.Symbol> syms = new ArrayList<>();

    /** @param systemState the value of system_state (3 = SYSTEM_RUNNING: init memory freed) */
    SyntheticKernel(long virtualSlide, long physBase, long pageOffsetBase, int systemState) throws KernelFormatException {
        this.virtualSlide = virtualSlide;
        this.physBase = physBase;
        this.pageOffsetBase = pageOffsetBase;
        this.addresses = new KernelAddresses(virtualSlide, physBase, pageOffsetBase);

        // ---- symbols (link-time addresses) ----
        text("native_io_delay", 0x100);
        text("__raw_callee_save___kvm_vcpu_is_preempted", 0x200);
        text("native_flush_tlb_multi", 0x300);
        text("kvm_flush_tlb_multi", 0x380);
        text("x2apic_send_IPI_mask", 0x500);
        text("native_calibrate_tsc", 0x600);
        text("kvm_clock_get_cycles", 0x700);
        text("lapic_next_deadline", 0x800);
        text("tick_handle_periodic", 0x900);
        text("native_sched_clock", 0xA00);
        text("kvm_sched_clock_read", 0xA80);
        text("native_steal_clock", 0xAC0);
        text("x86_init_noop", 0xB00);
        text("setup_APIC_timer", 0xC00);
        data("pv_ops", 0);
        data("apic", 0x100);
        data("x86_platform", 0x200);
        data("x86_cpuinit", 0x300);
        data("__SCK__pv_sched_clock", 0x400);
        data("__SCK__pv_steal_clock", 0x410);
        data("__SCK__tp_func_sched_switch", 0x420);
        data("paravirt_steal_enabled", 0x500);
        data("virt_spin_lock_key", 0x510);
        syms.add(new KernelSymbols.Symbol(DATA + 0x600, 'b', "curr_clocksource"));
        data("__per_cpu_offset", 0x700);
        data("nr_cpu_ids", 0x800);
        data("system_state", 0x810);
        data("page_offset_base", 0x820);
        data("phys_base", 0x830);
        data("linux_banner", 0x900);
        syms.add(new KernelSymbols.Symbol(DATA + 0xA00, 'd', "apic_x2apic_phys"));
        syms.add(new KernelSymbols.Symbol(DATA + 0xB00, 'd', "kvm_clock"));
        data("__init_begin", 0x10000);
        data("x86_init", 0x10100);
        data("__init_end", 0x20000);
        syms.add(new KernelSymbols.Symbol(0x140, 'A', "tick_cpu_device"));

        // ---- BTF ----
        BtfBuilder b = new BtfBuilder();
        int intT = b.intType("int", 4, IntType.SIGNED);
        int uint = b.intType("unsigned int", 4, 0);
        int ulong = b.intType("long unsigned int", 8, 0);
        int charT = b.intType("char", 1, IntType.SIGNED | IntType.CHAR);
        int u32 = b.typedef("u32", uint);
        int fn = b.ptr(b.funcProto(0));
        int voidPtr = b.ptr(0);
        int constCharPtr = b.ptr(b.constOf(charT));
        int atomic = b.typedef("atomic_t", b.struct("", 4, new M("counter", intT, 0)));
        int staticKey = b.struct("static_key", 16, new M("enabled", atomic, 0), new M("type", ulong, 64));
        b.struct("static_key_true", 16, new M("key", staticKey, 0));
        b.struct("static_key_false", 16, new M("key", staticKey, 0));
        b.struct("static_call_key", 16, new M("func", voidPtr, 0), new M("type", ulong, 64));
        int callee = b.struct("paravirt_callee_save", 8, new M("func", voidPtr, 0));
        int cpu = b.struct("pv_cpu_ops", 8, new M("io_delay", fn, 0));
        int irq = b.struct("pv_irq_ops", 8, new M("save_fl", callee, 0));
        int mmu = b.struct("pv_mmu_ops", 24, new M("flush_tlb_multi", fn, 0), new M("hooks", b.array(fn, intT, 2), 64));
        int lock = b.struct("pv_lock_ops", 16, new M("queued_spin_lock_slowpath", fn, 0), new M("vcpu_is_preempted", callee, 64));
        b.struct("paravirt_patch_template", 56, new M("cpu", cpu, 0), new M("irq", irq, 64), new M("mmu", mmu, 128), new M("lock", lock, 320));
        int apic = b.struct("apic", 24, new M("send_IPI_mask", fn, 0), new M("name", constCharPtr, 64), new M("dest_mode_logical", u32, 128));
        b.ptr(apic);
        int legacy = b.struct("x86_legacy_features", 4, new M("rtc", intT, 0));
        b.struct("x86_platform_ops", 24, new M("calibrate_tsc", fn, 0), new M("legacy", legacy, 64), new M("get_nmi_reason", fn, 128));
        int timers = b.struct("x86_init_timers", 8, new M("timer_init", fn, 0));
        b.struct("x86_init_ops", 8, new M("timers", timers, 0));
        b.struct("x86_cpuinit_ops", 8, new M("setup_percpu_clockev", fn, 0));
        int cs = b.struct("clocksource", 16, new M("read", fn, 0), new M("name", constCharPtr, 64));
        b.ptr(cs);
        int ced = b.struct("clock_event_device", 24, new M("event_handler", fn, 0), new M("set_next_event", fn, 64), new M("name", constCharPtr, 128));
        int tick = b.struct("tick_device", 16, new M("evtdev", b.ptr(ced), 0), new M("mode", intT, 64));
        int tickVar = b.var("tick_cpu_device", tick, 1);
        b.datasec(".data..percpu", 0x1000, tickVar, 0x140, 16);
        b.enumType("system_states", 4, false, "SYSTEM_BOOTING", 0, "SYSTEM_SCHEDULING", 1, "SYSTEM_FREEING_INITMEM", 2, "SYSTEM_RUNNING", 3);
        Btf btf = Btf.parse(b.build());

        // ---- the image: .data with the banner ----
        byte[] dataSec = new byte[0x1000];
        byte[] banner = BANNER.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(banner, 0, dataSec, 0x900, banner.length);
        ElfBuilder eb = new ElfBuilder();
        eb.section(".text", Elf64.SHT_PROGBITS, Elf64.SHF_ALLOC | Elf64.SHF_EXECINSTR, TEXT, new byte[0x1000]);
        eb.section(".data", Elf64.SHT_PROGBITS, Elf64.SHF_ALLOC | Elf64.SHF_WRITE, DATA, dataSec);
        this.image = new KernelImage(Elf64.parse(eb.build()), btf, KernelSymbols.of(syms));

        // ---- RAM: the loaded image and what a KVM guest's boot left in it ----
        ram.write(phys(DATA), dataSec);
        ram.u64(phys(sym("phys_base")), physBase);
        ram.u64(phys(sym("page_offset_base")), pageOffsetBase);
        ram.u32(phys(sym("system_state")), systemState);
        ram.u32(phys(sym("nr_cpu_ids")), 2);
        long pv = phys(sym("pv_ops"));
        ram.u64(pv, run("native_io_delay"));                                     // cpu.io_delay
        ram.u64(pv + 8, 0);                                                       // irq.save_fl.func
        ram.u64(pv + 16, run("kvm_flush_tlb_multi"));                             // mmu.flush_tlb_multi
        ram.u64(pv + 24, run("native_flush_tlb_multi"));                          // mmu.hooks[0]
        ram.u64(pv + 32, run("native_io_delay") + 4);                             // mmu.hooks[1]
        ram.u64(pv + 40, 0xFFFF_FFFF_C000_1234L);                                 // lock.queued_spin_lock_slowpath: a module
        ram.u64(pv + 48, run("__raw_callee_save___kvm_vcpu_is_preempted"));       // lock.vcpu_is_preempted.func
        ram.u64(phys(sym("apic")), run("apic_x2apic_phys"));
        long apicDrv = phys(sym("apic_x2apic_phys"));
        ram.u64(apicDrv, run("x2apic_send_IPI_mask"));
        ram.u64(apicDrv + 8, runData(0xC00));
        ram.cString(phys(DATA + 0xC00), "x2apic_phys");
        ram.u32(apicDrv + 16, 0x1234);
        long plat = phys(sym("x86_platform"));
        ram.u64(plat, run("native_calibrate_tsc"));
        ram.u32(plat + 8, 1);
        ram.u64(plat + 16, 0);
        ram.u64(phys(sym("x86_init")), systemState >= 2 ? 0xCCCC_CCCC_CCCC_CCCCL : run("x86_init_noop"));
        ram.u64(phys(sym("x86_cpuinit")), run("setup_APIC_timer"));
        ram.u64(phys(sym("__SCK__pv_sched_clock")), run("kvm_sched_clock_read"));
        ram.u64(phys(sym("__SCK__pv_steal_clock")), run("native_steal_clock"));
        ram.u32(phys(sym("paravirt_steal_enabled")), 1);
        ram.u32(phys(sym("virt_spin_lock_key")), 0);
        ram.u64(phys(sym("curr_clocksource")), run("kvm_clock"));
        long kvmClock = phys(sym("kvm_clock"));
        ram.u64(kvmClock, run("kvm_clock_get_cycles"));
        ram.u64(kvmClock + 8, runData(0xC20));
        ram.cString(phys(DATA + 0xC20), "kvm-clock");
        ram.cString(phys(DATA + 0xC40), "lapic-deadline");
        // Per-CPU areas in the direct map; each CPU's tick device points at its own clock_event_device there.
        for (int c = 0; c < 2; c++) {
            long area = pageOffsetBase + 0x30_0000 + 0x4_0000L * c, dev = pageOffsetBase + 0x38_0000 + 0x100L * c;
            ram.u64(phys(sym("__per_cpu_offset")) + 8L * c, area);
            ram.u64(area + 0x140 - pageOffsetBase, dev);
            ram.u64(dev - pageOffsetBase, run("tick_handle_periodic"));
            ram.u64(dev - pageOffsetBase + 8, run("lapic_next_deadline"));
            ram.u64(dev - pageOffsetBase + 16, runData(0xC40));
        }
    }

    private void text(String name, long off) { syms.add(new KernelSymbols.Symbol(TEXT + off, 'T', name)); }

    private void data(String name, long off) { syms.add(new KernelSymbols.Symbol(DATA + off, 'D', name)); }

    long sym(String name) { return syms.stream().filter(s -> s.name().equals(name)).findFirst().orElseThrow().address(); }

    /** The runtime address of a symbol (what pointers to it hold). */
    long run(String name) { return sym(name) + virtualSlide; }

    long runData(long off) { return DATA + off + virtualSlide; }

    /** Guest-physical address of a link-time image address. */
    long phys(long link) { return link + virtualSlide - KernelAddresses.START_KERNEL_MAP + physBase; }

    KernelMemory memory() { return new KernelMemory(ram, image, addresses); }
}
