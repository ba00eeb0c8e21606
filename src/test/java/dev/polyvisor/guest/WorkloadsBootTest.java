package dev.polyvisor.guest;

import dev.polyvisor.cli.RunCommand;
import dev.polyvisor.vmm.ConsoleMarkers;
import dev.polyvisor.vmm.Outcome;
import dev.polyvisor.vmm.Vm;
import dev.polyvisor.vmm.VmConfig;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.*;

/**
 * pv-workloads in the Debian guest on 2 vCPUs: every workload runs to its end marker, its cost is
 * stamped by the VMM, and under --clock icount the costs are the same in two runs.
 */
@Tag("linux")
class WorkloadsBootTest {
    record Run(Map<String, ConsoleMarkers.Cost> costs, Outcome outcome, String console) {}

    static Run boot(GuestImage g, String personality) throws Exception {
        VmConfig cfg = VmConfig.of(g.kernel(), VmConfig.BootKind.LINUX).withInitrd(Workloads.initramfs(g))
                .withAppend(RunCommand.linuxCommandLine("nokaslr", Workloads.command(), true))
                .withMemory(256).withSmp(2).withClock(VmConfig.ClockMode.ICOUNT).withTimeout(Duration.ofSeconds(300))
                .withPersonalities(List.of(personality.split("\\+")), List.of());
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (Vm vm = new Vm(cfg, out)) {
            Outcome o = vm.run();
            return new Run(vm.markers().costs(), o, out.toString(StandardCharsets.ISO_8859_1));
        }
    }

    @Test
    void everyWorkloadRunsAndItsCostIsReproducible() throws Exception {
        GuestImage g = DebianFixture.defaultGuest();
        Run a, b;
        try (ExecutorService pool = Executors.newFixedThreadPool(2)) {
            Future<Run> fa = pool.submit(() -> boot(g, "kvm")), fb = pool.submit(() -> boot(g, "kvm"));
            a = fa.get();
            b = fb.get();
        }
        assertEquals(Outcome.Kind.POWEROFF, a.outcome().kind(), a.console());
        assertTrue(a.console().contains("polyvisor: exit status 0"), a.console());
        assertEquals(Workloads.NAMES, List.copyOf(a.costs().keySet()), a.console());
        a.costs().forEach((name, c) -> {
            assertTrue(c.instructions() > 10_000, name + " " + c);
            assertTrue(c.exits() > 0, name + " " + c);
            System.err.printf("workload %-5s kvm smp 2: %,d instructions, %,d exits%n", name, c.instructions(), c.exits());
        });
        assertEquals(a.costs(), b.costs(), "icount: the same costs in two runs");
    }
}
