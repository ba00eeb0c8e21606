package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.Flags;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.exec.FpuTestFixture.DATA;
import static org.junit.jupiter.api.Assertions.*;

class X87OpsTest {
    static final int IE = 1, DE = 2, ZE = 4, OE = 8, UE = 16, PE = 32, SF = 64, ES = 0x80;
    static final int C0 = 0x100, C1 = 0x200, C2 = 0x400, C3 = 0x4000;

    final FpuTestFixture f = new FpuTestFixture();

    @BeforeEach void init() {
        f.c.r[Cpu.RAX] = DATA;
        f.ok("db e3"); // FNINIT
    }

    @AfterEach void close() { f.close(); }

    long mant(int i) { return f.c.stMant[X87.phys(f.c, i)]; }

    int se(int i) { return f.c.stExp[X87.phys(f.c, i)]; }

    int sw() { return X87.status(f.c); }

    void ld80(long m, int se) {
        f.mem.st64(DATA, m);
        f.mem.st16(DATA + 8, se);
        f.ok("db 28"); // FLD m80
    }

    void ldD(double d) {
        f.mem.st64(DATA, Double.doubleToRawLongBits(d));
        f.ok("dd 00"); // FLD m64
    }

    double stpD() {
        f.ok("dd 18"); // FSTP m64
        return Double.longBitsToDouble(f.mem.ld64(DATA));
    }

    @Test void fninitStateAndControlWordRoundTrip() {
        assertEquals(0x037F, f.c.fcw);
        assertEquals(0xFFFF, f.c.ftw);
        f.ok("d9 38"); // FNSTCW [rax]
        assertEquals(0x037F, f.mem.ld16(DATA));
        f.mem.st16(DATA, 0x0E7F | 0x80);
        f.ok("d9 28"); // FLDCW: bit 7 reserved reads 0, bit 6 reads 1
        assertEquals(0x0E7F, f.c.fcw);
        f.c.r[Cpu.RAX] = 0x1234_FFFFL;
        f.ok("df e0"); // FNSTSW AX
        assertEquals(0x1234_0000L, f.c.r[Cpu.RAX]);
    }

    @Test void fld80AndFstp80RoundTripEveryImageBitExactly() {
        long[][] images = {{0x8000_0000_0000_0001L, 0x3FFF}, {0x4000_0000_0000_0000L, 0x0000}, // denormal
                {0x8000_0000_0000_0001L, 0x0000}, // pseudo-denormal
                {0xA000_0000_0000_0001L, 0x7FFF}, // SNaN (no IE on FLD m80)
                {0x1234_5678_9ABC_DEF0L, 0x4005}, // unnormal
                {0, 0x8000}, {0x8000_0000_0000_0000L, 0xFFFF}};
        for (long[] im : images) {
            ld80(im[0], (int) im[1]);
            f.mem.st64(DATA, 0);
            f.mem.st16(DATA + 8, 0);
            f.ok("db 38"); // FSTP m80
            assertEquals(im[0], f.mem.ld64(DATA));
            assertEquals((int) im[1], f.mem.ld16(DATA + 8));
        }
        assertEquals(0, sw() & 0x3F);
        assertEquals(0xFFFF, f.c.ftw);
    }

    @Test void additionKeepsTheFull64BitSignificand() {
        f.ok("d9 e8"); // FLD1
        f.ok("d9 eb"); // FLDPI
        assertEquals(0xC90F_DAA2_2168_C235L, mant(0));
        f.ok("de c1"); // FADDP ST1, ST0
        assertEquals(0x8487_ED51_10B4_611AL, mant(0)); // tie rounded to even
        assertEquals(0x4001, se(0));
        assertEquals(PE, sw() & 0x3F);
        assertEquals(0, sw() & C1);
        assertEquals(7, f.c.fpuTop);
    }

