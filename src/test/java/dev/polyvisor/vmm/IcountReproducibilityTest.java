package dev.polyvisor.vmm;

import dev.polyvisor.cli.RunCommand;
import dev.polyvisor.guest.DebianFixture;
import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.vmm.guests.TestGuests;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 9: with {@code --clock icount} everything the guest can observe follows the instruction count,
 * so two runs of the same configuration produce the same console bytes, under every personality and
 * stack, with one and with two vCPUs. The pvclock personalities (KVM's kvm-clock, Xen's vcpu_time_info)
 * also publish a wall clock: it must come from the VM's fixed icount epoch, not from the host, or the
 * kernel's boot-time arithmetic on it retires a different number of instructions and every later
 * timestamp drifts.
 *
 * <p>The two runs of a pair execute at the same time on different host threads, so host scheduling
 * differs between them as much as it can.
 */
@Tag("linux")
class IcountReproducibilityTest {
    static final List<String> PERSONALITIES = List.of("bare", "kvm", "hyperv", "xen", "vmware", "hyperv+kvm");
    /** The whole kernel log on the console, then the guest's own view of time and interrupts. */
    private static final String COMMAND = "cat /proc/uptime; cat /proc/interrupts; dmesg | tail -5";

    record Run(String console, Outcome outcome) {}

    private static Run boot(VmConfig cfg) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (Vm vm = new Vm(cfg, out)) {
            Outcome o = vm.run();
            return new Run(out.toString(java.nio.charset.StandardCharsets.ISO_8859_1), o);
        }
    }

    /** Runs each configuration twice, the two runs concurrently, and returns the pairs in order. */
    private static List<Run[]> twice(List<VmConfig> configs) throws Exception {
        List<Run[]> pairs = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(2)) {
            for (VmConfig cfg : configs) {
                Future<Run> a = pool.submit(() -> boot(cfg)), b = pool.submit(() -> boot(cfg));
                pairs.add(new Run[] {a.get(), b.get()});
            }
        }
        return pairs;
    }

    private static String firstDifference(String a, String b) {
        int i = 0;
        while (i < a.length() && i < b.length() && a.charAt(i) == b.charAt(i)) i++;
        int from = Math.max(0, a.lastIndexOf('\n', Math.max(0, i - 1)));
        return "first difference at byte " + i + ":\n  run 1: " + a.substring(from, Math.min(a.length(), i + 80))
                + "\n  run 2: " + b.substring(from, Math.min(b.length(), i + 80));
    }

    @Test
    void debianConsoleIsByteIdenticalAcrossRunsUnderEveryPersonalityWithOneAndTwoVcpus() throws Exception {
        GuestImage g = DebianFixture.defaultGuest();
        String cmdline = RunCommand.linuxCommandLine("loglevel=7", COMMAND);
        List<VmConfig> configs = new ArrayList<>();
        for (String p : PERSONALITIES)
            for (int smp = 1; smp <= 2; smp++)
                configs.add(VmConfig.of(g.kernel(), VmConfig.BootKind.LINUX).withInitrd(g.initramfs()).withAppend(cmdline)
                        .withMemory(256).withSmp(smp).withClock(VmConfig.ClockMode.ICOUNT).withTimeout(Duration.ofSeconds(300))
                        .withPersonalities(List.of(p.split("\\+")), List.of()));
        List<Run[]> pairs = twice(configs);
        for (int i = 0; i < configs.size(); i++) {
            VmConfig cfg = configs.get(i);
            Run a = pairs.get(i)[0], b = pairs.get(i)[1];
            String what = String.join("+", cfg.personalities()) + " smp " + cfg.smp();
            assertEquals(Outcome.Kind.POWEROFF, a.outcome().kind(), what + ": " + a.outcome() + "\n" + a.console());
            assertTrue(a.console().contains("polyvisor: exit status 0"), what + ":\n" + a.console());
            assertTrue(a.console().contains("Run /init as init process"), what + ": the kernel log is on the console\n" + a.console());
            assertEquals(a.outcome().instructions(), b.outcome().instructions(), what + ": instructions retired");
            assertTrue(a.console().equals(b.console()), what + ": " + firstDifference(a.console(), b.console()));
            System.err.printf("icount %s: %d console bytes, %d instructions, identical twice%n",
                    what, a.console().length(), a.outcome().instructions());
        }
    }

    private static VmConfig freestanding(String image, String personality, int smp) {
        return VmConfig.of(TestGuests.guest(image), VmConfig.BootKind.MULTIBOOT).withMemory(64).withSmp(smp)
                .withAppend(personality.substring(personality.lastIndexOf('+') + 1)).withClock(VmConfig.ClockMode.ICOUNT)
                .withTimeout(Duration.ofSeconds(120)).withPersonalities(List.of(personality.split("\\+")), List.of());
    }

    @Test
    void freestandingAbiGuestsAreByteIdenticalAcrossRuns() throws Exception {
        List<VmConfig> configs = new ArrayList<>();
        // abi.c checks each ABI on one vCPU (it asserts "1 VP"); steal.c runs two vCPUs on the ABIs with steal time.
        for (String p : List.of("kvm", "hyperv", "xen", "vmware", "hyperv+kvm"))
            configs.add(freestanding("abi", p, 1));
        for (String p : List.of("kvm", "xen", "vmware"))
            configs.add(freestanding("steal", p, 2));
        List<Run[]> pairs = twice(configs);
        for (int i = 0; i < configs.size(); i++) {
            VmConfig cfg = configs.get(i);
            Run a = pairs.get(i)[0], b = pairs.get(i)[1];
            String what = cfg.kernel().getFileName() + " " + String.join("+", cfg.personalities()) + " smp " + cfg.smp();
            assertEquals(Outcome.Kind.DEBUG_EXIT, a.outcome().kind(), what + ": " + a.outcome() + "\n" + a.console());
            assertFalse(a.console().contains("FAIL"), what + ":\n" + a.console());
            assertEquals(a.outcome().instructions(), b.outcome().instructions(), what + ": instructions retired");
            assertTrue(a.console().equals(b.console()), what + ": " + firstDifference(a.console(), b.console()));
        }
    }
}
