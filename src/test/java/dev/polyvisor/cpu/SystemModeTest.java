package dev.polyvisor.cpu;

import dev.polyvisor.cpu.exec.SystemOps;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.SystemFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/** Mode switches: real to protected to long mode, control-register and EFER rules, far transfers. */
class SystemModeTest {
    @Test
    void realModeCodeEntersProtectedModeWithLgdtMovCr0AndFarJump() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            c.setRealSegment(Cpu.CS, 0);
            f.mem.writePhys(PSEUDO, 2, 0x4F);
            f.mem.writePhys(PSEUDO + 2, 4, GDT);
            f.program(16, 0x7C00, """
                    lgdt [0x0f00]
                    mov eax, 0x11
                    mov cr0, eax
                    jmp 0x08:pm32
                    .code32
                    pm32:
                    mov eax, 0x18
                    mov ds, ax
                    mov ss, ax
                    mov esp, 0x9000
                    hlt
                    """);
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(GDT, c.gdtBase);
            assertEquals(0x4F, c.gdtLimit);
            assertEquals(Cpu.CR0_PE | Cpu.CR0_ET, c.cr0);
            assertEquals(0x08, c.segSel[Cpu.CS]);
            assertEquals(4, c.defOpSize);
            assertEquals(0x18, c.segSel[Cpu.SS]);
            assertEquals(4, c.stackSize, "SS.B of the flat data segment");
            assertEquals(0xFFFF_FFFFL, c.segLimit[Cpu.DS]);
            assertEquals(0x9000, c.r[Cpu.RSP]);
            assertEquals(0, c.cpl);
            assertNotEquals(0, f.read64(GDT + 8) & (1L << 40), "the CS load set the accessed bit in the GDT");
        }
    }

    @Test
    void longModeActivatesWhenPagingIsEnabledWithLmeAndPae() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.protected32();
            f.program(32, KCODE, """
                    mov eax, 0x20
                    mov cr4, eax
                    mov eax, 0x4000
                    mov cr3, eax
                    mov ecx, 0xC0000080
                    rdmsr
                    mov eax, 0x100
                    wrmsr
                    mov eax, 0x80000011
                    mov cr0, eax
                    mov ebx, cr0
                    jmp 0x10:l64
                    .code64
                    l64:
                    movabs rax, 0x123456789ab
                    hlt
                    """);
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(Cpu.EFER_LME | Cpu.EFER_LMA, c.efer);
            assertEquals(0x80000011L, c.r[Cpu.RBX]);
            assertTrue(c.long64);
            assertEquals(0x10, c.segSel[Cpu.CS]);
            assertEquals(8, c.defAddrSize);
            assertEquals(0x123456789abL, c.r[Cpu.RAX]);
        }
    }

    @Test
    void pagingWithLmeButWithoutPaeIsGeneralProtection() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.protected32();
            c.efer = Cpu.EFER_LME;
            CpuFault e = assertThrows(CpuFault.class, () -> SystemOps.writeCr0(c, Cpu.CR0_PE | Cpu.CR0_PG));
            assertEquals(Exceptions.GP, e.vector);
            assertEquals(0, c.efer & Cpu.EFER_LMA);
            assertEquals(0, c.cr0 & Cpu.CR0_PG);
        }
    }

    @Test
    void eferRulesRejectReservedBitsAndLmeChangesWhilePaging() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            assertEquals(Exceptions.GP, assertThrows(CpuFault.class, () -> CpuMsrs.write(c, CpuMsrs.EFER, c.efer | (1L << 20))).vector);
            assertEquals(Exceptions.GP, assertThrows(CpuFault.class, () -> CpuMsrs.write(c, CpuMsrs.EFER, Cpu.EFER_SCE)).vector);
            CpuMsrs.write(c, CpuMsrs.EFER, Cpu.EFER_LME | Cpu.EFER_NXE); // LMA is read-only: written 0, stays 1
            assertEquals(Cpu.EFER_LME | Cpu.EFER_LMA | Cpu.EFER_NXE, c.efer);
            assertEquals(Exceptions.GP, assertThrows(CpuFault.class, () -> SystemOps.writeCr4(c, 0)).vector, "PAE is required in IA-32e mode");
            assertEquals(Exceptions.GP, assertThrows(CpuFault.class, () -> SystemOps.writeCr4(c, Cpu.CR4_PAE | (1L << 12))).vector, "LA57 unsupported");
            assertEquals(Exceptions.GP, assertThrows(CpuFault.class, () -> SystemOps.writeCr0(c, Cpu.CR0_PE)).vector,
                    "paging cannot be turned off from 64-bit mode");
        }
    }

    @Test
    void lretqReturnsToTheSelectorOnTheStackLikeStartup64() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.r[Cpu.RSP] = KSTACK - 16;
            f.mem.writePhys(KSTACK - 16, 8, KCODE + 0x40);
            f.mem.writePhys(KSTACK - 8, 8, KCODE64);
            f.program(64, KCODE, "rex.w retf");
            f.load(KCODE + 0x40, new byte[] {(byte) 0xF4});
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(KCODE + 0x41, c.rip);
            assertEquals(KSTACK, c.r[Cpu.RSP]);
            assertEquals(KCODE64, c.segSel[Cpu.CS]);
        }
    }

    @Test
    void farCallThroughA64BitCallGateAndFarReturn() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            // A 16-byte 64-bit call gate (type 0xC, DPL 3) at selector 0x50 to kernel code.
            long target = KCODE + 0x80;
            long lo = (target & 0xFFFF) | ((long) KCODE64 << 16) | (0xECL << 40) | ((target & 0xFFFF0000L) << 32);
            f.mem.writePhys(GDT + 0x50, 8, lo);
            f.mem.writePhys(GDT + 0x58, 8, target >>> 32);
            c.gdtLimit = 0x5F;
            f.mem.writePhys(0x800, 4, 0);       // m16:32 offset (ignored for a gate)
            f.mem.writePhys(0x804, 2, 0x50);    // selector
            f.program(64, KCODE, "call fword ptr [0x800]\nhlt");
            f.program(64, target, "rex.w retf");
            c.rip = KCODE;
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(KCODE + 8, c.rip, "returned after the 7-byte far call and halted");
            assertEquals(KSTACK, c.r[Cpu.RSP]);
        }
    }

    /**
     * The shape of Linux's AP trampoline (arch/x86/realmode/rm/trampoline_64.S): real mode at a
     * paragraph-aligned segment, LIDT/LGDT through DS, PE, a 32-bit far jump, PAE + EFER.LME + PG, a far
     * jump to 64-bit code, null data segments, and LRETQ into the kernel.
     */
    @Test
    void apTrampolineShapedBootReachesLongModeKernelCode() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            long base = 0x9A000;
            f.program(16, base, """
                    cli
                    mov ax, cs
                    mov ds, ax
                    mov ss, ax
                    mov sp, 0xff0
                    lidt [tr_idt - 0x9a000]
                    lgdt [tr_gdt - 0x9a000]
                    mov eax, cr0
                    or eax, 1
                    mov cr0, eax
                    .byte 0x66, 0xea          # ljmpl $0x08, $startup_32
                    .long startup_32
                    .word 0x08
                    .align 8
                    tr_idt: .word 0
                            .long 0
                    tr_gdt: .word 0x4f
                            .long 0x1000
                    .code32
                    startup_32:
                    mov edx, 0x18
                    mov ds, edx
                    mov es, edx
                    mov ss, edx
                    mov eax, cr4
                    or eax, 0x20
                    mov cr4, eax
                    mov eax, 0x4000
                    mov cr3, eax
                    mov ecx, 0xc0000080
                    rdmsr
                    or eax, 0x901
                    wrmsr
                    mov eax, 0x80050033
                    mov cr0, eax
                    jmp 0x10:startup_64
                    .code64
                    startup_64:
                    xor eax, eax
                    mov ds, eax
                    mov ss, eax
                    mov es, eax
                    mov fs, eax
                    mov gs, eax
                    mov rsp, 0x9000
                    push 0x10
                    mov rax, 0x10040
                    push rax
                    lretq
                    """);
            c.setRealSegment(Cpu.CS, 0x9A00);
            c.rip = 0;
            f.program(64, KCODE + 0x40, "hlt");
            c.rip = 0;
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(KCODE + 0x41, c.rip);
            assertTrue(c.long64);
            assertEquals(Cpu.EFER_LMA | Cpu.EFER_LME | Cpu.EFER_NXE | Cpu.EFER_SCE, c.efer);
            assertEquals(0x80050033L, c.cr0);
            assertEquals(KCODE64, c.segSel[Cpu.CS]);
            assertEquals(0, c.segSel[Cpu.SS], "null SS is fine in 64-bit mode at CPL 0");
            assertEquals(0, c.idtLimit);
            assertEquals(0x9000, c.r[Cpu.RSP]);
        }
    }

    @Test
    void lretqReadsTheOuterSsAndRspSlotsBeforeTheSelectorChecks() {
        // A selector whose RPL is not the CPL makes far RET read SS (first) and RSP from the stack before any CS
        // check, as the AMD host does: the #PF of the SS slot comes before the #GP(0x28) of a data selector.
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.r[Cpu.RSP] = 0x3FFFF0; // IP and CS slots mapped; the RSP and SS slots (0x400000, 0x400008) are not
            f.mem.writePhys(0x3FFFF0, 8, KCODE + 0x40);
            f.mem.writePhys(0x3FFFF8, 8, UDATA);
            f.program(64, KCODE, "rex.w retf");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(SystemFixture.stub(Exceptions.PF) + 1, c.rip);
            assertEquals(0x400008, c.cr2);
        }
    }

    @Test
    void iretqReadsTheRflagsSlotFirst() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.r[Cpu.RSP] = 0x3FFFF8; // RIP slot mapped; CS (0x400000) and RFLAGS (0x400008) slots not
            f.mem.writePhys(0x3FFFF8, 8, KCODE + 0x40);
            f.program(64, KCODE, "iretq");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(SystemFixture.stub(Exceptions.PF) + 1, c.rip);
            assertEquals(0x400008, c.cr2, "the RFLAGS slot is read before CS");
        }
    }

    @Test
    void farJmpAndCallThroughMemoryIgnoreRexWAsOnAmd() {
        // AMD: REX.W FF /5 and FF /3 still take an m16:32 operand (m16:64 is Intel's); the far CALL's pushes are
        // 8 bytes each.
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            f.mem.writePhys(0x800, 4, KCODE + 0x40);
            f.mem.writePhys(0x804, 2, KCODE64);
            f.mem.writePhys(0x806, 2, 0xFFFF); // what an m16:64 operand would take as its selector
            f.load(KCODE + 0x40, new byte[] {(byte) 0xF4});
            f.load(KCODE, new byte[] {0x48, (byte) 0xFF, 0x2C, 0x25, 0x00, 0x08, 0x00, 0x00}); // rex.w jmp far [0x800]
            c.rip = KCODE;
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(KCODE + 0x41, c.rip);
            f.load(KCODE, new byte[] {0x48, (byte) 0xFF, 0x1C, 0x25, 0x00, 0x08, 0x00, 0x00}); // rex.w call far [0x800]
            c.rip = KCODE;
            c.halted = false;
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(KCODE + 0x41, c.rip);
            assertEquals(KSTACK - 16, c.r[Cpu.RSP]);
            assertEquals(KCODE + 8, f.read64(KSTACK - 16), "return RIP, 8 bytes");
            assertEquals(KCODE64, f.read64(KSTACK - 8), "return CS, 8 bytes");
        }
    }

    /** REX.W jmp far [ptr] with an m16:64 pointer at {@code ptr} whose m16:32 reading is a null selector: where it lands. */
    private static long rexWFarJmpThrough(SystemFixture f, long ptr) {
        Cpu c = f.cpu;
        f.long64();
        f.mem.writePhys(ptr, 8, KCODE + 0x40);
        f.mem.writePhys(ptr + 8, 2, KCODE64); // m16:32 would take the offset's upper half, 0, as its selector
        f.load(KCODE + 0x40, new byte[] {(byte) 0xF4});
        f.load(KCODE, new byte[] {0x48, (byte) 0xFF, 0x2C, 0x25, (byte) ptr, (byte) (ptr >> 8), (byte) (ptr >> 16), (byte) (ptr >> 24)});
        c.rip = KCODE;
        f.run();
        return c.rip;
    }

    @Test
    void farJmpThroughMemoryHonoursRexWOnIntel() {
        // SDM Vol. 2A "JMP": FF /5 with REX.W jumps through an m16:64 pointer.
        try (SystemFixture f = new SystemFixture()) {
            f.cpu.intel = true;
            assertEquals(KCODE + 0x41, rexWFarJmpThrough(f, 0x800));
            assertEquals(KCODE64, f.cpu.segSel[Cpu.CS]);
        }
    }

    /** Plain-RAM-like MMIO (pc-testdev's iomem window behaves so). */
    private static void mapMmioBuffer(SystemFixture f, long base) {
        byte[] buf = new byte[4096];
        f.mem.addMmio(new dev.polyvisor.memory.MmioRegion("buffer", base, buf.length, new dev.polyvisor.memory.MmioHandler() {
            @Override public long read(long off, int size) {
                long v = 0;
                for (int i = size - 1; i >= 0; i--) v = v << 8 | (buf[(int) off + i] & 0xFF);
                return v;
            }
            @Override public void write(long off, int size, long v) {
                for (int i = 0; i < size; i++) buf[(int) off + i] = (byte) (v >>> 8 * i);
            }
        }));
    }

    @Test
    void farPointerInMmioIsM16_64UnderAHypervisorEmulatorThatReadsItSo() {
        // KVM completes an instruction whose operand is emulated MMIO in its emulator, which reads a REX.W far
        // pointer as m16:64 on AMD too (arch/x86/kvm/emulate.c SrcMemFAddr).
        long mmio = 0x30_0000;
        try (SystemFixture f = new SystemFixture()) {
            mapMmioBuffer(f, mmio);
            f.platform.kvmEmulatorForMmio = true;
            assertEquals(KCODE + 0x41, rexWFarJmpThrough(f, mmio));
            assertEquals(KCODE64, f.cpu.segSel[Cpu.CS]);
        }
        try (SystemFixture f = new SystemFixture()) {
            mapMmioBuffer(f, mmio);
            // An AMD CPU with no such emulator reads m16:32: the selector is 0, #GP(0) (AMD APM Vol. 3 "JMP (Far)").
            assertEquals(SystemFixture.stub(Exceptions.GP) + 1, rexWFarJmpThrough(f, mmio));
        }
        try (SystemFixture f = new SystemFixture()) {
            // ... and so does the KVM-like emulator's machine when the pointer is in RAM: the CPU runs it itself.
            f.platform.kvmEmulatorForMmio = true;
            assertEquals(SystemFixture.stub(Exceptions.GP) + 1, rexWFarJmpThrough(f, 0x800));
        }
    }

    @Test
    void lssWithRexWLoadsA64BitOffsetOnIntelOnly() {
        for (boolean intel : new boolean[] {false, true}) {
            try (SystemFixture f = new SystemFixture()) {
                Cpu c = f.cpu;
                c.intel = intel;
                f.long64();
                // m16:64 reads offset 0x800 and selector 0x808; m16:32 offset 0x800 and selector 0x804.
                f.mem.writePhys(0x800, 8, 0x1234_0000_9ABC_DEF0L | (long) KDATA << 32);
                f.mem.writePhys(0x808, 2, KDATA);
                f.load(KCODE, new byte[] {0x48, 0x0F, (byte) 0xB2, 0x04, 0x25, 0x00, 0x08, 0x00, 0x00, (byte) 0xF4}); // lss rax, [0x800]
                c.rip = KCODE;
                assertInstanceOf(VcpuExit.Halt.class, f.run());
                assertEquals(intel ? 0x1234_0000_9ABC_DEF0L | (long) KDATA << 32 : 0x9ABC_DEF0L, c.r[Cpu.RAX], intel ? "m16:64" : "m16:32, zero-extended");
                assertEquals(KDATA, c.segSel[Cpu.SS]);
            }
        }
    }

    @Test
    void farCallFrom64BitCodeIntoCompatibilityModePushesThroughEsp() {
        // The AMD host addresses the return address as the target mode does: SS.base + ESP - n, and RSP is left
        // zero-extended from ESP (a 64-bit push at this RSP would be #SS: it is not canonical).
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.r[Cpu.RSP] = 0x1234_0000_0000_9000L;
            f.mem.writePhys(0x800, 4, KCODE + 0x80);
            f.mem.writePhys(0x804, 2, KCODE32);
            f.load(KCODE + 0x80, new byte[] {(byte) 0xF4});
            f.load(KCODE, new byte[] {(byte) 0xFF, 0x1C, 0x25, 0x00, 0x08, 0x00, 0x00}); // call far [0x800] (m16:32)
            c.rip = KCODE;
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(KCODE + 0x81, c.rip);
            assertEquals(KCODE32, c.segSel[Cpu.CS]);
            assertEquals(0x8FF8, c.r[Cpu.RSP]);
            assertEquals(KCODE + 7, f.read32(0x8FF8));
            assertEquals(KCODE64, f.read32(0x8FFC));
        }
    }
}