    @Test void precisionControlRoundsTheSignificand() {
        f.ok("d9 e8");
        ldD(3.0);
        f.ok("de f9"); // FDIVP: ST1 = 1/3
        assertEquals(0xAAAA_AAAA_AAAA_AAABL, mant(0));
        assertEquals(C1, sw() & C1); // rounded up
        f.mem.st16(DATA, 0x027F); // PC = double
        f.ok("d9 28");
        f.ok("d9 e8");
        ldD(3.0);
        f.ok("de f9");
        assertEquals(0xAAAA_AAAA_AAAA_A800L, mant(0));
        assertEquals(1.0 / 3.0, stpD());
    }

    @Test void integerLoadsAndStoresAreExact() {
        f.mem.st64(DATA, Long.MAX_VALUE);
        f.ok("df 28"); // FILD m64
        f.ok("df 38"); // FISTP m64
        assertEquals(Long.MAX_VALUE, f.mem.ld64(DATA));
        f.mem.st32(DATA, -5);
        f.ok("db 00"); // FILD m32
        assertEquals(-5.0, f.c.st[X87.phys(f.c, 0)]);
        f.ok("db 18"); // FISTP m32
        assertEquals(-5, f.mem.ld32(DATA));
        assertEquals(0xFFFF, f.c.ftw);
    }

    @Test void integerStoresRoundPerControlWordAndOverflowToIndefinite() {
        ldD(2.5);
        f.ok("db 10"); // FIST m32
        assertEquals(2, f.mem.ld32(DATA));
        assertEquals(PE, sw() & 0x3F);
        f.mem.st16(DATA + 16, 0x0B7F); // RC = up
        f.c.r[Cpu.RBX] = DATA + 16;
        f.ok("d9 2b"); // FLDCW [rbx]
        f.ok("db 10");
        assertEquals(3, f.mem.ld32(DATA));
        f.ok("db 08"); // FISTTP m32 truncates and pops
        assertEquals(2, f.mem.ld32(DATA));
        ldD(40000.0);
        f.ok("df 18"); // FISTP m16
        assertEquals(0x8000, f.mem.ld16(DATA));
        assertEquals(IE, sw() & IE);
    }

    @Test void doubleStoresRoundPerControlWord() {
        ld80(0x8000_0000_0000_0001L, 0x3FFF); // 1 + 2^-63
        f.ok("dd 10"); // FST m64
        assertEquals(1.0, Double.longBitsToDouble(f.mem.ld64(DATA)));
        assertEquals(PE, sw() & 0x3F);
        f.mem.st16(DATA + 16, 0x0B7F);
        f.c.r[Cpu.RBX] = DATA + 16;
        f.ok("d9 2b");
        f.ok("dd 10");
        assertEquals(Math.nextUp(1.0), Double.longBitsToDouble(f.mem.ld64(DATA)));
        assertEquals(C1, sw() & C1);
        f.ok("d9 18"); // FSTP m32
        assertEquals(Math.nextUp(1.0f), Float.intBitsToFloat(f.mem.ld32(DATA)));
    }

    @Test void snanLoadsRaiseInvalidAndAreQuieted() {
        f.mem.st32(DATA, 0x7F80_0001);
        f.ok("d9 00"); // FLD m32
        assertEquals(IE, sw() & 0x3F);
        assertEquals(0xC000_0100_0000_0000L, mant(0));
        f.ok("d9 18"); // FSTP m32
        assertEquals(0x7FC0_0001, f.mem.ld32(DATA));
    }

    @Test void stackOverflowAndUnderflowSetStackFault() {
        for (int i = 0; i < 8; i++) f.ok("d9 e8");
        assertEquals(0, sw() & 0x7F);
        f.ok("d9 ee"); // FLDZ onto a full stack
        assertEquals(IE | SF, sw() & 0x7F);
        assertEquals(C1, sw() & C1);
        assertEquals(0xC000_0000_0000_0000L, mant(0));
        assertEquals(0xFFFF, se(0));
        f.ok("db e3");
        f.ok("d8 c1"); // FADD ST0, ST1 on an empty stack
        assertEquals(IE | SF, sw() & 0x7F);
        assertEquals(0, sw() & C1);
    }

