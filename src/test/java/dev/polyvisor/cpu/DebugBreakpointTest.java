package dev.polyvisor.cpu;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.SystemFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Debug-register breakpoints, general detect, the MOV SS shadow over debug traps and the single-step rule
 * of SYSCALL/SYSRET (SDM Vol. 3A 18.2-18.3, 6.8.3). The #DB stub halts; its frame (no error code) holds
 * RIP at KSTACK - 40 and RFLAGS at KSTACK - 24.
 */
class DebugBreakpointTest {
    static final long DATA = 0x300000;
    SystemFixture f;
    Cpu c;

    @BeforeEach
    void setUp() {
        f = new SystemFixture();
        c = f.cpu;
        f.long64();
        c.dr[6] = 0;
    }

    @AfterEach
    void tearDown() { f.close(); }

    void dr7(long v) {
        c.dr[7] = v;
        Breakpoints.update(c);
    }

    long frameRip() { return f.read64(KSTACK - 40); }

    boolean inDbStub() { return c.rip == stub(Exceptions.DB) + 1; }

    @Test
    void executeBreakpointFaultsBeforeTheInstructionUnlessRfIsSet() {
        f.program(64, KCODE, "mov eax, 1\nbp: mov eax, 2\nhlt");
        c.dr[2] = KCODE + 5;
        dr7(0x400 | 0x20); // G2, execute, 1 byte
        assertInstanceOf(VcpuExit.Halt.class, f.run());
        assertTrue(inDbStub());
        assertEquals(KCODE + 5, frameRip(), "fault: the frame names the breakpointed instruction");
        assertEquals(1, c.r[Cpu.RAX], "it has not run");
        assertEquals(0b100, c.dr[6] & 0xF, "DR6.B2");
        assertEquals(0, f.read64(KSTACK - 24) & Flags.RF, "an instruction breakpoint's frame leaves RF to the handler");
        // Resuming with RF set steps over the breakpoint once.
        c.r[Cpu.RSP] = KSTACK;
        c.rip = KCODE + 5;
        c.halted = false;
        c.rflags |= Flags.RF;
        assertInstanceOf(VcpuExit.Halt.class, f.run());
        assertEquals(2, c.r[Cpu.RAX]);
        assertEquals(KCODE + 11, c.rip);
    }

    @Test
    void dataWriteBreakpointTrapsAfterTheWriteAndIgnoresReads() {
        f.program(64, KCODE, "mov eax, [0x300004]\nmov dword ptr [0x300004], 5\nnop\nhlt");
        c.dr[1] = DATA;
        c.dr[6] = Breakpoints.DR6_BS; // software's status bits stay; B0-B3 are rewritten
        dr7(0x400 | 0x8 | (0b1101L << 20)); // G1, write, 4 bytes: covers 0x300000-0x300003 only
        assertInstanceOf(VcpuExit.Halt.class, f.run());
        assertEquals(KCODE + 20, c.rip, "no overlap with a 4-byte breakpoint at 0x300000: ran to HLT");
        c.dr[1] = DATA + 4;
        dr7(0x400 | 0x8 | (0b1101L << 20));
        f.program(64, KCODE, "mov eax, [0x300004]\nmov dword ptr [0x300004], 5\nnop\nhlt");
        c.r[Cpu.RSP] = KSTACK;
        assertInstanceOf(VcpuExit.Halt.class, f.run());
        assertTrue(inDbStub());
        assertEquals(KCODE + 7 + 11, frameRip(), "trap: after the store, not after the load");
        assertEquals(5, f.mem.readPhys(DATA + 4, 4));
        assertEquals(0b10, c.dr[6] & Breakpoints.DR6_B_MASK, "DR6.B1");
        assertNotEquals(0, c.dr[6] & Breakpoints.DR6_BS, "BS written by software is left set");
    }

    @Test
    void generalDetectFaultsOnMovDrAndClearsGd() {
        dr7(0x400 | Breakpoints.DR7_GD);
        f.program(64, KCODE, "mov rax, dr6\nhlt");
        assertInstanceOf(VcpuExit.Halt.class, f.run());
        assertTrue(inDbStub());
        assertEquals(KCODE, frameRip());
        assertNotEquals(0, c.dr[6] & Breakpoints.DR6_BD);
        assertEquals(0, c.dr[7] & Breakpoints.DR7_GD, "the processor clears GD on the #DB");
    }

    @Test
    void movSsHoldsTheSingleStepTrapUntilAfterTheNextInstruction() {
        c.rflags |= Flags.TF;
        f.program(64, KCODE, "mov ax, 0x18\nmov ss, ax\nmov ecx, 1\nmov edx, 2\nhlt");
        // The first instruction traps at once; resume from there three times.
        assertInstanceOf(VcpuExit.Halt.class, f.run());
        assertEquals(KCODE + 4, frameRip(), "after mov ax");
        c.r[Cpu.RSP] = KSTACK;
        c.rip = KCODE + 4;
        c.halted = false;
        c.rflags |= Flags.TF;
        c.dr[6] = 0;
        assertInstanceOf(VcpuExit.Halt.class, f.run());
        assertTrue(inDbStub());
        assertEquals(KCODE + 4 + 2 + 5, frameRip(), "no trap after MOV SS; one after the instruction that follows");
        assertEquals(1, c.r[Cpu.RCX]);
        assertNotEquals(2, c.r[Cpu.RDX]);
        assertEquals(Breakpoints.DR6_BS, c.dr[6] & (Breakpoints.DR6_BS | 0xF));
    }

