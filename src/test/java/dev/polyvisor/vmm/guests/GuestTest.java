package dev.polyvisor.vmm.guests;

import dev.polyvisor.vmm.Outcome;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The freestanding guests of src/test/guests, each booted through the multiboot loader. A guest
 * prints "ok ..."/"FAIL ..." per check and exits through isa-debug-exit: 0 (host status 1) when all
 * passed. Every guest also passes under QEMU TCG (bench/cpu-vs-qemu.sh runs the same images).
 */
class GuestTest {
    static final int PASS = (0 << 1) | 1;

    private static void assertPassed(TestGuests.Run r) {
        assertFalse(r.console().contains("FAIL"), r.describe());
        assertEquals(Outcome.Kind.DEBUG_EXIT, r.outcome().kind(), r.describe());
        assertEquals(PASS, r.status(), r.describe());
    }

    @Test
    void helloPrintsAndExits() throws Exception {
        TestGuests.Run r = TestGuests.boot("hello", "from-the-test", Duration.ofSeconds(30));
        assertTrue(r.console().startsWith("Hello from a freestanding multiboot guest\n"), r.describe());
        assertTrue(r.console().contains("magic 0x2badb002\n"), r.describe());
        assertTrue(r.console().contains("hello.elf from-the-test\n"), r.describe());
        assertTrue(r.console().contains("memory: 639 KiB low, 64512 KiB high\n"), r.describe());
        assertEquals(PASS, r.status(), r.describe());
    }

    @Test
    void modesGoesRealProtectedLongAndBack() throws Exception {
        TestGuests.Run r = TestGuests.boot("modes");
        assertEquals("""
                protected mode: 32-bit, flat, paging off
                real mode: CS=0800, 16-bit arithmetic
                protected mode again, from real mode
                compatibility mode: EFER.LMA=1
                64-bit mode: 64-bit immediate
                protected mode, paging off, EFER.LMA=0
                modes: PASSED
                """, r.console(), r.describe());
        assertEquals(PASS, r.status(), r.describe());
    }

    @Test
    void pagingFaultsReportCr2AndErrorCodes() throws Exception {
        TestGuests.Run r = TestGuests.boot("paging");
        assertTrue(r.console().contains("write of a not-present page: vector 14 error 0x2 cr2 0x40002234"), r.describe());
        assertTrue(r.console().contains("execute from an NX page (I/D bit): vector 14 error 0x11 cr2 0x40003000"), r.describe());
        assertTrue(r.console().contains("PASSED: 0 failure(s)"), r.describe());
        assertPassed(r);
    }

    @Test
    void exceptionsAreDeliveredAndResumed() throws Exception {
        TestGuests.Run r = TestGuests.boot("exceptions");
        assertTrue(r.console().contains("#GP from mov ds: vector 13 error 0x1230"), r.describe());
        assertTrue(r.console().contains("double fault: vector 8 error 0x0"), r.describe());
        assertEquals(2, r.console().split("caught #UD at", -1).length - 1, r.describe());
        assertPassed(r);
    }

    @Test
    void tripleFaultEndsTheVmWithAClearMessage() throws Exception {
        TestGuests.Run r = TestGuests.boot("triplefault");
        assertEquals("about to triple fault\n", r.console(), r.describe());
        assertEquals(Outcome.Kind.SHUTDOWN, r.outcome().kind(), r.describe());
        assertEquals(Outcome.SHUTDOWN_STATUS, r.status());
        assertTrue(r.outcome().message().startsWith("guest shut down (triple fault)"), r.outcome().message());
        assertFalse(r.outcome().message().contains("\n"));
        assertFalse(r.outcome().message().contains("Exception"), r.outcome().message());
    }

    @Test
    void userModeSyscallSysretAndIntIret() throws Exception {
        TestGuests.Run r = TestGuests.boot("user");
        assertTrue(r.console().startsWith("hello from ring 3 via SYSCALL\nhello from ring 3 via INT 0x80\n"), r.describe());
        assertTrue(r.console().contains("user read of supervisor page: vector 14 error 0x5"), r.describe());
        assertPassed(r);
    }

    @Test
    void selfModifyingCodeThroughASecondMapping() throws Exception {
        TestGuests.Run r = TestGuests.boot("smc");
        assertTrue(r.console().contains("through the alias: 1 then 2\n"), r.describe());
        assertTrue(r.console().contains("patched next instruction: 123\n"), r.describe());
        assertPassed(r);
    }