    @Test void divisionByZeroGivesInfinity() {
        ldD(-1.0);
        f.ok("d9 ee");
        f.ok("de f9"); // FDIVP ST1, ST0: -1 / 0
        assertEquals(ZE, sw() & 0x3F);
        assertEquals(Double.NEGATIVE_INFINITY, stpD());
    }

    @Test void comparesSetConditionCodesAndEflags() {
        ldD(2.0);
        ldD(1.0); // ST0 = 1, ST1 = 2
        f.ok("db f1"); // FCOMI ST0, ST1
        assertEquals(Flags.CF, f.rflags());
        f.ok("d8 d1"); // FCOM ST1
        assertEquals(C0, sw() & (C0 | C2 | C3));
        f.ok("d9 c9"); // FXCH
        f.ok("db f1");
        assertEquals(0, f.rflags());
        f.ok("de d9"); // FCOMPP
        assertEquals(0xFFFF, f.c.ftw);
        ldD(Double.NaN);
        ldD(1.0);
        f.ok("db e9"); // FUCOMI: QNaN does not signal
        assertEquals(Flags.ZF | Flags.PF | Flags.CF, f.rflags());
        assertEquals(0, sw() & IE);
        f.ok("db f1"); // FCOMI signals
        assertEquals(IE, sw() & IE);
        f.ok("d9 e4"); // FTST: 1 > 0
        assertEquals(0, sw() & (C0 | C2 | C3));
    }

    @Test void fxamClassifies() {
        f.ok("d9 e5");
        assertEquals(C3 | C0, sw() & (C0 | C2 | C3)); // empty
        ldD(-0.0);
        f.ok("d9 e5");
        assertEquals(C3 | C1, sw() & (C0 | C1 | C2 | C3));
        ldD(Double.NEGATIVE_INFINITY);
        f.ok("d9 e5");
        assertEquals(C2 | C0 | C1, sw() & (C0 | C1 | C2 | C3));
        ld80(0x4000_0000_0000_0000L, 0);
        f.ok("d9 e5");
        assertEquals(C3 | C2, sw() & (C0 | C1 | C2 | C3));
        ldD(5.0);
        f.ok("d9 e5");
        assertEquals(C2, sw() & (C0 | C1 | C2 | C3));
    }

    @Test void sqrtRoundScaleAndRemainder() {
        ldD(2.0);
        f.ok("d9 fa"); // FSQRT
        assertEquals(0xB504_F333_F9DE_6484L, mant(0));
        assertEquals(0x3FFF, se(0));
        f.ok("db e3");
        ldD(2.5);
        f.ok("d9 fc"); // FRNDINT
        assertEquals(2.0, f.c.st[X87.phys(f.c, 0)]);
        f.ok("db e3");
        ldD(3.7);
        ldD(1.5);
        f.ok("d9 fd"); // FSCALE: 1.5 * 2^trunc(3.7)
        assertEquals(12.0, f.c.st[X87.phys(f.c, 0)]);
        f.ok("db e3");
        ldD(3.0);
        ldD(11.0);
        f.ok("d9 f8"); // FPREM: q = 3, r = 2
        assertEquals(2.0, f.c.st[X87.phys(f.c, 0)]);
        assertEquals(C3 | C1, sw() & (C0 | C1 | C2 | C3));
        f.ok("db e3");
        ldD(3.0);
        ldD(11.0);
        f.ok("d9 f5"); // FPREM1: q = 4, r = -1
        assertEquals(-1.0, f.c.st[X87.phys(f.c, 0)]);
        assertEquals(C0, sw() & (C0 | C1 | C2 | C3));
    }

    @Test void fcmovCopiesOnCondition() {
        ldD(7.0);
        ldD(1.0);
        f.c.setRflags(2);
        f.ok("da c1"); // FCMOVB: CF clear, no move
        assertEquals(1.0, f.c.st[X87.phys(f.c, 0)]);
        f.c.setRflags(2 | Flags.CF);
        f.ok("da c1");
        assertEquals(7.0, f.c.st[X87.phys(f.c, 0)]);
    }

