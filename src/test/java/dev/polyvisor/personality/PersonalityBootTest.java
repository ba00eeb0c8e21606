package dev.polyvisor.personality;

import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImageException;
import dev.polyvisor.guest.GuestImages;
import dev.polyvisor.guest.GuestProbe;
import dev.polyvisor.guest.ProbeReport;
import dev.polyvisor.vmm.Outcome;
import dev.polyvisor.vmm.Vm;
import dev.polyvisor.vmm.VmConfig;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.opentest4j.TestAbortedException;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 4's acceptance on the real Debian 6.1 cloud kernel: each personality boots the default guest to
 * its busybox /init, which runs the guest probe (clocksource, clockevent device, /sys/hypervisor, steal
 * time: a {@link ProbeReport}), then powers off. The console carries the kernel log, so the lines Linux prints when it binds each ABI
 * (arch/x86/kernel/cpu/hypervisor.c, kvm.c, kvmclock.c, mshyperv.c, xen/enlighten_hvm.c, vmware.c) are
 * asserted on it, together with a clean log: no BUG, Oops, WARNING, panic or Call Trace.
 *
 * <p>One boot per case; SMP 2 where the ABI's SMP paths are the point (KVM's PV spinlocks, IPIs, TLB flush
 * and sched yield are only set up with more than one possible CPU; Hyper-V IPIs and stimers per CPU; Xen's
 * per-vCPU vcpu_info, timers and IPI event channels), SMP 1 otherwise.
 */
@Tag("linux")
class PersonalityBootTest {
    /** What /init runs (pv.exec, base64): the guest probe, which prints its JSON report between marker lines. */
    private static final String FACTS = GuestProbe.PATH;
    private static final String APPEND = "console=ttyS0 nokaslr mitigations=off tsc=reliable nowatchdog cryptomgr.notests pv.exec=";
    /** The kernel's own markers of a defect (include/asm-generic/bug.h, kernel/panic.c, arch/x86/kernel/dumpstack.c). */
    private static final Pattern UNCLEAN = Pattern.compile("\\bBUG\\b|\\bOops\\b|WARNING:|Kernel panic|\\bCall Trace\\b");
    private static final Duration TIMEOUT = Duration.ofSeconds(240);

    private static GuestImage guest;

    @BeforeAll
    static void guestImage() {
        try {
            guest = GuestImages.defaultGuest();
        } catch (GuestImageException e) {
            throw new TestAbortedException("the default Debian guest cannot be built here: " + e.getMessage());
        }
    }

    /** The console of one boot, with the facts /init printed. */
    record Boot(String console, Outcome outcome) {
        ProbeReport report() {
            try {
                return ProbeReport.parse(console);
            } catch (ProbeReport.MalformedProbeReport e) {
                return fail(e.getMessage() + ": the guest did not reach /init's command\n" + tail());
            }
        }

        /** /sys/hypervisor/type, or "" when the guest has none (only Xen fills /sys/hypervisor). */
        String hypervisorType() {
            var hv = report().sysHypervisor();
            return hv == null ? "" : hv.getOrDefault("type", "");
        }

        void shows(String line) { assertTrue(console.contains(line), "console lacks '" + line + "'\n" + tail()); }

        void lacks(String line) { assertFalse(console.contains(line), "console has '" + line + "'"); }

        String tail() { return console.length() <= 6000 ? console : "..." + console.substring(console.length() - 6000); }

        /** Powered off after /init's command exited 0, and the kernel log has no defect markers. */
        void isClean() {
            assertTrue(console.contains("polyvisor: exit status 0"), "/init's command failed or never ran\n" + tail());
            assertEquals(Outcome.Kind.POWEROFF, outcome.kind(), outcome.message() + "\n" + tail());
            List<String> bad = console.lines().filter(l -> UNCLEAN.matcher(l).find()).toList();
            assertTrue(bad.isEmpty(), "kernel log reports defects:\n" + String.join("\n", bad) + "\n" + tail());
        }
    }

