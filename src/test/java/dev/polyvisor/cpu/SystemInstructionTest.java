package dev.polyvisor.cpu;

import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.InterruptDeliveryTest.enterUser64;
import static dev.polyvisor.cpu.SystemFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/** SYSCALL/SYSRET, POPF privilege rules, the I/O bitmap, MSRs, segment loads, LTR/LAR/LSL. */
class SystemInstructionTest {
    @Test
    void syscallAndSysretRoundTripThroughUserMode() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.star = (0x23L << 48) | ((long) KCODE64 << 32);
            c.lstar = KCODE + 0x100;
            c.sfmask = Flags.IF;
            f.program(64, KCODE + 0x100, "hlt");
            f.program(64, UCODE, "mov eax, 42\nsyscall");
            f.program(64, KCODE, "mov ecx, 0x20000\nmov r11d, 0x202\nsysretq");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(KCODE + 0x101, c.rip);
            assertEquals(42, c.r[Cpu.RAX], "user code ran");
            assertEquals(UCODE + 7, c.r[Cpu.RCX], "SYSCALL saved the user RIP");
            assertEquals(0x202, c.r[11] & 0x3FFFFF, "SYSCALL saved the user RFLAGS (set by SYSRET from R11)");
            assertEquals(0, c.rflags & Flags.IF, "SFMASK cleared IF");
            assertEquals(0, c.cpl);
            assertEquals(KCODE64, c.segSel[Cpu.CS]);
            assertEquals(KDATA, c.segSel[Cpu.SS]);
            assertTrue(c.long64);
        }
    }

    @Test
    void sysretToANonCanonicalRipFaultsInRing0() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.star = 0x23L << 48;
            f.program(64, KCODE, "movabs rcx, 0x0000900000000000\nsysretq");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.GP) + 1, c.rip);
            assertEquals(KCODE64, f.read64(KSTACK - 32), "#GP taken in ring 0, at the SYSRET");
            assertEquals(KCODE + 10, f.read64(KSTACK - 40));
        }
    }

    @Test
    void popfAtCpl3ChangesNeitherIoplNorIfWhenIoplIsZero() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            enterUser64(f);
            f.gate64(Exceptions.BP, KCODE64, stub(Exceptions.BP), 0xE, 3, 0);
            c.setRflags(0x202);
            f.mem.writePhys(USTACK - 8, 8, 0x3002 | Flags.CF | Flags.AC);
            c.r[Cpu.RSP] = USTACK - 8;
            f.program(64, UCODE, "popfq\npushfq\nint3");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.BP) + 1, c.rip);
            long pushed = f.read64(USTACK - 8);
            assertEquals(Flags.IF, pushed & (Flags.IF | Flags.IOPL), "IF kept, IOPL kept at 0");
            assertEquals(Flags.CF | Flags.AC, pushed & (Flags.CF | Flags.AC), "ordinary flags and AC do change");
        }
    }

    @Test
    void popfAtCpl3WithIopl3ChangesIfButNotIopl() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            enterUser64(f);
            f.gate64(Exceptions.BP, KCODE64, stub(Exceptions.BP), 0xE, 3, 0);
            c.setRflags(0x3202);
            f.mem.writePhys(USTACK - 8, 8, 0x0002);
            c.r[Cpu.RSP] = USTACK - 8;
            f.program(64, UCODE, "popfq\npushfq\nint3");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(Flags.IOPL, f.read64(USTACK - 8) & (Flags.IF | Flags.IOPL));
        }
    }

    @Test
    void cliAtCpl3WithoutIoplIsGeneralProtection() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            enterUser64(f);
            c.setRflags(0x202);
            f.program(64, UCODE, "cli");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.GP) + 1, c.rip);
            assertEquals(UCODE, f.read64(KSTACK - 40));
        }
    }

    @Test
    void ioBitmapPermitsOnePortAndDeniesItsNeighbourAtCpl3() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            enterUser64(f);
            f.mem.writePhys(TSS + TSS_IOMAP + 0x80 / 8, 1, 0xFE); // port 0x80 allowed, 0x81-0x87 denied
            f.program(64, UCODE, "mov eax, 0x41\nout 0x80, al\nout 0x81, al");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(1, f.platform.outs.size());
            assertEquals(0x80, f.platform.outs.get(0)[0]);
            assertEquals(0x41, f.platform.outs.get(0)[2]);
            assertEquals(stub(Exceptions.GP) + 1, c.rip);
            assertEquals(0, f.read64(KSTACK - 48));
            assertEquals(UCODE + 7, f.read64(KSTACK - 40));
        }
    }

    @Test
    void wordAccessNeedsEveryBitOfItsPortsClear() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            enterUser64(f);
            f.mem.writePhys(TSS + TSS_IOMAP + 0x80 / 8, 1, 0xFE);
            f.program(64, UCODE, "mov edx, 0x80\nout dx, ax");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(0, f.platform.outs.size(), "port 0x81 is denied, so a 16-bit OUT to 0x80 is too");
            assertEquals(stub(Exceptions.GP) + 1, c.rip);
        }
    }

    @Test
    void unknownMsrIsGeneralProtectionAndKnownOnesRoundTrip() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            f.program(64, KCODE, """
                    mov ecx, 0xC0000082
                    mov eax, 0x12345678
                    mov edx, 0xffffffff
                    wrmsr
                    mov ecx, 0x277
                    rdmsr
                    mov ecx, 0x12345
                    rdmsr
                    """);
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(0xFFFF_FFFF_1234_5678L, c.lstar);
            assertEquals(0x00070406, c.r[Cpu.RAX], "PAT power-on value, low half");
            assertEquals(0x00070406, c.r[Cpu.RDX], "PAT power-on value, high half");
            assertEquals(stub(Exceptions.GP) + 1, c.rip);
            assertEquals(KCODE + 29, f.read64(KSTACK - 40), "#GP at the RDMSR of the unknown MSR");
        }
    }

    @Test
    void nonCanonicalMsrValueAndTscWriteAdjustOffset() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            assertEquals(Exceptions.GP, assertThrows(CpuFault.class, () -> CpuMsrs.write(c, CpuMsrs.KERNEL_GS_BASE, 0x0000_8000_0000_0000L)).vector);
            CpuMsrs.write(c, CpuMsrs.TSC, 1_000_000);
            long t = CpuMsrs.read(c, CpuMsrs.TSC);
            assertTrue(t > 1_000_000 && t < 1_010_000, "TSC continues from the written value: " + t);
            CpuMsrs.write(c, CpuMsrs.MTRR_PHYSBASE0, 0x80000006L);
            assertEquals(0x80000006L, CpuMsrs.read(c, CpuMsrs.MTRR_PHYSBASE0));
            assertEquals(Exceptions.GP, assertThrows(CpuFault.class, () -> CpuMsrs.write(c, CpuMsrs.PAT, 0x02)).vector, "PAT type 2 is reserved");
        }
    }

    @Test
    void swapgsExchangesGsBaseWithKernelGsBase() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.segBase[Cpu.GS] = 0x1111;
            c.kernelGsBase = 0xFFFF_8880_0000_2222L;
            f.program(64, KCODE, "swapgs\nhlt");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(0xFFFF_8880_0000_2222L, c.segBase[Cpu.GS]);
            assertEquals(0x1111, c.kernelGsBase);
        }
    }

    @Test
    void segmentLoadsCheckPrivilegeAndPresence() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.protected32();
            f.program(32, KCODE, "mov eax, 0x2b\nmov ss, ax");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.GP) + 1, c.rip);
            assertEquals(0x28, f.read32(c.r[Cpu.RSP]), "SS with DPL 3 at CPL 0: #GP(selector)");

            f.protected32();
            f.mem.writePhys(GDT + 0x38, 8, seg(0, 0xFFFFF, 0x12, 0xC)); // data, not present
            f.program(32, KCODE, "mov eax, 0x38\nmov ds, ax");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.NP) + 1, c.rip);
            assertEquals(0x38, f.read32(c.r[Cpu.RSP]));

            f.protected32();
            f.program(32, KCODE, "mov eax, 0x2b\nmov es, ax\nmov eax, 0\nmov fs, ax\nhlt");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(UDATA, c.segSel[Cpu.ES], "a DPL 3 data segment is loadable at CPL 0");
            assertNotEquals(0, c.segAttr[Cpu.FS] & Segments.UNUSABLE, "null selector makes FS unusable");
        }
    }

    @Test
    void ltrMarksTheTssBusyAndLarLslReportDescriptors() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            f.mem.writePhys(GDT + 0x40, 8, seg(TSS, TSS_IOMAP + 8192, 0x89, 0));
            f.program(64, KCODE, """
                    mov eax, 0x40
                    ltr ax
                    str ecx
                    mov eax, 0x2b
                    lsl edx, eax
                    lar ebx, eax
                    mov eax, 0x48
                    lsl esi, eax
                    hlt
                    """);
            c.r[Cpu.RSI] = 0x77;
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(0xB, (f.read64(GDT + 0x40) >>> 40) & 0xF, "TSS descriptor is busy");
            assertEquals(TSS_SEL, c.segSel[Cpu.TR]);
            assertEquals(TSS, c.segBase[Cpu.TR]);
            assertEquals(TSS_SEL, c.r[Cpu.RCX]);
            assertEquals(0xFFFF_FFFFL, c.r[Cpu.RDX]);
            assertEquals(0x00CF_F200L, c.r[Cpu.RBX], "access rights with the limit nibble (bits 19:16), as the AMD host returns");
            assertEquals(0x77, c.r[Cpu.RSI], "LSL of the TSS descriptor's upper half (a null type) fails");
            assertFalse(Flags.zf(c));
        }
    }

    @Test
    void sysretToCompatibilityModeAndSyscallBackThroughCstar() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.star = (0x23L << 48) | ((long) KCODE64 << 32);
            c.cstar = KCODE + 0x200;
            f.program(64, KCODE + 0x200, "hlt");
            f.program(32, UCODE, "mov eax, cs\nsyscall");
            f.program(64, KCODE, "mov ecx, 0x20000\nmov r11d, 0x202\nsysretd");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(UCODE32, c.r[Cpu.RAX], "SYSRET without REX.W returns to 32-bit code at CS = STAR[63:48] | 3");
            assertEquals(KCODE + 0x201, c.rip);
            assertEquals(UCODE + 4, c.r[Cpu.RCX]);
            assertTrue(c.long64);
        }
    }

    @Test
    void rdpmcReadsTheModelsCountersAtCpl0AndFaultsForOthers() {
        // SDM Vol. 2B / AMD APM Vol. 3 "RDPMC": EDX:EAX = counter[ECX]; an index the model lacks is #GP(0).
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            f.platform.pmc = new long[] {0, 0x0000_BEEF_1234_5678L};
            f.program(64, KCODE, "mov ecx, 1\nrdpmc\nmov ecx, 4\nrdpmc");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.GP) + 1, c.rip, "counter 4 does not exist: #GP");
            assertEquals(0x1234_5678L, c.r[Cpu.RAX]);
            assertEquals(0xBEEFL, c.r[Cpu.RDX]);
            assertEquals(KCODE + 12, f.read64(KSTACK - 40), "the fault points at the second RDPMC");
        }
    }

    @Test
    void rdpmcAtCpl3NeedsCr4Pce() {
        // SDM Vol. 2B "RDPMC": #GP(0) if CPL != 0 and CR4.PCE = 0.
        for (boolean pce : new boolean[] {false, true}) {
            try (SystemFixture f = new SystemFixture()) {
                Cpu c = f.cpu;
                enterUser64(f);
                if (pce) c.cr4 |= Cpu.CR4_PCE;
                f.platform.pmc = new long[] {7};
                f.gate64(Exceptions.BP, KCODE64, stub(Exceptions.BP), 0xE, 3, 0);
                f.program(64, UCODE, "xor ecx, ecx\nrdpmc\nint3");
                assertInstanceOf(VcpuExit.Halt.class, f.run());
                assertEquals(stub(pce ? Exceptions.BP : Exceptions.GP) + 1, c.rip, "CR4.PCE=" + pce);
                if (pce) assertEquals(7, c.r[Cpu.RAX]);
            }
        }
    }

    @Test
    void aHypervisorPseudoCounterIsReadableAtCpl3WithoutCr4Pce() {
        // VMware's pseudo-performance counters (KVM: kvm_pmu_rdpmc_vmware): RDPMC 0x10000 needs neither CPL 0
        // nor CR4.PCE; a real counter index at CPL 3 still does.
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            enterUser64(f);
            f.platform.pseudoPmc = 0x10000;
            f.platform.pseudoPmcValue = 0x0000_0012_8765_4321L;
            f.platform.pmc = new long[] {7};
            f.gate64(Exceptions.BP, KCODE64, stub(Exceptions.BP), 0xE, 3, 0);
            f.program(64, UCODE, "mov ecx, 0x10000\nrdpmc\nxor ecx, ecx\nrdpmc\nint3");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(0x8765_4321L, c.r[Cpu.RAX]);
            assertEquals(0x12L, c.r[Cpu.RDX]);
            assertEquals(stub(Exceptions.GP) + 1, c.rip, "counter 0 at CPL 3 without CR4.PCE: #GP");
        }
    }

    @Test
    void aBackdoorPortAnswersCpl3WhateverIoplSays() {
        // SDM Vol. 1 19.5: IN at CPL 3 > IOPL 0 needs the TSS I/O bitmap; a hypervisor backdoor port (VMware's
        // 0x5658) is exempt, any other port still #GPs.
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            enterUser64(f);
            f.platform.openPort = 0x5658;
            f.gate64(Exceptions.BP, KCODE64, stub(Exceptions.BP), 0xE, 3, 0);
            f.program(64, UCODE, "mov dx, 0x5658\nin eax, dx\nmov dx, 0x1234\nin eax, dx\nint3");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(0xFFFF_FFFFL, c.r[Cpu.RAX], "the backdoor port was read");
            assertEquals(stub(Exceptions.GP) + 1, c.rip, "port 0x1234 at CPL 3: #GP");
        }
    }

    @Test
    void ltrAndLldtRejectANonCanonicalBaseInIa32eMode() {
        // SDM Vol. 2 LLDT/LTR, 64-bit mode exceptions: a non-canonical base in the 16-byte descriptor is
        // #GP(selector), and nothing is loaded (the TSS is not marked busy).
        for (int type : new int[] {0x89, 0x82}) { // available 64-bit TSS, LDT
            try (SystemFixture f = new SystemFixture()) {
                Cpu c = f.cpu;
                f.long64();
                f.mem.writePhys(GDT + 0x40, 8, seg(0x5000, 0x67, type, 0));
                f.mem.writePhys(GDT + 0x48, 8, 0xAAAA_AAAAL); // base bits 63:32: not canonical
                f.program(64, KCODE, "mov ax, 0x40\n" + (type == 0x89 ? "ltr ax" : "lldt ax"));
                assertInstanceOf(VcpuExit.Halt.class, f.run());
                assertEquals(stub(Exceptions.GP) + 1, c.rip, type == 0x89 ? "LTR" : "LLDT");
                assertEquals(0x40, f.read64(KSTACK - 48), "error code: the selector");
                assertEquals(type, (f.read64(GDT + 0x40) >>> 40) & 0xFF, "descriptor untouched");
                f.mem.writePhys(GDT + 0x48, 8, 0xFFFF_8000L); // canonical: loads
                f.program(64, KCODE, "mov ax, 0x40\n" + (type == 0x89 ? "ltr ax" : "lldt ax") + "\nhlt");
                assertInstanceOf(VcpuExit.Halt.class, f.run());
                assertEquals(0xFFFF_8000_0000_5000L, c.segBase[type == 0x89 ? Cpu.TR : Cpu.LDTR]);
            }
        }
    }

    @Test
    void pcidRulesOfMovToCr4Cr0AndCr3() {
        // SDM Vol. 2B MOV CR / Vol. 3A 4.10.4.1: PCIDE needs CR3[11:0] = 0 (and IA-32e mode); PG cannot be cleared
        // with PCIDE; with PCIDE, CR3 bit 63 (no flush) is not stored and bits 11:0 are the PCID.
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.cr3 = PML4 | 1;
            f.program(64, KCODE, "mov rax, cr4\nbts rax, 17\nmov cr4, rax");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.GP) + 1, c.rip, "PCIDE with a non-zero CR3[11:0]");
            c.cr3 = PML4;
            f.program(64, KCODE, """
                    mov rax, cr4
                    bts rax, 17
                    mov cr4, rax
                    mov rax, 0x8000000000000000 | 0x4000 | 5
                    mov cr3, rax
                    mov rbx, cr3
                    mov rax, cr0
                    btr rax, 31
                    mov cr0, rax""");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.GP) + 1, c.rip, "clearing PG with PCIDE");
            assertEquals(PML4 | 5, c.r[Cpu.RBX], "PCID 5 kept, bit 63 dropped");
            assertNotEquals(0, c.cr4 & Cpu.CR4_PCIDE);
        }
    }

    @Test
    void invpcidChecksItsOperandsAndIsUndefinedWithoutTheFeature() {
        // SDM Vol. 2A INVPCID: type > 3, descriptor bits 63:12, a non-zero PCID for types 0/1 without PCIDE,
        // a non-canonical address for type 0: #GP(0). Not advertised: #UD.
        String[][] cases = {
            {"0", "0", "0", "none"}, {"3", "0", "0", "none"}, {"4", "0", "0", "gp"}, {"0", "0x1000", "0", "gp"},
            {"1", "1", "0", "gp"}, {"2", "1", "0", "none"}, {"0", "0", "0x0000800000000000", "gp"},
        };
        for (String[] k : cases) {
            try (SystemFixture f = new SystemFixture()) {
                Cpu c = f.cpu;
                f.long64();
                c.invpcid = true;
                f.mem.writePhys(0x3000, 8, Long.decode(k[1]));
                f.mem.writePhys(0x3008, 8, Long.decode(k[2]));
                f.program(64, KCODE, "mov eax, " + k[0] + "\nmov ebx, 0x3000\ninvpcid rax, [rbx]\nhlt");
                assertInstanceOf(VcpuExit.Halt.class, f.run());
                assertEquals(k[3].equals("gp") ? stub(Exceptions.GP) + 1 : KCODE + 16, c.rip, String.join(",", k));
            }
        }
        try (SystemFixture f = new SystemFixture()) {
            f.long64();
            f.program(64, KCODE, "xor eax, eax\nmov ebx, 0x3000\ninvpcid rax, [rbx]");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.UD) + 1, f.cpu.rip);
        }
    }

    @Test
    void tscAdjustMovesTheTscAndFollowsWritesToIt() {
        // SDM Vol. 3B 17.17.3: writing IA32_TSC_ADJUST (3Bh) adds the difference to the TSC; writing IA32_TSC
        // adds the TSC's change to IA32_TSC_ADJUST. Without CPUID.7.0:EBX.TSC_ADJUST the MSR is #GP.
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            assertThrows(CpuFault.class, () -> CpuMsrs.read(c, CpuMsrs.TSC_ADJUST));
            c.msrs.hasTscAdjust = true;
            assertEquals(0, CpuMsrs.read(c, CpuMsrs.TSC_ADJUST));
            long t1 = CpuMsrs.tsc(c);
            CpuMsrs.write(c, CpuMsrs.TSC_ADJUST, 100_000_000_000L);
            long t2 = CpuMsrs.tsc(c);
            assertTrue(t2 - t1 >= 100_000_000_000L);
            assertEquals(100_000_000_000L, CpuMsrs.read(c, CpuMsrs.TSC_ADJUST));
            CpuMsrs.write(c, CpuMsrs.TSC_ADJUST, 0);
            long before = CpuMsrs.tsc(c);
            CpuMsrs.write(c, CpuMsrs.TSC, before + 5_000_000);
            long adj = CpuMsrs.read(c, CpuMsrs.TSC_ADJUST);
            assertTrue(adj >= 4_000_000 && adj <= 5_000_000, "the TSC write's delta: " + adj);
        }
    }
}
