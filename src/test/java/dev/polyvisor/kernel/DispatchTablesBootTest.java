package dev.polyvisor.kernel;

import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImageException;
import dev.polyvisor.guest.GuestImages;
import dev.polyvisor.guest.GuestInit;
import dev.polyvisor.vmm.Outcome;
import dev.polyvisor.vmm.Vm;
import dev.polyvisor.vmm.VmConfig;
import dev.polyvisor.vmm.boot.linux.KernelPayload;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.opentest4j.TestAbortedException;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 10's first piece end to end: boot the default Debian guest, let it power off, and read what
 * it bound straight out of guest RAM (the VM's memory is intact until {@link Vm#close()}), with no
 * help from the guest. The guest's own view (sysfs) is printed on the console for comparison.
 */
@Tag("linux")
class DispatchTablesBootTest {
    private static final String APPEND = "console=ttyS0 mitigations=off tsc=reliable nowatchdog cryptomgr.notests ";
    /** What the guest itself says its clocksource and CPU 0's clockevent device are. */
    private static final String SYSFS = "echo \"cs=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)\"; "
            + "echo \"ce=$(cat /sys/devices/system/clockevents/clockevent0/current_device)\"";
    private static final Duration TIMEOUT = Duration.ofSeconds(240);

    private static GuestImage guest;
    private static KernelImage image;

    @BeforeAll
    static void guestImage() throws Exception {
        try {
            guest = GuestImages.defaultGuest();
        } catch (GuestImageException e) {
            throw new TestAbortedException("the default Debian guest cannot be built here: " + e.getMessage());
        }
        image = KernelImage.of(KernelPayload.vmlinux(Files.readAllBytes(guest.kernel())));
    }

    record Boot(String console, DispatchTables tables, KernelAddresses addresses) {
        String sysfs(String key) {
            Matcher m = Pattern.compile("(?m)^" + key + "=(\\S*)").matcher(console);
            assertTrue(m.find(), "the guest printed no " + key + "=\n" + tail());
            return m.group(1);
        }

        String tail() { return console.length() <= 4000 ? console : "..." + console.substring(console.length() - 4000); }
    }

    /** Boots, and after poweroff reads the dispatch tables (with {@code nokaslr}'s fixed mapping, or by detecting the slides). */
    private static Boot boot(String personality, int smp, boolean kaslr) throws Exception {
        return boot(personality, smp, kaslr, VmConfig.BootKind.LINUX);
    }

    /** As above, the kernel entered as {@code kind} says (LINUX: the bzImage's decompressor runs; LINUX_VMLINUX: the VMM's). */
    private static Boot boot(String personality, int smp, boolean kaslr, VmConfig.BootKind kind) throws Exception {
        VmConfig cfg = VmConfig.of(guest.kernel(), kind)
                .withInitrd(guest.initramfs())
                .withAppend(APPEND + (kaslr ? "" : "nokaslr ") + GuestInit.execParameter(SYSFS))
                .withSmp(smp)
                .withTimeout(TIMEOUT)
                .withPersonalities(List.of(personality), List.of());
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        try (Vm vm = new Vm(cfg, console)) {
            Outcome outcome = vm.run();
            String text = console.toString(StandardCharsets.UTF_8);
            assertEquals(Outcome.Kind.POWEROFF, outcome.kind(), outcome.message() + "\n" + text);
            PhysicalMemory ram = PhysicalMemory.of(vm.memory);
            long t0 = System.nanoTime();
            KernelAddresses addresses = kaslr ? KernelAddresses.detect(ram, vm.memory.ramSize, image) : KernelAddresses.nokaslr();
            // KernelAddresses' claim: with nokaslr, Polyvisor's loader leaves phys_base 0 and the direct map at its default base.
            if (!kaslr) assertEquals(addresses, KernelAddresses.detect(ram, vm.memory.ramSize, image));
            DispatchTables tables = DispatchTables.read(new KernelMemory(ram, image, addresses));
            System.err.printf("dispatch tables %s smp %d %s: %d entries read in %.0f ms (virtual slide 0x%x, phys_base 0x%x, page_offset_base 0x%x)%n",
                    personality, smp, kaslr ? "kaslr" : "nokaslr", tables.entries().size(), (System.nanoTime() - t0) / 1e6,
                    addresses.virtualSlide(), addresses.physBase(), addresses.pageOffsetBase());
            tables.entries().forEach((k, v) -> {
                if (!k.startsWith("static_call.") || k.startsWith("static_call.pv_"))
                    System.err.println("  " + k + " = " + v.display());
            });
            return new Boot(text, tables, addresses);
        }
    }

    @Test
    void kvmBindsKvmClockPvTlbFlushPvSpinlocksAndSteal() throws Exception {
        Boot b = boot("kvm", 2, false);
        DispatchTables t = b.tables();
        assertEquals("kvm_sched_clock_read", t.get("static_call.pv_sched_clock"));
        assertEquals("kvm_steal_clock", t.get("static_call.pv_steal_clock"));
        assertEquals("kvm_flush_tlb_multi", t.get("pv_ops.mmu.flush_tlb_multi"));
        assertEquals("__pv_queued_spin_lock_slowpath", t.get("pv_ops.lock.queued_spin_lock_slowpath"));
        assertEquals("kvm_kick_cpu", t.get("pv_ops.lock.kick"));
        assertEquals("kvm_wait", t.get("pv_ops.lock.wait"));
        assertEquals("__raw_callee_save___pv_queued_spin_unlock", t.get("pv_ops.lock.queued_spin_unlock"));
        assertEquals("kvm_io_delay", t.get("pv_ops.cpu.io_delay"));
        assertEquals("kvm_setup_secondary_clock", t.get("x86_cpuinit.early_percpu_clock_init"));
        assertEquals("__raw_callee_save___kvm_vcpu_is_preempted", t.get("pv_ops.lock.vcpu_is_preempted"));
        assertEquals("1", t.get("static_key.paravirt_steal_enabled"));
        assertEquals("kvm-clock", t.get("clocksource.name"));
        assertEquals(b.sysfs("cs"), t.get("clocksource.name"));
        assertEquals(b.sysfs("ce"), t.get("clockevent[0].name"));
        assertTrue(t.value("clockevent[1].name").isPresent(), "two CPUs, two tick devices");
        assertFalse(t.get("apic.name").isEmpty());
        assertTrue(t.get("x86_init").contains("__initdata"), "read after free_initmem()");
    }

    @Test
    void bareKeepsTheNativeOperations() throws Exception {
        Boot b = boot("bare", 1, false);
        DispatchTables t = b.tables();
        assertEquals("native_sched_clock", t.get("static_call.pv_sched_clock"));
        assertEquals("native_steal_clock", t.get("static_call.pv_steal_clock"));
        assertEquals("native_flush_tlb_multi", t.get("pv_ops.mmu.flush_tlb_multi"));
        assertEquals("native_queued_spin_lock_slowpath", t.get("pv_ops.lock.queued_spin_lock_slowpath"));
        assertEquals("__raw_callee_save___native_vcpu_is_preempted", t.get("pv_ops.lock.vcpu_is_preempted"));
        assertEquals("native_io_delay", t.get("pv_ops.cpu.io_delay"));
        assertEquals("__raw_callee_save___native_queued_spin_unlock", t.get("pv_ops.lock.queued_spin_unlock"));
        assertEquals("0", t.get("static_key.paravirt_steal_enabled"));
        assertEquals(b.sysfs("cs"), t.get("clocksource.name"));
        assertEquals(b.sysfs("ce"), t.get("clockevent[0].name"));
    }

    @Test
    void withKaslrTheSlidesAreDetectedAndTheSameTablesRead() throws Exception {
        Boot b = boot("bare", 1, true);
        KernelAddresses a = b.addresses();
        assertEquals(0, a.virtualSlide() % KernelAddresses.PHYSICAL_ALIGN);
        assertEquals(0, a.physicalSlide() % KernelAddresses.PHYSICAL_ALIGN);
        DispatchTables t = b.tables();
        assertEquals("native_sched_clock", t.get("static_call.pv_sched_clock"));
        assertEquals("native_flush_tlb_multi", t.get("pv_ops.mmu.flush_tlb_multi"));
        assertEquals(b.sysfs("cs"), t.get("clocksource.name"));
        assertEquals(b.sysfs("ce"), t.get("clockevent[0].name"));
    }

    @Test
    void theVmmsOwnKaslrMovesTheVirtualBaseAndTheKernelRunsThere() throws Exception {
        // The VMM unpacks the bzImage and relocates the vmlinux for a random virtual base (KernelRelocations); the
        // physical address stays the preferred one, so phys_base undoes the virtual slide exactly.
        Boot b = boot("bare", 1, true, VmConfig.BootKind.LINUX_VMLINUX);
        KernelAddresses a = b.addresses();
        assertEquals(0, a.virtualSlide() % KernelAddresses.PHYSICAL_ALIGN);
        assertEquals(0, a.physicalSlide(), "phys_base " + Long.toHexString(a.physBase()) + ", slide " + Long.toHexString(a.virtualSlide()));
        assertTrue(b.console().contains("polyvisor: exit status 0"), b.tail());
        DispatchTables t = b.tables();
        assertEquals("native_sched_clock", t.get("static_call.pv_sched_clock"));
        assertEquals("native_flush_tlb_multi", t.get("pv_ops.mmu.flush_tlb_multi"));
        assertEquals(b.sysfs("cs"), t.get("clocksource.name"));
    }
}
