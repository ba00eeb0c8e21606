package dev.polyvisor.kernel;

import dev.polyvisor.guest.DebExtractor;
import dev.polyvisor.guest.DebPackage;
import dev.polyvisor.guest.DebianFixture;
import dev.polyvisor.guest.DebianPackages;
import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.kernel.BtfType.Composite;
import dev.polyvisor.kernel.BtfType.Ptr;
import dev.polyvisor.vmm.boot.linux.KernelPayload;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The readers on the real default guest kernel (Debian's linux-image-*-cloud-amd64): vmlinux out of
 * the bzImage, its .BTF, its kallsyms. Skipped, like every "debian" test, when the packages cannot be
 * obtained ({@link DebianFixture}).
 */
@Tag("debian")
class DebianKernelImageTest {
    private static GuestImage guest;
    private static KernelImage image;

    @BeforeAll
    static void load() throws Exception {
        guest = DebianFixture.defaultGuest();
        long t0 = System.nanoTime();
        byte[] vmlinux = KernelPayload.vmlinux(Files.readAllBytes(guest.kernel()));
        image = KernelImage.of(vmlinux);
        System.err.printf("debian kernel image: %s: vmlinux %d MiB, %d BTF types, %d kallsyms symbols, read in %.1f s%n",
                guest.kernelRelease(), vmlinux.length >> 20, image.btf().count(), image.symbols().size(), (System.nanoTime() - t0) / 1e9);
    }

    @Test
    void theImageIsAStrippedElfWithBtfAndItsBannerNamesTheRelease() throws Exception {
        Elf64 elf = image.elf();
        assertEquals(62, elf.machine);
        assertTrue(elf.symbols().isEmpty(), "the bzImage's vmlinux is objcopy -S stripped");
        assertTrue(elf.requireSection(".BTF").alloc(), ".BTF is loaded with the kernel (it backs /sys/kernel/btf/vmlinux)");
        String banner = image.banner();
        System.err.println("debian kernel image: " + banner);
        assertTrue(banner.startsWith("Linux version " + guest.kernelRelease() + " "), banner);
    }

    @Test
    void kallsymsNameBothFlushTlbImplementationsAndTheDispatchRoots() {
        KernelSymbols s = image.symbols();
        assertTrue(s.size() > 50_000, "kallsyms with CONFIG_KALLSYMS_ALL: " + s.size());
        long stext = s.require("_stext"), etext = s.require("_etext");
        for (String fn : List.of("native_flush_tlb_multi", "kvm_flush_tlb_multi", "native_sched_clock", "kvm_sched_clock_read",
                "__pv_queued_spin_lock_slowpath", "native_queued_spin_lock_slowpath", "kvm_clock_get_cycles")) {
            KernelSymbols.Symbol sym = s.symbol(fn).orElseThrow(() -> new AssertionError("no symbol " + fn));
            assertTrue(sym.text(), sym.toString());
            assertTrue(Long.compareUnsigned(sym.address(), stext) >= 0 && Long.compareUnsigned(sym.address(), etext) < 0, sym.toString());
            assertEquals(fn, s.describe(sym.address()));
            System.err.println("debian kernel image: " + sym);
        }
        assertEquals("native_flush_tlb_multi+0x1", s.describe(s.require("native_flush_tlb_multi") + 1));
        for (String data : List.of("pv_ops", "apic", "x86_platform", "x86_init", "x86_cpuinit", "__SCK__pv_sched_clock",
                "curr_clocksource", "__per_cpu_offset", "phys_base", "page_offset_base", "linux_banner", "virt_spin_lock_key",
                "paravirt_steal_enabled", "system_state", "__init_begin", "__init_end")) {
            KernelSymbols.Symbol sym = s.symbol(data).orElseThrow(() -> new AssertionError("no symbol " + data));
            assertFalse(sym.text(), sym.toString());
            assertTrue(KernelAddresses.inImage(sym.address()), sym.toString());
        }
        long x86Init = s.require("x86_init");
        assertTrue(x86Init >= s.require("__init_begin") && x86Init < s.require("__init_end"), "x86_init is __initdata");
        assertTrue(s.require("tick_cpu_device") < 0x100000, "per-CPU symbols are offsets into the per-CPU area (absolute-percpu)");
    }

    @Test
    void btfGivesPvOpsItsSixOneLayout() {
        Btf btf = image.btf();
        Composite t = btf.struct("paravirt_patch_template");
        // arch/x86/include/asm/paravirt_types.h in 6.1: cpu, irq, mmu, lock. pv_ops.time is gone since 5.10:
        // sched_clock and steal_clock are the static calls pv_sched_clock and pv_steal_clock.
        assertEquals(List.of("cpu", "irq", "mmu", "lock"), t.members().stream().map(Composite.Member::name).toList());
        assertEquals(t, btf.typeOf("pv_ops"));
        for (String path : List.of("cpu.io_delay", "cpu.cpuid", "irq.save_fl", "irq.safe_halt", "mmu.flush_tlb_multi", "mmu.write_cr3",
                "mmu.read_cr2", "lock.queued_spin_lock_slowpath", "lock.queued_spin_unlock", "lock.wait", "lock.kick", "lock.vcpu_is_preempted")) {
            Btf.Location l = btf.member("paravirt_patch_template", path);
            long off = l.byteOffset();
            System.err.printf("debian kernel image: pv_ops.%-32s +%-4d %s%n", path, off, btf.describe(l.type()));
            assertEquals(0, off % 8, path);
            assertTrue(off + btf.sizeOf(l.type()) <= t.size(), path);
            BtfType type = btf.resolve(l.type());
            boolean calleeSave = type instanceof Composite c && c.name().equals("paravirt_callee_save");
            assertTrue(btf.isFunctionPointer(l.type()) || calleeSave, path + " is " + btf.describe(l.type()));
        }
        assertEquals(0, btf.memberOffset("paravirt_patch_template", "cpu.io_delay"));
        assertTrue(btf.memberOffset("paravirt_patch_template", "mmu.flush_tlb_multi") >= btf.memberOffset("paravirt_patch_template", "mmu"));
        assertTrue(btf.memberOffset("paravirt_patch_template", "lock.vcpu_is_preempted")
                > btf.memberOffset("paravirt_patch_template", "lock.queued_spin_lock_slowpath"));
        assertThrows(IllegalArgumentException.class, () -> btf.member("paravirt_patch_template", "time.sched_clock"));
        assertEquals(0, btf.memberOffset("static_call_key", "func"));
    }

    @Test
    void btfDescribesTheOtherRootsAndThePerCpuTickDevice() {
        Btf btf = image.btf();
        assertInstanceOf(Ptr.class, btf.typeOf("apic"));
        assertEquals("struct apic *", btf.describe(btf.typeOfVariable("apic")));
        assertTrue(btf.isFunctionPointer(btf.member("apic", "send_IPI_mask").type()));
        assertEquals("char *", btf.describe(btf.member("apic", "name").type())); // 6.1: char *name
        assertTrue(btf.isFunctionPointer(btf.member("x86_init_ops", "timers.timer_init").type()));
        assertTrue(btf.isFunctionPointer(btf.member("x86_init_ops", "hyper.init_platform").type()));
        assertTrue(btf.isFunctionPointer(btf.member("x86_platform_ops", "calibrate_tsc").type()));
        assertTrue(btf.isFunctionPointer(btf.member("x86_cpuinit_ops", "setup_percpu_clockev").type()));
        assertTrue(btf.isFunctionPointer(btf.member("clock_event_device", "set_next_event").type()));
        assertEquals("enabled", btf.struct("static_key").members().getFirst().name());
        // tick_cpu_device is per-CPU, so BTF has its VAR; its DATASEC offset is the kallsyms value.
        BtfType.Var v = btf.variable("tick_cpu_device").orElseThrow();
        assertEquals("tick_device", btf.resolve(v.type()).name());
        assertEquals(image.symbols().require("tick_cpu_device"), btf.placement(v).orElseThrow().offset());
        assertEquals(btf.typeId("struct clock_event_device *"), btf.member("tick_device", "evtdev").type());
    }

    @Test
    void theSystemMapInDebiansPackageIsAPlaceholderSoKallsymsIsTheSource() throws Exception {
        DebPackage deb = DebianPackages.fetch(DebianPackages.resolveKernelPackage());
        Map<String, byte[]> maps = DebExtractor.dataFiles(deb.file(), p -> p.startsWith("boot/System.map-"));
        assertEquals(1, maps.size(), maps.keySet().toString());
        String text = new String(maps.values().iterator().next(), StandardCharsets.UTF_8);
        try {
            KernelSymbols map = KernelSymbols.fromSystemMap(text);
            // Should Debian ever ship the real one, it must agree with kallsyms.
            assertEquals(image.symbols().require("kvm_flush_tlb_multi"), map.require("kvm_flush_tlb_multi"));
        } catch (KernelFormatException e) {
            System.err.println("debian kernel image: " + e.getMessage());
            assertTrue(e.getMessage().contains("placeholder"), e.getMessage());
        }
    }
}
