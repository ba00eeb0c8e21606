package dev.polyvisor.vmm;

import dev.polyvisor.cpu.jit.JitMode;
import dev.polyvisor.vmm.guests.TestGuests;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 12: the JIT keeps icount exact. Each freestanding guest runs with {@code --clock icount} with the
 * JIT off, always (every trace compiled on first use) and check (every compilation verified against the
 * interpreter); the three runs must print the same console bytes, end the same way and retire the same
 * number of instructions. The guests cover faults and their delivery (exceptions, paging), mode switches
 * (modes), user mode (user), self-modifying code (smc), timers and a personality's hypercalls (abi under
 * KVM) and a CPU-bound workload (bench).
 */
class JitIcountTest {
    /** A run's console, outcome and JIT counts (compiled, checked against the interpreter). */
    record Run(String console, Outcome outcome, long compiled, long checked) {}

    private static Run boot(VmConfig cfg, JitMode jit) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (Vm vm = new Vm(cfg, out, jit)) {
            Outcome o = vm.run();
            var j = vm.traces.jit();
            return new Run(out.toString(StandardCharsets.ISO_8859_1), o, j == null ? 0 : j.compiledTraces, j == null ? 0 : j.checkedTraces);
        }
    }

    private static VmConfig guest(String name, String append, String personality) {
        return VmConfig.of(TestGuests.guest(name), VmConfig.BootKind.MULTIBOOT).withMemory(64).withAppend(append)
                .withClock(VmConfig.ClockMode.ICOUNT).withTimeout(Duration.ofSeconds(120))
                .withPersonalities(List.of(personality), List.of());
    }

    @Test
    void freestandingGuestsRetireTheSameInstructionsAndPrintTheSameBytesWithAndWithoutTheJit() throws Exception {
        List<VmConfig> configs = List.of(guest("exceptions", "", "bare"), guest("paging", "", "bare"),
                guest("modes", "", "bare"), guest("user", "", "bare"), guest("smc", "", "bare"),
                guest("abi", "kvm", "kvm"), guest("bench", "rounds=2", "bare"));
        for (VmConfig cfg : configs) {
            String what = cfg.kernel().getFileName().toString();
            Run off = boot(cfg, JitMode.OFF);
            assertEquals(Outcome.Kind.DEBUG_EXIT, off.outcome().kind(), what + ": " + off.outcome() + "\n" + off.console());
            assertFalse(off.console().contains("FAIL"), what + ":\n" + off.console());
            for (JitMode mode : List.of(JitMode.ALWAYS, JitMode.CHECK)) {
                Run jit = boot(cfg, mode);
                assertEquals(off.outcome().kind(), jit.outcome().kind(), what + " jit " + mode + ": " + jit.outcome());
                assertEquals(off.outcome().status(), jit.outcome().status(), what + " jit " + mode + ": exit status");
                assertEquals(off.outcome().instructions(), jit.outcome().instructions(), what + " jit " + mode + ": instructions retired");
                assertEquals(off.console(), jit.console(), what + " jit " + mode + ": console");
                if (mode == JitMode.ALWAYS) assertTrue(jit.compiled() > 0, what + ": nothing was compiled");
                if (mode == JitMode.CHECK && what.startsWith("bench"))
                    assertTrue(jit.checked() > 0, what + ": no compiled trace was checked against the interpreter");
            }
        }
    }
}
