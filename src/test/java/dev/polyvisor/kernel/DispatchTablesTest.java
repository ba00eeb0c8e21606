package dev.polyvisor.kernel;

import java.util.List;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** DispatchTables on {@link SyntheticKernel}: a KVM-bound miniature kernel at a KASLR slide. */
class DispatchTablesTest {
    static final long SLIDE = 0x260_0000, PHYS_BASE = 0x1C0_0000, PAGE_OFFSET = 0xFFFF_9A00_0000_0000L;

    @Test
    void everyCodePointerIsNamedAfterItsSymbol() throws Exception {
        SyntheticKernel k = new SyntheticKernel(SLIDE, PHYS_BASE, PAGE_OFFSET, 3);
        DispatchTables t = DispatchTables.read(k.memory());
        System.out.print(t.format());
        assertEquals("native_io_delay", t.get("pv_ops.cpu.io_delay"));
        assertEquals("NULL", t.get("pv_ops.irq.save_fl"), "a callee-save slot is one entry, its func");
        assertEquals("kvm_flush_tlb_multi", t.get("pv_ops.mmu.flush_tlb_multi"));
        assertEquals("native_flush_tlb_multi", t.get("pv_ops.mmu.hooks[0]"));
        assertEquals("native_io_delay+0x4", t.get("pv_ops.mmu.hooks[1]"));
        assertEquals("0xffffffffc0001234", t.get("pv_ops.lock.queued_spin_lock_slowpath"), "no symbol: the runtime address in hex");
        assertEquals("__raw_callee_save___kvm_vcpu_is_preempted", t.get("pv_ops.lock.vcpu_is_preempted"));
        DispatchTables.Code code = (DispatchTables.Code) t.value("pv_ops.mmu.flush_tlb_multi").orElseThrow();
        assertEquals(k.run("kvm_flush_tlb_multi"), code.address(), "the raw value is the runtime (slid) pointer");

        assertEquals("kvm_sched_clock_read", t.get("static_call.pv_sched_clock"));
        assertEquals("native_steal_clock", t.get("static_call.pv_steal_clock"));
        assertTrue(t.value("static_call.tp_func_sched_switch").isEmpty(), "tracepoint static calls are left out");

        assertEquals("x2apic_phys", t.get("apic.name"));
        assertEquals("x2apic_send_IPI_mask", t.get("apic.send_IPI_mask"));
        assertTrue(t.value("apic.dest_mode_logical").isEmpty(), "data members are not dispatch entries");

        assertEquals("native_calibrate_tsc", t.get("x86_platform.calibrate_tsc"));
        assertEquals("NULL", t.get("x86_platform.get_nmi_reason"));
        assertTrue(t.get("x86_init").contains("__initdata"), t.get("x86_init"));
        assertEquals("setup_APIC_timer", t.get("x86_cpuinit.setup_percpu_clockev"));

        assertEquals("1", t.get("static_key.paravirt_steal_enabled"));
        assertEquals("0", t.get("static_key.virt_spin_lock_key"));
        assertEquals("<absent from this kernel>", t.get("static_key.__use_tsc"));

        assertEquals("kvm-clock", t.get("clocksource.name"));
        assertEquals("kvm_clock_get_cycles", t.get("clocksource.read"));
        for (int cpu = 0; cpu < 2; cpu++) {
            assertEquals("lapic-deadline", t.get("clockevent[" + cpu + "].name"));
            assertEquals("lapic_next_deadline", t.get("clockevent[" + cpu + "].set_next_event"));
            assertEquals("tick_handle_periodic", t.get("clockevent[" + cpu + "].event_handler"));
        }
        assertTrue(t.value("clockevent[2].name").isEmpty());

        List<String> keys = List.copyOf(t.entries().keySet());
        assertEquals("pv_ops.cpu.io_delay", keys.getFirst());
        assertTrue(keys.indexOf("pv_ops.lock.vcpu_is_preempted") < keys.indexOf("static_call.pv_sched_clock"));
        assertTrue(keys.indexOf("apic.name") < keys.indexOf("apic.send_IPI_mask"));
        assertTrue(keys.indexOf("x86_cpuinit.setup_percpu_clockev") < keys.indexOf("clockevent[0].name"));
        assertThrows(IllegalArgumentException.class, () -> t.get("pv_ops.time.sched_clock"));
        assertEquals(7, t.under("pv_ops.").size());
    }