    @Test void environmentAndSaveLayouts() {
        ldD(1.0);
        f.mem.st16(DATA + 200, 0x0A7F);
        f.c.r[Cpu.RBX] = DATA + 200;
        f.ok("d9 2b"); // FLDCW
        f.ok("d9 30"); // FNSTENV [rax]
        assertEquals(0xFFFF_0A7F, f.mem.ld32(DATA));
        assertEquals(0xFFFF_0000 | 7 << 11, f.mem.ld32(DATA + 4));
        assertEquals(0xFFFF_3FFF, f.mem.ld32(DATA + 8)); // ST0 (physical 7) valid
        assertEquals(0x3F, f.c.fcw & 0x3F); // all masked afterwards
        assertEquals(0x0500 << 16, f.mem.ld32(DATA + 16) & 0x07FF_0000); // FOP of FLD m64 (DD 00)
        assertEquals((int) FpuTestFixture.CODE, f.mem.ld32(DATA + 12)); // FIP
        f.c.fcw = 0x037F;
        f.ok("d9 20"); // FLDENV
        assertEquals(0x0A7F, f.c.fcw);
        f.ok("dd 30"); // FNSAVE
        assertEquals(Long.MIN_VALUE, f.mem.ld64(DATA + 28)); // ST0 = 1.0 after the 28-byte environment
        assertEquals(0x3FFF, f.mem.ld16(DATA + 36));
        assertEquals(0x037F, f.c.fcw); // reinitialised
        assertEquals(0xFFFF, f.c.ftw);
        f.ok("dd 20"); // FRSTOR
        assertEquals(7, f.c.fpuTop);
        assertEquals(1.0, f.c.st[X87.phys(f.c, 0)]);
        assertEquals(0x0A7F, f.c.fcw);
    }

    @Test void deviceNotAvailableAndPendingExceptions() {
        f.c.cr0 |= Cpu.CR0_TS;
        assertEquals(Exceptions.NM, f.exec("d9 e8"));
        assertEquals(Exceptions.NM, f.exec("9b")); // FWAIT: CR0.MP is set in the fixture
    }

    @Test void fwaitFaultsOnlyWithMpAndTs() {
        f.c.cr0 |= Cpu.CR0_TS;
        assertEquals(Exceptions.NM, f.exec("9b"));
        f.c.cr0 &= ~Cpu.CR0_MP;
        f.ok("9b");
        f.c.cr0 &= ~Cpu.CR0_TS;
        f.c.cr0 |= Cpu.CR0_EM;
        assertEquals(Exceptions.NM, f.exec("d9 e8")); // EM: every x87 instruction
    }

    @Test void unmaskedExceptionIsPendingUntilTheNextWaitingInstruction() {
        f.mem.st16(DATA, 0x037B); // ZM clear
        f.ok("d9 28");
        f.ok("d9 e8");
        f.ok("d9 ee");
        f.ok("de f9"); // 1 / 0 with ZE unmasked: no result, ES set
        assertEquals(ES | ZE, sw() & (ES | ZE));
        assertEquals(0x8000, sw() & 0x8000);
        assertEquals(6, f.c.fpuTop); // not popped
        assertEquals(Exceptions.MF, f.exec("d9 e8"));
        assertEquals(Exceptions.MF, f.exec("9b"));
        f.ok("df e0"); // FNSTSW does not wait
        f.ok("db e2"); // FNCLEX
        f.ok("d9 e8");
    }

