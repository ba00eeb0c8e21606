package dev.polyvisor.cpu;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.SystemFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * SMEP, SMAP and the protection keys (SDM Vol. 3A 4.6): supervisor accesses to user pages, PKRU for user
 * pages, IA32_PKRS for supervisor pages, the #PF error code's PK flag, and the instructions that change
 * the rights without a TLB flush (STAC/CLAC, WRPKRU, WRMSR IA32_PKRS).
 *
 * <p>Layout: the fixture's low 2 MiB (code, stacks, tables) become a supervisor page; the 2 MiB page at
 * {@link #USER_PAGE} is user-accessible and carries protection key 1 (bits 62:59 of its PDE); the
 * 2 MiB page at {@link #SUPER_PAGE} (a second mapping of the low frame) is supervisor with key 1 too.
 */
class AccessProtectionTest {
    static final long USER_PAGE = 0x200000, SUPER_PAGE = 0x400000;
    static final long KEY1 = 1L << 59;
    /** PKRU/PKRS values: access-disable or write-disable for key 1. */
    static final int AD1 = 1 << 2, WD1 = 1 << 3;
    /** #PF error codes: P, W/R, PK (SDM Vol. 3A 4.7). */
    static final long P = 1, W = 2, PK = 0x20;

    SystemFixture f;
    Cpu c;

    @BeforeEach
    void setUp() {
        f = new SystemFixture();
        c = f.cpu;
        f.long64();
        f.mem.writePhys(PD, 8, 0x000000 | 0x83);              // supervisor, writable
        f.mem.writePhys(PD + 8, 8, 0x200000 | 0x87 | KEY1);    // user, writable, key 1
        f.mem.writePhys(PD + 16, 8, 0x000000 | 0x83 | KEY1);   // supervisor alias of the low frame, key 1
        c.smap = true;
        c.msrs.hasPks = true;
        c.mmu.flushAll();
    }

    @AfterEach
    void tearDown() { f.close(); }

    /** Runs {@code src} at KCODE; returns the #PF error code if the program ended in the #PF stub, else -1. */
    long runForPf(String src) {
        f.program(64, KCODE, src);
        assertInstanceOf(VcpuExit.Halt.class, f.run());
        if (c.rip == stub(Exceptions.PF) + 1) return f.read64(KSTACK - 48);
        assertEquals(KCODE, c.rip & ~0xFFFL, "the program ran to its own HLT, not into another exception stub");
        return -1;
    }

    /** Executes the one instruction {@code asm} at KCODE outside the run loop; the fault it raised, or null. */
    CpuFault step(String asm) { return exec(decode(asm)); }

    dev.polyvisor.cpu.decode.Insn decode(String asm) {
        f.load(KCODE, SystemFixture.asm(64, KCODE, asm));
        return new dev.polyvisor.cpu.decode.Decoder(dev.polyvisor.cpu.exec.Isa.table()).decode(c, KCODE);
    }

    CpuFault exec(dev.polyvisor.cpu.decode.Insn i) {
        c.rip = c.prevRip = KCODE;
        c.rip += i.len;
        try {
            i.exec(c);
            return null;
        } catch (CpuFault e) {
            return e;
        }
    }

    @Test
    void smapFaultsSupervisorReadOfUserPageUnlessAcIsSet() {
        c.cr4 |= Cpu.CR4_SMAP;
        assertEquals(P, runForPf("mov eax, [0x200010]\nhlt"));
        assertEquals(USER_PAGE + 0x10, c.cr2);
        assertEquals(-1, runForPf("stac\nmov eax, [0x200010]\nmov dword ptr [0x200010], 5\nhlt"));
        assertEquals(5, f.mem.readPhys(USER_PAGE + 0x10, 4));
    }

    @Test
    void clacRevokesAccessThatAnEarlierStacAllowedThoughTheTlbCachedIt() {
        c.cr4 |= Cpu.CR4_SMAP;
        assertEquals(P | W, runForPf("stac\nmov dword ptr [0x200010], 1\nclac\nmov dword ptr [0x200010], 2\nhlt"));
        assertEquals(1, f.mem.readPhys(USER_PAGE + 0x10, 4), "the first store went through, the second faulted");
    }

    @Test
    void withoutSmapInCr4SupervisorMayAccessUserPages() {
        assertEquals(-1, runForPf("clac\nmov eax, [0x200010]\nhlt"));
    }

    @Test
    void smapDeniesImplicitAccessesEvenWithAcSet() {
        c.cr4 |= Cpu.CR4_SMAP;
        // An LDT on the user page: loading DS with an LDT selector reads the descriptor there, an implicit
        // supervisor access.
        f.mem.writePhys(USER_PAGE + 0x18, 8, f.mem.readPhys(GDT + KDATA, 8));
        c.segBase[Cpu.LDTR] = USER_PAGE;
        c.segLimit[Cpu.LDTR] = 0xFF;
        c.segAttr[Cpu.LDTR] = 0x82;
        c.segSel[Cpu.LDTR] = 0x48;
        assertEquals(P, runForPf("stac\nmov ax, 0x1c\nmov ds, ax\nhlt"));
        assertEquals(USER_PAGE + 0x18, c.cr2);
        c.cr4 &= ~Cpu.CR4_SMAP;
        c.mmu.flushAll();
        assertEquals(-1, runForPf("mov ax, 0x1c\nmov ds, ax\nhlt"), "the same load without SMAP");
    }

    @Test
    void smepFaultsSupervisorFetchFromUserPage() {
        c.cr4 |= Cpu.CR4_SMEP;
        f.load(USER_PAGE + 0x100, new byte[] {(byte) 0xF4});
        // With SMEP a fetch fault sets I/D (bit 4) even though EFER.NXE is clear.
        assertEquals(P | 0x10, runForPf("mov rax, 0x200100\njmp rax"));
        assertEquals(USER_PAGE + 0x100, c.cr2);
    }

    @Test
    void stacAndClacAreUndefinedWithoutSmapOrAboveCpl0() {
        c.smap = false;
        assertEquals(Exceptions.UD, step("stac").vector);
        c.smap = true;
        assertNull(step("stac"));
        assertNotEquals(0, c.rflags & Flags.AC);
        assertNull(step("clac"));
        assertEquals(0, c.rflags & Flags.AC);
        dev.polyvisor.cpu.decode.Insn stac = decode("stac");
        f.loadSeg(Cpu.CS, UCODE64);
        c.updateMode();
        assertEquals(Exceptions.UD, exec(stac).vector, "CPL 3");
    }

    @Test
    void pkruAccessDisableFaultsDataAccessesToUserPagesWithPkFlag() {
        c.cr4 |= Cpu.CR4_PKE;
        c.r[Cpu.RAX] = AD1;
        assertEquals(P | PK, runForPf("xor ecx, ecx\nxor edx, edx\nmov eax, " + AD1 + "\nwrpkru\nmov eax, [0x200010]\nhlt"));
        // Instruction fetches are not subject to keys.
        c.pkru = AD1;
        c.mmu.flushData();
        f.load(USER_PAGE + 0x100, new byte[] {(byte) 0xF4});
        f.program(64, KCODE, "mov rax, 0x200100\njmp rax");
        assertInstanceOf(VcpuExit.Halt.class, f.run());
        assertEquals(USER_PAGE + 0x101, c.rip, "fetched and ran the HLT on a key-1 page with AD set");
    }

    @Test
    void pkruWriteDisableBindsSupervisorWritesOnlyWithCr0Wp() {
        c.cr4 |= Cpu.CR4_PKE;
        c.pkru = WD1;
        assertEquals(-1, runForPf("mov dword ptr [0x200010], 7\nhlt"), "WP = 0: supervisor writes ignore WD");
        c.cr0 |= Cpu.CR0_WP;
        c.mmu.flushAll();
        assertEquals(P | W | PK, runForPf("mov dword ptr [0x200010], 8\nhlt"));
        assertEquals(7, f.mem.readPhys(USER_PAGE + 0x10, 4));
    }

    @Test
    void wrpkruDropsTranslationsCachedUnderTheOldRights() {
        c.cr4 |= Cpu.CR4_PKE;
        assertEquals(P | PK, runForPf("""
                mov eax, [0x200010]
                mov dword ptr [0x200010], 1
                xor ecx, ecx
                xor edx, edx
                mov eax, 4
                wrpkru
                mov eax, [0x200010]
                hlt"""));
        assertEquals(AD1, c.pkru);
    }

    @Test
    void keysDoNotApplyWithoutCr4Pke() {
        c.pkru = AD1;
        assertEquals(-1, runForPf("mov eax, [0x200010]\nhlt"));
    }

    @Test
    void pkrsGovernsSupervisorPagesAndWrmsrFlushesCachedRights() {
        c.cr4 |= Cpu.CR4_PKS;
        c.cr0 |= Cpu.CR0_WP;
        assertEquals(P | W | PK, runForPf("""
                mov dword ptr [0x400010], 1
                mov ecx, 0x6e1
                xor edx, edx
                mov eax, 8
                wrmsr
                mov eax, [0x400010]
                mov dword ptr [0x400010], 2
                hlt"""));
        assertEquals(1, f.mem.readPhys(0x10, 4), "the write before WD and no write after it");
        assertEquals(WD1, CpuMsrs.read(c, CpuMsrs.PKRS));
    }

    @Test
    void pkruDoesNotGovernSupervisorPagesNorPkrsUserPages() {
        c.cr4 |= Cpu.CR4_PKE | Cpu.CR4_PKS;
        c.pkru = AD1;
        assertEquals(-1, runForPf("mov eax, [0x400010]\nhlt"));
        c.pkru = 0;
        c.pkrs = AD1;
        c.mmu.flushData();
        assertEquals(-1, runForPf("mov eax, [0x200010]\nhlt"));
    }

    @Test
    void rdpkruAndWrpkruCheckCr4PkeAndEcxEdx() {
        assertEquals(Exceptions.UD, step("rdpkru").vector);
        c.cr4 |= Cpu.CR4_PKE;
        c.r[Cpu.RCX] = 1;
        assertEquals(Exceptions.GP, step("rdpkru").vector);
        c.r[Cpu.RCX] = 0;
        c.r[Cpu.RDX] = 1;
        c.r[Cpu.RAX] = 0x55;
        assertEquals(Exceptions.GP, step("wrpkru").vector, "EDX must be 0");
        c.r[Cpu.RDX] = 0;
        assertNull(step("wrpkru"));
        c.r[Cpu.RAX] = 0;
        c.r[Cpu.RDX] = 9;
        assertNull(step("rdpkru"));
        assertEquals(0x55, c.r[Cpu.RAX]);
        assertEquals(0, c.r[Cpu.RDX]);
    }

    @Test
    void cpuidOspkeFollowsCr4Pke() {
        c.r[Cpu.RAX] = 7;
        c.r[Cpu.RCX] = 0;
        assertNull(step("cpuid"));
        assertEquals(0, c.r[Cpu.RCX] & (1 << 4));
        c.cr4 |= Cpu.CR4_PKE;
        c.r[Cpu.RAX] = 7;
        c.r[Cpu.RCX] = 0;
        assertNull(step("cpuid"));
        assertEquals(1 << 4, c.r[Cpu.RCX] & (1 << 4), "CPUID.(EAX=07H,ECX=0):ECX.OSPKE");
    }

    @Test
    void pkrsIsGpWithoutPksOrWithHighBits() {
        assertThrows(CpuFault.class, () -> CpuMsrs.write(c, CpuMsrs.PKRS, 1L << 32));
        c.msrs.hasPks = false;
        assertThrows(CpuFault.class, () -> CpuMsrs.read(c, CpuMsrs.PKRS));
    }
}
