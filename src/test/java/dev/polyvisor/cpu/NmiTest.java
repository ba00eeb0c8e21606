package dev.polyvisor.cpu;

import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.SystemFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/** NMI delivery (SDM Vol. 3A 6.7.1): through vector 2 regardless of IF, blocked until the handler's IRET. */
class NmiTest {
    @Test
    void aLatchedNmiIsDeliveredWithInterruptsDisabledAndWakesHlt() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.rflags &= ~Flags.IF;
            f.program(64, KCODE, "hlt");
            assertInstanceOf(VcpuExit.Halt.class, f.run(), "HLT with IF=0");
            assertEquals(KCODE + 1, c.rip);
            c.nmiPending = true;
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.NMI) + 1, c.rip, "the NMI handler ran (and halted in its stub)");
            assertEquals(KCODE + 1, f.read64(KSTACK - 40), "return address: after the HLT");
            assertTrue(c.nmiBlocked);
            assertFalse(c.nmiPending);
        }
    }

    @Test
    void aSecondNmiWaitsForTheFirstHandlersIret() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            // The NMI handler counts in RBX, then spins until the test sets RCX, then IRETQ. The interrupted
            // code spins until RBX reaches 2, then HLT.
            f.program(64, KCODE, "1: cmp ebx, 2\njb 1b\nhlt");
            f.program(64, KCODE + 0x100, "inc ebx\n2: cmp ecx, 1\njne 2b\niretq");
            f.gate64(Exceptions.NMI, KCODE64, KCODE + 0x100, 0xE, 0, 0);
            c.rip = KCODE;
            c.nmiPending = true;
            assertInstanceOf(VcpuExit.Interrupted.class, f.vcpu.run(1000), "spinning in the handler");
            assertTrue(c.nmiBlocked);
            c.nmiPending = true; // arrives while the first handler runs: held until its IRETQ
            assertInstanceOf(VcpuExit.Interrupted.class, f.vcpu.run(1000));
            assertEquals(1, c.r[Cpu.RBX], "the second NMI is held off");
            c.r[Cpu.RCX] = 1;
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(2, c.r[Cpu.RBX], "both NMIs handled, one after the other");
            assertFalse(c.nmiBlocked);
        }
    }
}