    @Test void fldcwFldenvAndFrstorWaitForAPendingExceptionButTheFnStoresDoNot() {
        f.c.r[Cpu.RAX] = DATA;
        f.ok("dd 30"); // FNSAVE an image of the initial state at DATA (28-byte environment + registers)
        f.mem.st16(DATA + 200, 0x037F);
        f.c.r[Cpu.RBX] = DATA + 200;
        f.c.fcw = 0x037B; // ZE unmasked and flagged: pending
        f.c.fsw = ZE | ES | 0x8000;
        assertEquals(Exceptions.MF, f.exec("d9 2b")); // FLDCW
        assertEquals(Exceptions.MF, f.exec("d9 20")); // FLDENV
        assertEquals(Exceptions.MF, f.exec("dd 20")); // FRSTOR
        assertEquals(0x037B, f.c.fcw);                // nothing loaded
        f.ok("d9 3b");                                // FNSTCW does not wait
        f.ok("d9 30");                                // FNSTENV does not wait, and masks everything:
        assertEquals(0x3F, f.c.fcw & 0x3F);
        assertEquals(0, sw() & (ES | 0x8000));        // nothing pending any more: ES and B clear
        assertEquals(ZE, sw() & ZE);                  // the flag itself stays
        f.ok("d9 2b");                                // FLDCW now runs
    }

    @Test void fcmovWithAnEmptyOperandIsAStackUnderflowEvenWhenTheConditionFails() {
        ldD(1.0);
        f.c.setRflags(2); // CF clear: FCMOVB would not move
        f.ok("da c1"); // ST1 is empty
        assertEquals(IE | SF, sw() & 0x7F);
        assertEquals(0xC000_0000_0000_0000L, mant(0));
        f.ok("db e2");
        ldD(2.0);
        ldD(3.0);
        f.c.fsw |= C1;
        f.ok("da c1"); // no move, and C1 untouched
        assertEquals(C1, sw() & C1);
        assertEquals(3.0, f.c.st[X87.phys(f.c, 0)]);
    }

    @Test void fxtractSplitsExponentAndSignificand() {
        ldD(-12.0);
        f.ok("d9 f4");
        assertEquals(-1.5, f.c.st[X87.phys(f.c, 0)]);
        assertEquals(3.0, f.c.st[X87.phys(f.c, 1)]);
        f.ok("db e3");
        ldD(0.0);
        f.ok("d9 f4");
        assertEquals(ZE, sw() & 0x3F);
        assertEquals(Double.NEGATIVE_INFINITY, f.c.st[X87.phys(f.c, 1)]);
    }

    // Unmasked responses, as observed on the AMD host through the oracle (-Doracle.unmasked=true).

    @Test void aComparisonWithAnUnmaskedInvalidOperandStillSetsUnorderedButDoesNotPop() {
        ldD(1.0);
        ldD(Double.NaN);          // ST0 = QNaN, ST1 = 1.0
        f.c.fcw = 0x037E;         // IM unmasked
        f.c.fsw |= C1;
        f.ok("d8 d9");            // FCOMP ST1: a QNaN is invalid for FCOM
        assertEquals(IE | ES | 0x8000 | C3 | C2 | C0, sw() & (0x3F | ES | 0x8000 | C0 | C1 | C2 | C3));
        assertEquals(6, f.c.fpuTop); // not popped
        f.ok("db e2");            // FNCLEX
        f.c.setRflags(2 | Flags.OF);
        f.ok("db f1");            // FCOMI ST1: ZF, PF, CF set, OF cleared
        assertEquals(Flags.ZF | Flags.PF | Flags.CF,
                f.c.getRflags() & (Flags.ZF | Flags.PF | Flags.CF
                        | Flags.OF));
    }

    @Test void anUnmaskedDenormalOperandReportsNoRoundingFlags() {
        ldD(1.0 / 3);
        f.c.fcw = 0x037D;                 // DM unmasked
        f.mem.st64(DATA, 1);              // the smallest denormal double
        f.ok("dc 08");                    // FMUL m64: DE, the product is not computed
        assertEquals(DE | ES, sw() & (0x3F | ES));
        assertEquals(0, sw() & C1);
    }

    @Test void emmsReportsAPendingException() {
        f.c.fcw = 0x037E;
        f.c.fsw = IE | ES | 0x8000;
        assertEquals(Exceptions.MF, f.exec("0f 77"));
        f.ok("db e2");                    // FNCLEX
        f.ok("0f 77");
        assertEquals(0xFFFF, f.c.ftw);
    }
}
