package dev.polyvisor.cpu;

import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.SystemFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/** The TF single-step trap (SDM Vol. 3A 18.3.1.4): #DB with DR6.BS after each instruction that began with TF=1. */
class SingleStepTest {
    /** Byte length of "mov eax, imm32". */
    static final int MOV_EAX = 5;

    @Test
    void popfThatSetsTfDoesNotTrapButTheNextInstructionDoes() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            // pushfq (1) ; or qword ptr [rsp], 0x100 (8) ; popfq (1) ; mov eax, 1 ; mov eax, 2
            f.program(64, KCODE, "pushfq\nor qword ptr [rsp], 0x100\npopfq\nmov eax, 1\nmov eax, 2");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.DB) + 1, c.rip, "#DB delivered");
            assertEquals(1, c.r[Cpu.RAX], "exactly one instruction ran with TF set");
            long afterFirstMov = KCODE + 1 + 8 + 1 + MOV_EAX;
            assertEquals(afterFirstMov, f.read64(KSTACK - 40), "trap: the frame holds the next instruction");
            assertNotEquals(0, f.read64(KSTACK - 24) & Flags.TF, "pushed RFLAGS has TF");
            assertEquals(0, c.rflags & Flags.TF, "delivery clears TF");
            assertNotEquals(0, c.dr[6] & (1 << 14), "DR6.BS");
        }
    }

    @Test
    void popfThatClearsTfStillTraps() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.rflags |= Flags.TF;
            c.r[Cpu.RSP] = KSTACK - 8;
            f.cpu.mmu.write64(KSTACK - 8, 2); // RFLAGS with TF clear
            f.program(64, KCODE, "popfq\nmov eax, 7");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.DB) + 1, c.rip, "POPF began with TF set, so it traps");
            assertEquals(KCODE + 1, f.read64(KSTACK - 40), "after POPF");
            assertEquals(0, f.read64(KSTACK - 24) & Flags.TF, "the pushed RFLAGS is POPF's result");
            assertNotEquals(7, c.r[Cpu.RAX]);
        }
    }

    @Test
    void softwareInterruptClearsTfAndIsNotFollowedByATrap() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.rflags |= Flags.TF;
            f.program(64, KCODE, "int 0x40");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(0x40) + 1, c.rip, "the INT handler runs, not #DB");
            assertEquals(0, c.dr[6] & (1 << 14));
        }
    }
}