    private static Boot boot(String personality, int smp, String... abiDisable) throws Exception {
        String exec = Base64.getEncoder().encodeToString(FACTS.getBytes(StandardCharsets.US_ASCII));
        VmConfig cfg = VmConfig.of(guest.kernel(), VmConfig.BootKind.LINUX)
                .withInitrd(guest.initramfs())
                .withAppend(APPEND + exec)
                .withSmp(smp)
                .withTimeout(TIMEOUT)
                .withPersonalities(List.of(personality.split("\\+")), List.of(abiDisable));
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        Outcome outcome;
        try (Vm vm = new Vm(cfg, console)) {
            outcome = vm.run();
        }
        String text = console.toString(StandardCharsets.UTF_8);
        System.err.printf("personality boot %s smp %d%s: %s in %.1f s%n", personality, smp,
                abiDisable.length == 0 ? "" : " --abi-disable " + String.join(",", abiDisable),
                outcome.kind(), outcome.wallNanos() / 1e9);
        return new Boot(text, outcome);
    }

    @Test
    void kvmBindsKvmClockPvSpinlocksIpisTlbFlushAndSchedYield() throws Exception {
        Boot b = boot("kvm", 2);
        b.isClean();
        b.shows("Hypervisor detected: KVM");
        b.shows("Booting paravirtualized kernel on KVM");
        b.shows("kvm-clock: Using msrs 4b564d01 and 4b564d00");
        b.shows("kvm-guest: PV spinlocks enabled");
        b.shows("setup PV IPIs");
        b.shows("KVM setup pv remote TLB flush");
        b.shows("setup PV sched yield");
        assertEquals("kvm-clock", b.report().clocksource());
        assertEquals(2, b.report().cpus());
        // Two vCPUs take turns on one host thread: each is runnable while the other runs (kvm_steal_time).
        assertTrue(b.report().stealTicks() > 0, "steal time reported through MSR_KVM_STEAL_TIME");
    }

    @Test
    void hypervBindsTheReferenceTscPageAndTheSyntheticTimer() throws Exception {
        Boot b = boot("hyperv", 2);
        b.isClean();
        b.shows("Hypervisor detected: Microsoft Hyper-V");
        b.shows("Booting paravirtualized kernel on Hyper-V");
        assertEquals("hyperv_clocksource_tsc_page", b.report().clocksource());
        // drivers/clocksource/hyperv_timer.c names stimer0's clockevent device "Hyper-V clockevent".
        assertEquals("Hyper-V clockevent", b.report().clockevent());
        assertEquals(2, b.report().cpus());
    }

    @Test
    void xenHvmDeliversEventsOnTheCallbackVectorAndUsesTheXenClock() throws Exception {
        Boot b = boot("xen", 2);
        b.isClean();
        b.shows("Hypervisor detected: Xen HVM");
        b.shows("Booting paravirtualized kernel on Xen HVM");
        b.shows("Xen HVM callback vector for event delivery is enabled");
        b.shows("platform_pci_unplug: Blkfront and the Xen platform PCI driver have been compiled for this kernel");
        b.lacks("unrecognised magic value");
        assertEquals("xen", b.report().clocksource());
        assertEquals("xen", b.hypervisorType());
        assertEquals(2, b.report().cpus());
        assertTrue(b.report().stealTicks() > 0, "steal time reported as runstate RUNNABLE time");
    }

    @Test
    void vmwareReadsTheTscFrequencyFromTheBackdoorAndKeepsTsc() throws Exception {
        Boot b = boot("vmware", 1);
        b.isClean();
        b.shows("Hypervisor detected: VMware");
        b.shows("vmware: TSC freq read from hypervisor");
        b.shows("Booting paravirtualized kernel on VMware hypervisor");
        assertEquals("tsc", b.report().clocksource());
    }

    @Test
    void bareLooksLikeHardware() throws Exception {
        Boot b = boot("bare", 1);
        b.isClean();
        b.shows("Booting paravirtualized kernel on bare hardware");
        b.lacks("Hypervisor detected");
        assertEquals("", b.hypervisorType());
    }

    @Test
    void stackedHypervAndKvmLetsLinuxPickKvmAtTheHigherBase() throws Exception {
        Boot b = boot("hyperv+kvm", 1);
        b.isClean();
        b.shows("Hypervisor detected: KVM");
        b.shows("Booting paravirtualized kernel on KVM");
        b.lacks("Hypervisor detected: Microsoft Hyper-V");
        assertEquals("kvm-clock", b.report().clocksource());
    }

    @Test
    void disablingKvmClockFallsBackToTsc() throws Exception {
        Boot b = boot("kvm", 1, "kvm.clocksource");
        b.isClean();
        b.shows("Hypervisor detected: KVM");
        b.lacks("kvm-clock: Using msrs");
        assertEquals("tsc", b.report().clocksource());
        assertEquals(0, b.report().stealTicks(), "one vCPU is never runnable without running");
    }
}