    @Test
    void bspStartsAnApplicationProcessorWithInitAndSipi() throws Exception {
        TestGuests.Run r = TestGuests.boot(dev.polyvisor.vmm.VmConfig.of(TestGuests.guest("smp"), dev.polyvisor.vmm.VmConfig.BootKind.MULTIBOOT)
                .withMemory(64).withSmp(2).withTimeout(Duration.ofSeconds(30)));
        assertTrue(r.console().contains("application processors started: 1\n"), r.describe());
        assertPassed(r);
    }

    /**
     * atomics.c: two vCPUs, each on its own host thread (realtime clock), hammer LOCK'd read-modify-writes,
     * XCHG and CMPXCHG/CMPXCHG8B on shared words and a lock-free log at the same time; every total is exact.
     * (With LOCK executed as a plain read-then-write the guest loses updates and deadlocks in its spinlocks.)
     */
    @Test
    void lockedInstructionsAreAtomicAcrossVcpuThreads() throws Exception {
        var cfg = dev.polyvisor.vmm.VmConfig.of(TestGuests.guest("atomics"), dev.polyvisor.vmm.VmConfig.BootKind.MULTIBOOT)
                .withMemory(64).withSmp(2).withTimeout(Duration.ofSeconds(90));
        var out = new java.io.ByteArrayOutputStream();
        try (var vm = new dev.polyvisor.vmm.Vm(cfg, out)) {
            assertTrue(vm.runsVcpuThreads(), "realtime --smp 2 runs one host thread per vCPU");
            Outcome o = vm.run();
            String console = out.toString().replace("\r", "");
            TestGuests.Run r = new TestGuests.Run(console, o);
            assertTrue(console.contains("ok atomics: CMPXCHG8B 64-bit counter\n"), r.describe());
            assertTrue(console.contains("ok atomics: lock-free multi-producer log\n"), r.describe());
            assertPassed(r);
        }
    }

    /** The same guest on the round-robin scheduler (icount): one thread, so trivially atomic, and still exact. */
    @Test
    void lockedInstructionsGiveTheSameTotalsOnOneThread() throws Exception {
        TestGuests.Run r = TestGuests.boot(dev.polyvisor.vmm.VmConfig.of(TestGuests.guest("atomics"), dev.polyvisor.vmm.VmConfig.BootKind.MULTIBOOT)
                .withMemory(64).withSmp(2).withClock(dev.polyvisor.vmm.VmConfig.ClockMode.ICOUNT).withTimeout(Duration.ofSeconds(90)));
        assertTrue(r.console().contains("ok atomics: lock-free multi-producer log\n"), r.describe());
        assertTrue(r.console().contains("cmpxchg retries: bsp 0, ap 0\n"), "one thread: a CMPXCHG never loses a race\n" + r.describe());
        assertPassed(r);
    }

    @Test
    void elf64ImageLoadsThroughMultibootToo() throws Exception {
        // The rt64 guests are linked as ELF64 and converted to ELF32 for QEMU; the ELF64 original loads as well.
        java.nio.file.Path elf64 = TestGuests.guest("paging").resolveSibling("paging.elf64");
        var cfg = dev.polyvisor.vmm.VmConfig.of(elf64, dev.polyvisor.vmm.VmConfig.BootKind.MULTIBOOT)
                .withMemory(64).withTimeout(Duration.ofSeconds(30));
        var out = new java.io.ByteArrayOutputStream();
        try (var vm = new dev.polyvisor.vmm.Vm(cfg, out)) {
            Outcome o = vm.run();
            assertEquals(PASS, o.status(), out + o.message());
            assertTrue(out.toString().contains("PASSED: 0 failure(s)"), out.toString());
        }
    }

    @Test
    void benchmarkGuestChecksumMatchesTheHostBuild() throws Exception {
        TestGuests.Run r = TestGuests.boot("bench", "rounds=2", Duration.ofSeconds(60));
        String expected = TestGuests.host("bench-host", "2").trim();
        assertTrue(r.console().contains("bench: 2 rounds\n"), r.describe());
        assertTrue(r.console().contains(expected + "\n"), "expected " + expected + " in:\n" + r.describe());
        assertEquals(PASS, r.status(), r.describe());
    }
}
