package dev.polyvisor.cpu;

import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.SystemFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/** Exception and interrupt delivery: frames, error codes, stack switches, #DF and triple fault. */
class InterruptDeliveryTest {
    /** A user-mode (CPL 3) 64-bit context on the user stack. */
    static void enterUser64(SystemFixture f) {
        f.long64();
        f.loadSeg(Cpu.CS, UCODE64);
        for (int s : new int[] {Cpu.SS, Cpu.DS, Cpu.ES}) f.loadSeg(s, UDATA);
        f.cpu.r[Cpu.RSP] = USTACK;
        f.cpu.updateMode();
    }

    @Test
    void generalProtectionInProtectedModePushesErrorCodeEipCsEflags() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.protected32();
            c.rflags |= Flags.IF;
            f.program(32, KCODE, "mov eax, 0x1f8\nmov ds, ax");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.GP) + 1, c.rip);
            assertEquals(KSTACK - 16, c.r[Cpu.RSP]);
            assertEquals(0x1F8, f.read32(KSTACK - 16), "error code: the selector");
            assertEquals(KCODE + 5, f.read32(KSTACK - 12), "EIP of the faulting MOV DS");
            assertEquals(KCODE32, f.read32(KSTACK - 8));
            assertNotEquals(0, f.read32(KSTACK - 4) & Flags.IF, "pushed EFLAGS had IF");
            assertEquals(0, c.rflags & Flags.IF, "interrupt gate clears IF");
            assertEquals(KDATA, c.segSel[Cpu.DS], "DS unchanged");
        }
    }

    @Test
    void pageFaultFromUserModeSwitchesToRsp0AndPushesSsRsp() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            enterUser64(f);
            c.rflags |= Flags.IF;
            f.program(64, UCODE, "mov ds, word ptr [0x40000000]");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.PF) + 1, c.rip);
            assertEquals(UNMAPPED, c.cr2);
            assertEquals(0, c.cpl);
            assertEquals(KSTACK - 48, c.r[Cpu.RSP]);
            assertEquals(4, f.read64(KSTACK - 48), "error code: user, read, not present");
            assertEquals(UCODE, f.read64(KSTACK - 40));
            assertEquals(UCODE64, f.read64(KSTACK - 32));
            assertNotEquals(0, f.read64(KSTACK - 24) & Flags.IF);
            assertEquals(USTACK, f.read64(KSTACK - 16));
            assertEquals(UDATA, f.read64(KSTACK - 8));
            assertEquals(0, c.segSel[Cpu.SS], "privilege change loads a null SS with RPL 0");
            assertEquals(KCODE64, c.segSel[Cpu.CS]);
        }
    }

    @Test
    void istGateSwitchesStackAndOtherwiseRspIsAlignedTo16() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            f.gate64(0x41, KCODE64, stub(0x41), 0xE, 0, 2);
            c.r[Cpu.RSP] = 0x8FF8;
            f.program(64, KCODE, "int 0x41");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(0x41) + 1, c.rip);
            assertEquals(IST2 - 40, c.r[Cpu.RSP]);
            assertEquals(0x8FF8, f.read64(IST2 - 16), "old RSP");
            assertEquals(KCODE + 2, f.read64(IST2 - 40), "INT n pushes the next RIP");

            c.r[Cpu.RSP] = 0x8FF8;
            f.loadSeg(Cpu.SS, KDATA);
            f.program(64, KCODE, "int 0x42");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(0x8FF0 - 40, c.r[Cpu.RSP]);
            assertEquals(0x8FF8, f.read64(0x8FF0 - 16));
        }
    }

    @Test
    void softwareInterruptChecksGateDpl() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            enterUser64(f);
            f.gate64(0x80, KCODE64, stub(0x80), 0xF, 3, 0);
            f.program(64, UCODE, "int 0x80");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(0x80) + 1, c.rip);
            assertEquals(UCODE + 2, f.read64(KSTACK - 40));

            enterUser64(f);
            f.program(64, UCODE, "int 0x81");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.GP) + 1, c.rip);
            assertEquals(0x81 * 8 + 2, f.read64(KSTACK - 48), "IDT-flagged error code, EXT clear");
            assertEquals(UCODE, f.read64(KSTACK - 40), "the fault is reported at the INT instruction");
        }
    }

    @Test
    void iretqReturnsToUserModeAndAnInterruptComesBack() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            f.gate64(0x80, KCODE64, stub(0x80), 0xE, 3, 0);
            long[] frame = {UCODE, UCODE64, 0x202, USTACK - 0x100, UDATA};
            for (int i = 0; i < 5; i++) f.mem.writePhys(KSTACK - 40 + 8L * i, 8, frame[i]);
            c.r[Cpu.RSP] = KSTACK - 40;
            f.program(64, KCODE, "iretq");
            f.program(64, UCODE, "mov eax, 7\nint 0x80");
            c.rip = KCODE;
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(0x80) + 1, c.rip);
            assertEquals(7, c.r[Cpu.RAX]);
            assertEquals(UCODE + 7, f.read64(KSTACK - 40));
            assertEquals(UCODE64, f.read64(KSTACK - 32), "the interrupted code ran at CPL 3");
            assertEquals(0x202, f.read64(KSTACK - 24) & 0x3FFFFF);
            assertEquals(USTACK - 0x100, f.read64(KSTACK - 16));
            assertEquals(UDATA, f.read64(KSTACK - 8));
        }
    }

    @Test
    void iretqAtSamePrivilegeAcceptsNullSsFor64BitCode() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            long[] frame = {KCODE + 0x20, KCODE64, 0x2, KSTACK - 0x80, 0};
            for (int i = 0; i < 5; i++) f.mem.writePhys(KSTACK - 40 + 8L * i, 8, frame[i]);
            c.r[Cpu.RSP] = KSTACK - 40;
            f.program(64, KCODE, "iretq");
            f.load(KCODE + 0x20, new byte[] {(byte) 0xF4});
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(KCODE + 0x21, c.rip);
            assertEquals(KSTACK - 0x80, c.r[Cpu.RSP]);
            assertEquals(0, c.segSel[Cpu.SS]);
        }
    }

    @Test
    void notPresentGpGateEscalatesToDoubleFault() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            long lo = f.read64(IDT + 16L * Exceptions.GP);
            f.mem.writePhys(IDT + 16L * Exceptions.GP, 8, lo & ~(1L << 47));
            f.program(64, KCODE, "mov eax, 0x1f8\nmov ds, ax");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.DF) + 1, c.rip);
            assertEquals(KSTACK - 48, c.r[Cpu.RSP]);
            assertEquals(0, f.read64(KSTACK - 48), "#DF error code is 0");
        }
    }

    @Test
    void pageFaultWhilePushingPageFaultFrameIsDoubleFaultOnIstStack() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            f.gate64(Exceptions.DF, KCODE64, stub(Exceptions.DF), 0xE, 0, 1);
            c.r[Cpu.RSP] = UNMAPPED + 0x1000;
            f.program(64, KCODE, "mov ds, word ptr [0x40000000]");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.DF) + 1, c.rip);
            assertEquals(IST1 - 48, c.r[Cpu.RSP]);
            assertEquals(UNMAPPED + 0xFF8, c.cr2, "CR2 names the frame push that faulted");
            assertEquals(UNMAPPED + 0x1000, f.read64(IST1 - 16), "the interrupted RSP");
        }
    }

    @Test
    void faultWithNoUsableIdtIsATripleFaultShutdown() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.idtLimit = 0;
            f.program(64, KCODE, "mov eax, 0x1f8\nmov ds, ax");
            VcpuExit e = f.run();
            VcpuExit.Shutdown s = assertInstanceOf(VcpuExit.Shutdown.class, e);
            assertTrue(s.reason().contains("triple fault"), s.reason());
            assertTrue(s.reason().contains("#DF"), s.reason());
        }
    }

    @Test
    void realModeIntAndIretGoThroughTheIvt() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            c.setRealSegment(Cpu.CS, 0);
            c.setRealSegment(Cpu.SS, 0);
            c.r[Cpu.RSP] = 0x7000;
            f.mem.writePhys(0x10 * 4, 2, 0x7D00);
            f.mem.writePhys(0x10 * 4 + 2, 2, 0);
            f.program(16, 0x7D00, "mov eax, 0x55\niret");
            f.program(16, 0x7C00, "int 0x10\nhlt");
            c.rflags |= Flags.IF;
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(0x55, c.r[Cpu.RAX]);
            assertEquals(0x7C03, c.rip);
            assertEquals(0x7000, c.r[Cpu.RSP]);
            assertNotEquals(0, c.rflags & Flags.IF, "IRET restored IF");
        }
    }

    @Test
    void stiHltIsAtomicAndTheInterruptFrameResumesAfterHlt() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            boolean[] pending = {true};
            c.interrupts = new InterruptSource() {
                @Override public boolean hasPending() { return pending[0]; }
                @Override public int acknowledge() { pending[0] = false; return 0x30; }
            };
            f.program(64, KCODE, "sti\nhlt\nnop");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(0x30) + 1, c.rip);
            assertEquals(KCODE + 2, f.read64(KSTACK - 40), "delivered after the HLT, not between STI and HLT");
        }
    }

    @Test
    void pageFaultInProtectedModeWith32BitPagingReportsWriteProtection() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.protected32();
            // 32-bit paging with 4 MiB pages: 0-4 MiB writable, 4-8 MiB read-only; CR0.WP applies to ring 0.
            f.mem.writePhys(0x7000, 4, 0x83);
            f.mem.writePhys(0x7004, 4, 0x400000 | 0x81);
            c.cr4 = Cpu.CR4_PSE;
            c.cr3 = 0x7000;
            c.cr0 |= Cpu.CR0_PG | Cpu.CR0_WP;
            c.mmu.flushAll();
            f.program(32, KCODE, "mov eax, 0x400010\nsgdt [eax]");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.PF) + 1, c.rip);
            assertEquals(0x400010, c.cr2);
            assertEquals(KSTACK - 16, c.r[Cpu.RSP]);
            assertEquals(3, f.read32(KSTACK - 16), "error code: present, write, supervisor");
            assertEquals(KCODE + 5, f.read32(KSTACK - 12));
            assertEquals(KCODE32, f.read32(KSTACK - 8));
            assertEquals(0, f.mem.readPhys(0x400010, 4), "nothing was written");
        }
    }

    @Test
    void int1IgnoresGateDplButInt3AndIntoDoNot() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            enterUser64(f);
            f.program(64, UCODE, "int1");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.DB) + 1, c.rip, "INT1 reaches a DPL 0 gate from CPL 3");
            assertEquals(UCODE + 1, f.read64(KSTACK - 40), "as a trap: RIP after INT1");

            enterUser64(f);
            f.program(64, UCODE, "int3");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.GP) + 1, c.rip);
            assertEquals(Exceptions.BP * 8 + 2, f.read64(KSTACK - 48));
        }
    }

    @Test
    void faultFramesCarryRfAndTrapFramesDoNot() {
        // SDM Vol. 3A 18.3.1.1: the RFLAGS image of every fault-class exception has RF set (so that IRET back to
        // the faulting instruction skips its instruction breakpoint); INT n / INT3 frames keep RF as it is (0).
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            f.program(64, KCODE, "ud2");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.UD) + 1, c.rip);
            assertNotEquals(0, f.read64(KSTACK - 24) & Flags.RF, "#UD frame");
            assertEquals(0, c.rflags & Flags.RF, "delivery clears RF");
        }
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            f.program(64, KCODE, "mov eax, 0xffffffff\nmov cr4, rax");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.GP) + 1, c.rip);
            assertNotEquals(0, f.read64(KSTACK - 24) & Flags.RF, "#GP frame (above the error code)");
        }
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            f.program(64, KCODE, "int3");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(0, f.read64(KSTACK - 24) & Flags.RF, "#BP is a trap");
        }
    }

    @Test
    void rfFromIretLastsOneInstruction() {
        // IRET to a frame with RF=1, then one instruction, then INT3: the processor clears RF when an instruction
        // completes (SDM Vol. 3A 18.3.1.1), so the #BP frame has RF clear.
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            f.program(64, KCODE + 0x100, "nop\nint3");
            f.program(64, KCODE, """
                    mov rax, rsp
                    push 0x18
                    push rax
                    push 0x10002
                    push 0x10
                    push 0x10100
                    iretq""");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.BP) + 1, c.rip);
            assertEquals(0, f.read64(KSTACK - 24) & Flags.RF);
        }
    }
}