    @Test
    void initDataIsReadWhileTheKernelStillHasIt() throws Exception {
        SyntheticKernel k = new SyntheticKernel(0, 0, KernelAddresses.DEFAULT_PAGE_OFFSET, 1);
        DispatchTables t = DispatchTables.read(k.memory());
        assertEquals("x86_init_noop", t.get("x86_init.timers.timer_init"));
        assertEquals("kvm_flush_tlb_multi", t.get("pv_ops.mmu.flush_tlb_multi"));
    }

    @Test
    void initDataReadBeforeFreeInitmemStandsInForTheFreedRoot() throws Exception {
        // kernel_init() sets SYSTEM_FREEING_INITMEM (2) just before it calls free_initmem(): still readable.
        SyntheticKernel k = new SyntheticKernel(SLIDE, PHYS_BASE, PAGE_OFFSET, 1);
        k.ram.u32(k.phys(k.sym("system_state")), 2);
        DispatchTables before = DispatchTables.readInitData(k.memory());
        assertEquals(List.of("x86_init.timers.timer_init"), List.copyOf(before.entries().keySet()), "only the __initdata roots");
        assertEquals("x86_init_noop", before.get("x86_init.timers.timer_init"));
        // free_initmem(): system_state reaches SYSTEM_FREEING_INITMEM and the pages are poisoned.
        k.ram.u32(k.phys(k.sym("system_state")), 3);
        k.ram.u64(k.phys(k.sym("x86_init")), 0xCCCC_CCCC_CCCC_CCCCL);
        DispatchTables after = DispatchTables.read(k.memory(), before);
        assertEquals("x86_init_noop", after.get("x86_init.timers.timer_init"));
        assertTrue(after.value("x86_init").isEmpty(), "no 'freed' entry once the earlier read supplies the root");
        List<String> keys = List.copyOf(after.entries().keySet());
        assertTrue(keys.indexOf("x86_platform.calibrate_tsc") < keys.indexOf("x86_init.timers.timer_init")
                && keys.indexOf("x86_init.timers.timer_init") < keys.indexOf("x86_cpuinit.setup_percpu_clockev"), "in root order");
        assertTrue(DispatchTables.read(k.memory()).get("x86_init").contains("freed"), "without the earlier read it reads as freed");
        assertTrue(DispatchTables.readInitData(k.memory()).get("x86_init").contains("freed"), "read too late, it says so");
    }

    @Test
    void aRootTheKernelLacksIsOneUnreadableEntry() throws Exception {
        SyntheticKernel k = new SyntheticKernel(SLIDE, PHYS_BASE, PAGE_OFFSET, 3);
        KernelSymbols without = KernelSymbols.of(k.image.symbols().all().stream().filter(s -> !s.name().equals("curr_clocksource")).toList());
        DispatchTables t = DispatchTables.read(new KernelMemory(k.ram, new KernelImage(k.image.elf(), k.image.btf(), without), k.addresses));
        assertEquals("<the kernel has no symbol curr_clocksource>", t.get("clocksource"));
        assertEquals("kvm_flush_tlb_multi", t.get("pv_ops.mmu.flush_tlb_multi"));
        assertEquals("lapic-deadline", t.get("clockevent[0].name"));
    }

    @Test
    void aWrongSlideShowsAsUnreadableOrUnnamedEntriesNotAsAFailure() throws Exception {
        SyntheticKernel k = new SyntheticKernel(SLIDE, PHYS_BASE, PAGE_OFFSET, 3);
        // Reading with nokaslr's mapping: the tables are looked for at the wrong physical addresses (zeros there).
        DispatchTables t = DispatchTables.read(new KernelMemory(k.ram, k.image, KernelAddresses.nokaslr()));
        assertEquals("NULL", t.get("pv_ops.mmu.flush_tlb_multi"));
        assertEquals("<NULL>", t.get("apic"));
    }
}