    /** Runs MOV SS, then (after KVM's forced-emulation prefix if asked) an instruction with an execute breakpoint. */
    private void breakpointAfterMovSs(boolean intel, boolean forcedEmulationPrefix) {
        c.intel = intel;
        c.forceEmulationPrefix = forcedEmulationPrefix;
        String fep = forcedEmulationPrefix ? ".byte 0x0f, 0x0b, 0x6b, 0x76, 0x6d\n" : "";
        f.program(64, KCODE, "mov ax, 0x18\nmov ss, ax\n" + fep + "xor eax, eax\nhlt");
        c.dr[0] = KCODE + 6 + (forcedEmulationPrefix ? 5 : 0);
        dr7(0x400 | 0x2); // G0, execute
        assertInstanceOf(VcpuExit.Halt.class, f.run());
    }

    @Test
    void instructionBreakpointInAMovSsShadowFaultsOnAmd() {
        // AMD takes code breakpoints in the MOV SS shadow (kvm-unit-tests' emulator.c expects it of AMD CPUs).
        breakpointAfterMovSs(false, false);
        assertTrue(inDbStub());
        assertEquals(KCODE + 6, frameRip());
    }

    @Test
    void instructionBreakpointInAMovSsShadowIsBlockedOnIntel() {
        // SDM Vol. 3A 6.8.3: debug exceptions are inhibited by MOV SS blocking.
        breakpointAfterMovSs(true, false);
        assertFalse(inDbStub());
        assertEquals(KCODE + 6 + 2 + 1, c.rip, "ran to the HLT");
        assertEquals(0, c.dr[6] & 0xF);
        // The next instruction outside the shadow takes its breakpoint again.
        c.halted = false;
        c.rip = KCODE + 6;
        c.r[Cpu.RSP] = KSTACK;
        assertInstanceOf(VcpuExit.Halt.class, f.run());
        assertTrue(inDbStub());
    }

    @Test
    void forcedEmulationPrefixKeepsTheMovSsShadowForTheInstructionAfterIt() {
        // KVM's #UD handler skips the prefix and emulates the instruction after it in the same MOV SS shadow,
        // checking code breakpoints at that instruction (arch/x86/kvm/x86.c kvm_vcpu_check_code_breakpoint).
        breakpointAfterMovSs(true, true);
        assertFalse(inDbStub(), "Intel: blocked by the shadow the prefix does not end");
        assertEquals(KCODE + 11 + 2 + 1, c.rip);
        tearDown();
        setUp();
        breakpointAfterMovSs(false, true);
        assertTrue(inDbStub(), "AMD: taken at the instruction after the prefix");
        assertEquals(KCODE + 11, frameRip());
    }

    @Test
    void icebpAfterMovSsAbsorbsTheHeldTrap() {
        c.rflags |= Flags.TF;
        f.program(64, KCODE, "mov ax, 0x18\nnop\nmov ss, ax\n.byte 0xf1\nhlt");
        c.rip = KCODE + 5; // start at the MOV SS with TF set
        c.r[Cpu.RAX] = 0x18;
        assertInstanceOf(VcpuExit.Halt.class, f.run());
        assertTrue(inDbStub());
        assertEquals(KCODE + 5 + 2 + 1, frameRip(), "the ICEBP trap, once");
        assertEquals(0, c.dr[6] & Breakpoints.DR6_BS, "ICEBP reports no single step");
        assertEquals(KSTACK - 40, c.r[Cpu.RSP], "one frame on the stack, not two");
    }

    @Test
    void syscallThatMasksTfDoesNotTrapAndSysretIntoTfTrapsAtOnce() {
        c.lstar = KCODE + 0x100;
        c.star = (0x23L << 48) | ((long) KCODE64 << 32);
        c.sfmask = Flags.TF;
        f.load(KCODE + 0x100, new byte[] {(byte) 0xF4});
        c.rflags |= Flags.TF;
        f.program(64, KCODE, "syscall");
        assertInstanceOf(VcpuExit.Halt.class, f.run());
        assertEquals(KCODE + 0x101, c.rip, "SYSCALL cleared TF: no #DB after it");

        // SYSRET with TF in R11: the trap is taken at the user instruction it returns to, before it runs.
        f.load(UCODE, new byte[] {(byte) 0x90, (byte) 0xF4});
        c.r[Cpu.RCX] = UCODE;
        c.r[11] = 2 | Flags.TF;
        f.program(64, KCODE, "sysretq");
        assertInstanceOf(VcpuExit.Halt.class, f.run());
        assertTrue(inDbStub());
        assertEquals(UCODE, frameRip());
        assertEquals(UCODE64, f.read64(KSTACK - 32));
    }
}
