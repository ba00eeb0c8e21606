package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.OpcodeTable;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The oracle's own machinery: the native harness reports what the host CPU really did. */
class HostHarnessTest {
    @BeforeAll
    static void x86Linux() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        assumeTrue(os.contains("linux") && (arch.equals("amd64") || arch.equals("x86_64")), "needs an x86-64 Linux host");
    }

    private static final OpcodeTable.Entry DUMMY = new OpcodeTable.Entry("TEST", 0, 0, OpcodeTable.ANY, -1, 0,
            OpcodeTable.Imm.NONE, d -> null);

    private static OracleCase oc(MachineState in, int... code) {
        byte[] b = new byte[code.length];
        for (int i = 0; i < code.length; i++) b[i] = (byte) code[i];
        return new OracleCase(DUMMY, 0, new Encoding(b, 8, false, -1, -1, 0, 0, 0, -1, 0, new long[16]), in);
    }

    private static MachineState state() {
        MachineState s = new MachineState();
        for (int i = 0; i < 16; i++) s.gpr[i] = 0x1111_0000L * (i + 1);
        return s;
    }

    /** Runs cases on the host CPU; the calling test is skipped (with the printed reason) where the harness cannot be built. */
    private static MachineState[] run(List<OracleCase> cases) throws Exception {
        HostCapabilities.assumeHarness();
        try (HostHarness h = new HostHarness(HostHarness.build())) {
            h.submit(cases);
            return h.collect();
        }
    }

    @Test
    void hostRunsInstructionsAndReportsFaultsByVector() throws Exception {
        List<OracleCase> cases = new ArrayList<>();
        MachineState add = state();
        add.rflags = 2 | Flags.CF;
        cases.add(oc(add, 0x48, 0x01, 0xD8));                          // add rax, rbx
        MachineState div = state();
        div.gpr[1] = 0;
        cases.add(oc(div, 0x48, 0xF7, 0xF1));                          // div rcx (by zero)
        cases.add(oc(state(), 0x0F, 0x0B));                            // ud2
        MachineState store = state();
        store.gpr[3] = HostHarness.DATA_ADDR + 0x800;
        cases.add(oc(store, 0x48, 0x89, 0x43, 0x10));                  // mov [rbx+0x10], rax
        MachineState unmapped = state();
        unmapped.gpr[3] = 0x3000_0000L;
        cases.add(oc(unmapped, 0x48, 0x8B, 0x03));                     // mov rax, [rbx]
        MachineState rsp = state();
        cases.add(oc(rsp, 0x48, 0x83, 0xC4, 0x08));                    // add rsp, 8: RSP is an ordinary register
        MachineState x87 = state();
        x87.fsw = 3 << 11;
        x87.ftw = 0;
        cases.add(oc(x87, 0xD9, 0xE8));                                // fld1
        MachineState[] r = run(cases);

        long code = HostHarness.CODE_ADDR + HostHarness.CODE_OFF;
        assertEquals(MachineState.NO_TRAP, r[0].trap);
        assertEquals(0x1111_0000L + 0x4444_0000L, r[0].gpr[0]);
        assertEquals(0, r[0].rflags & Flags.CF, "ADD recomputes CF");
        assertEquals(code + 3, r[0].rip);
        assertEquals(Exceptions.DE, r[1].trap);
        assertEquals(code, r[1].rip, "a fault reports the faulting instruction");
        assertEquals(Exceptions.UD, r[2].trap);
        assertEquals(MachineState.NO_TRAP, r[3].trap);
        assertEquals(0x1111_0000L, java.nio.ByteBuffer.wrap(r[3].mem, 0x810 - HostHarness.WIN_OFF, 8)
                .order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong());
        assertEquals(0, r[3].dirty);
        assertEquals(Exceptions.PF, r[4].trap);
        assertEquals(0x3000_0000L, r[4].faultAddr);
        assertEquals(0x5555_0000L + 8, r[5].gpr[4]);
        assertEquals(2, r[6].fsw >> 11 & 7, "FLD pushes: TOP 3 -> 2");
        assertEquals(1 << 2, r[6].ftw, "physical register 2 is in use");
        assertEquals(0x3FFF, r[6].stExp[0]);
        assertEquals(Long.MIN_VALUE, r[6].stMant[0]);
    }

    @Test
    void emulatorFixtureAgreesOnASimpleMoveAndReportsItsFaults() throws Exception {
        try (EmulatedHost emu = new EmulatedHost()) {
            MachineState in = state();
            MachineState out = emu.run(new byte[] {(byte) 0x48, (byte) 0xB8, 1, 2, 3, 4, 5, 6, 7, 8}, in); // mov rax, imm64
            assertEquals(MachineState.NO_TRAP, out.trap);
            assertEquals(0x0807_0605_0403_0201L, out.gpr[0]);
            assertEquals(HostHarness.CODE_ADDR + HostHarness.CODE_OFF + 10, out.rip);
            assertEquals(3, emu.cpu.cpl);
            MachineState bad = emu.run(new byte[] {(byte) 0x0F, (byte) 0xFF}, in); // an opcode no one implements
            assertEquals(Exceptions.UD, bad.trap);
            assertEquals(HostHarness.CODE_ADDR + HostHarness.CODE_OFF, bad.rip);
        }
    }

    @Test
    void comparisonReportsEveryDifferingFieldButIgnoresUndefinedFlags() {
        MachineState a = state(), b = state();
        b.gpr[2] ^= 1;
        b.rflags ^= Flags.AF;
        b.xmm[5] = 7;
        b.mem[3] = 9;
        OracleCase c = oc(state(), 0x90);
        List<String> d = HostCpuOracleTest.compare(c, a, b, Undefined.NONE, null, null);
        assertEquals(4, d.size(), d.toString());
        assertTrue(d.get(0).startsWith("rdx"));
        List<String> masked = HostCpuOracleTest.compare(c, a, b, new Undefined(Flags.AF, 1 << 2, false), null, null);
        assertEquals(2, masked.size(), masked.toString());
    }

    @Test
    void shiftFlagMasksFollowTheMaskedCount() {
        OpcodeTable.Entry shlCl = new OpcodeTable.Entry("SHL r/m, CL", OpcodeTable.MAP_1BYTE, 0xD3, OpcodeTable.ANY, 4,
                OpcodeTable.MODRM, OpcodeTable.Imm.NONE, d -> null);
        Encoding enc32 = new Encoding(new byte[] {(byte) 0xD3, (byte) 0xE0}, 4, false, 4, 0, 3, 0, 0, -1, 0, new long[16]);
        MachineState in = state();
        in.gpr[1] = 0x20; // masked to 0: flags unaffected, so all defined
        assertEquals(Undefined.NONE, Undefined.of(shlCl, enc32, in, 0));
        in.gpr[1] = 0x21; // count 1: only AF undefined
        assertEquals(Flags.AF, Undefined.of(shlCl, enc32, in, 0).flags());
        in.gpr[1] = 5;
        assertEquals(Flags.AF | Flags.OF, Undefined.of(shlCl, enc32, in, 0).flags());
    }

    /**
     * Compatibility mode (Compat32): 40 is INC EAX there (a REX prefix in 64-bit mode);
     * 67 8B 07 is MOV EAX,[BX] with 16-bit addressing, which reaches
     * the data page through its alias below 64 KiB; DAA (invalid in 64-bit mode) runs; the return to 64-bit
     * mode after the case leaves the low halves of the registers as the instruction left them.
     */
    @Test
    void compatibilityModeCasesRunUnderThe32BitRules() throws Exception {
        assumeTrue(Compat32.LOW_WINDOW, "vm.mmap_min_addr does not allow the 16-bit window");
        HostCapabilities.Capability compat = HostCapabilities.assumeHarness().compat();
        assumeTrue(compat.present(), "host cannot enter 32-bit compatibility mode (" + compat.observed() + ")");
        List<OracleCase> cases = new ArrayList<>();
        MachineState inc = state();
        inc.compat = true;
        inc.gpr[0] = 0xFFFF_FFFFL;
        cases.add(oc(inc, 0x40));                                      // inc eax
        MachineState load = state();
        load.compat = true;
        load.gpr[3] = 0xABCD_0000L | (HostHarness.LOW_ADDR + 0x800);    // bits 16-31 ignored by [bx]
        for (int i = 0; i < 4; i++) load.mem[0x800 - HostHarness.WIN_OFF + i] = (byte) (0x11 * (i + 1));
        cases.add(oc(load, 0x67, 0x8B, 0x07));                         // mov eax, [bx]
        MachineState daa = state();
        daa.compat = true;
        daa.gpr[0] = 0x0F;
        cases.add(oc(daa, 0x27));                                      // daa
        MachineState[] r = run(cases);
        assertEquals(MachineState.NO_TRAP, r[0].trap);
        assertEquals(0, r[0].gpr[0] & 0xFFFF_FFFFL);
        assertEquals(Flags.ZF | Flags.AF | Flags.PF, r[0].rflags & Flags.ARITH & ~Flags.CF);
        assertEquals(HostHarness.CODE_ADDR + HostHarness.CODE_OFF + 1, r[0].rip);
        assertEquals(MachineState.NO_TRAP, r[1].trap);
        assertEquals(0x4433_2211L, r[1].gpr[0] & 0xFFFF_FFFFL);
        assertEquals(MachineState.NO_TRAP, r[2].trap);
        assertEquals(0x15, r[2].gpr[0] & 0xFF);
    }
}
