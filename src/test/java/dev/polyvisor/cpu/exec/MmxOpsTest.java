package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.exec.FpuTestFixture.DATA;
import static dev.polyvisor.cpu.exec.FpuTestFixture.UNMAPPED;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The MMX state rules the host-CPU oracle cannot reach (it runs at CPL 3 with CR0 fixed by Linux): the
 * aliasing of MM0-7 onto the x87 registers as FXSAVE, FNSAVE and the x87 loads see it, the TOP/tag/exponent
 * side effects (SDM Vol. 3A, 12.2, Table 12-2), the CR0.EM/TS/NE exception conditions (Table 12-1) and
 * precise faults; plus a few worked lane results.
 */
class MmxOpsTest {
    final FpuTestFixture f = new FpuTestFixture();

    @AfterEach void close() { f.close(); }

    /** x87 state as a program left it: TOP 5, R5 = 1.0 valid, R6 = 0 zero, the rest empty. */
    private void x87InUse() {
        f.c.fpuTop = 5;
        f.c.ftw = 0xFFFF;
        X87.setPhys(f.c, 5, 0x8000_0000_0000_0000L, 0x3FFF);
        X87.setTag(f.c, 5, X87.TAG_VALID);
        X87.setPhys(f.c, 6, 0, 0);
        X87.setTag(f.c, 6, X87.TAG_ZERO);
        for (int i = 0; i < 8; i++) if (i != 5 && i != 6) X87.setPhys(f.c, i, 0x1111L * i, 0x4000 + i);
    }

    @Test void movqLoadWritesTheSignificandSetsExponentOnesTopZeroAndAllTagsValid() {
        x87InUse();
        f.mem.st64(DATA, 0x8070_6050_4030_2010L);
        f.ok("0f 6f 1c 25 00 00 02 00"); // MOVQ mm3, [0x20000]
        assertEquals(0x8070_6050_4030_2010L, f.c.stMant[3]);
        assertEquals(0xFFFF, f.c.stExp[3]);
        assertEquals(0x4002, f.c.stExp[2], "registers the instruction does not write keep their exponent");
        assertEquals(0, f.c.fpuTop);
        assertEquals(0, f.c.ftw, "every tag valid (00b)");
        assertEquals(0xFF, X87.abridgedTag(f.c));
    }

    @Test void movqStoreReadsTheRegisterAndStillSwitchesToMmxState() {
        x87InUse();
        f.ok("0f 7f 2c 25 00 00 02 00"); // MOVQ [0x20000], mm5
        assertEquals(0x8000_0000_0000_0000L, f.mem.ld64(DATA), "MM5 is R5's significand: the x87 1.0");
        assertEquals(0x3FFF, f.c.stExp[5], "a read leaves the exponent alone");
        assertEquals(0, f.c.fpuTop);
        assertEquals(0, f.c.ftw);
    }

    @Test void mmRegistersArePhysicalNotStackRelative() {
        f.ok("db e3"); // FNINIT
        f.ok("d9 e8"); // FLD1: TOP = 7, R7 = 1.0
        assertEquals(7, f.c.fpuTop);
        f.ok("48 0f 7e f8"); // MOVQ rax, mm7
        assertEquals(0x8000_0000_0000_0000L, f.c.r[Cpu.RAX]);
        f.ok("48 0f 7e c1"); // MOVQ rcx, mm0 (R0: untouched by FLD1)
        assertEquals(0, f.c.fpuTop);
    }

    @Test void emmsEmptiesEveryTagAndZeroesTop() {
        x87InUse();
        f.ok("0f 77");
        assertEquals(0xFFFF, f.c.ftw);
        assertEquals(0, f.c.fpuTop);
        assertEquals(0x3FFF, f.c.stExp[5], "EMMS leaves the registers' contents alone");
    }

    @Test void fxsaveSeesTheMmxValuesAndFxrstorFeedsThemBack() {
        f.c.r[Cpu.RAX] = 0x0123_4567_89AB_CDEFL;
        f.ok("48 0f 6e d0"); // MOVQ mm2, rax
        f.ok("48 0f ae 04 25 00 00 02 00"); // FXSAVE64 [0x20000]
        assertEquals(0xFF, f.mem.ld8(DATA + 4), "abridged tag: all registers in use");
        assertEquals(0, f.mem.ld16(DATA + 2) >> 11 & 7, "TOP 0");
        assertEquals(0x0123_4567_89AB_CDEFL, f.mem.ld64(DATA + 32 + 16 * 2), "ST(2) = R2 = MM2 with TOP 0");
        assertEquals(0xFFFF, f.mem.ld16(DATA + 40 + 16 * 2));
        f.mem.st64(DATA + 32 + 16 * 4, 0x5555_AAAA_5555_AAAAL);
        f.ok("48 0f ae 0c 25 00 00 02 00"); // FXRSTOR64 [0x20000]
        f.ok("48 0f 7e e3"); // MOVQ rbx, mm4
        assertEquals(0x5555_AAAA_5555_AAAAL, f.c.r[Cpu.RBX]);
    }

    @Test void fnsaveStoresMmxRegistersAsSpecialAndReinitialises() {
        f.c.r[Cpu.RAX] = 0x0000_0000_0000_0042L;
        f.ok("0f 6e c8"); // MOVD mm1, eax
        assertEquals(0x42, f.c.stMant[1]);
        f.ok("dd 34 25 00 00 02 00"); // FNSAVE [0x20000] (32-bit layout: registers at 28 + 10*i)
        assertEquals(0x42, f.mem.ld64(DATA + 28 + 10));
        assertEquals(0xFFFF, f.mem.ld16(DATA + 28 + 18));
        // Tag word: recomputed from the contents; an exponent of all ones is "special" (10b) for R1.
        assertEquals(X87.TAG_SPECIAL, f.mem.ld16(DATA + 8) >> 2 & 3);
        assertEquals(0xFFFF, f.c.ftw, "FNSAVE reinitialises the FPU");
    }

    @Test void cr0EmIsUdBeforeTsWhichIsNm() {
        x87InUse();
        f.c.cr0 |= Cpu.CR0_EM | Cpu.CR0_TS;
        assertEquals(Exceptions.UD, f.exec("0f fc c1")); // PADDB mm0, mm1
        f.c.cr0 &= ~Cpu.CR0_EM;
        assertEquals(Exceptions.NM, f.exec("0f fc c1"));
        assertEquals(Exceptions.NM, f.exec("0f 77")); // EMMS
        assertEquals(5, f.c.fpuTop, "a faulting MMX instruction leaves the x87 state alone");
        f.c.cr0 &= ~Cpu.CR0_TS;
        f.ok("0f fc c1");
    }

    @Test void pendingUnmaskedX87ExceptionIsMfWithCr0Ne() {
        x87InUse();
        f.c.fsw |= X87.ES | X87.B | 1; // IE flagged, unmasked: pending
        assertEquals(Exceptions.MF, f.exec("0f 7f 04 25 00 00 02 00")); // MOVQ [0x20000], mm0
        assertEquals(5, f.c.fpuTop);
        f.c.fsw = 0;
        f.ok("0f 7f 04 25 00 00 02 00");
    }

    @Test void withCr0NeClearAPendingExceptionIsMfOnlyBehindKvmsForcedEmulationPrefix() {
        // NE clear: the CPU would signal FERR#, unconnected here, and go on; KVM's emulator injects #MF
        // whatever NE says (arch/x86/kvm/emulate.c flush_pending_x87_faults).
        x87InUse();
        f.c.cr0 &= ~Cpu.CR0_NE;
        f.c.fsw |= X87.ES | X87.B | 1;
        f.ok("0f 7f 04 25 00 00 02 00");
        x87InUse();
        f.c.forceEmulationPrefix = true;
        assertEquals(Exceptions.MF, f.exec("0f 0b 6b 76 6d 0f 7f 04 25 00 00 02 00")); // FEP; MOVQ [0x20000], mm0
        assertFalse(f.c.forcedEmulation);
    }

    @Test void mmxFormsDoNotNeedOsfxsrButTheSse2BridgesDo() {
        f.c.cr4 &= ~Cpu.CR4_OSFXSR;
        f.ok("0f d5 c1"); // PMULLW mm0, mm1: MMX, no OSFXSR condition
        assertEquals(Exceptions.UD, f.exec("f3 0f d6 ca")); // MOVQ2DQ xmm1, mm2
        assertEquals(Exceptions.UD, f.exec("f2 0f d6 dc")); // MOVDQ2Q mm3, xmm4
    }

    @Test void movq2dqAndMovdq2qMoveTheLowQuadword() {
        f.c.stMant[2] = 0x1122_3344_5566_7788L;
        f.xmm(1, -1, -1);
        f.ok("f3 0f d6 ca"); // MOVQ2DQ xmm1, mm2
        assertEquals(0x1122_3344_5566_7788L, f.lo(1));
        assertEquals(0, f.hi(1));
        f.xmm(4, 0x0102_0304_0506_0708L, 0x7777L);
        f.ok("f2 0f d6 dc"); // MOVDQ2Q mm3, xmm4
        assertEquals(0x0102_0304_0506_0708L, f.c.stMant[3]);
        assertEquals(0xFFFF, f.c.stExp[3]);
        assertEquals(0, f.c.ftw);
    }

    @Test void rexBitsDoNotExtendMmxRegisterNumbers() {
        f.c.stMant[1] = 0xABCDL;
        f.ok("45 0f 6f c1"); // REX.RB MOVQ mm0, mm1 (not mm8/mm9)
        assertEquals(0xABCDL, f.c.stMant[0]);
        f.c.r[9] = 0x77;
        f.ok("41 0f 6e d1"); // REX.B MOVD mm2, r9d: REX.B does select the general register
        assertEquals(0x77, f.c.stMant[2]);
    }

    @Test void faultingLoadLeavesRegistersAndX87StateAsTheyWere() {
        x87InUse();
        assertEquals(Exceptions.PF, f.exec("0f 68 2c 25 fc ff 1f 00")); // PUNPCKHBW mm5, [UNMAPPED-4]: m64 crosses
        assertEquals(5, f.c.fpuTop);
        assertEquals(0x3FFF, f.c.stExp[5]);
        assertNotEquals(0, f.c.ftw);
        f.mem.st32(UNMAPPED - 4, 0x4433_2211);
        f.c.stMant[5] = 0x0000_0000_DDCC_BBAAL;
        f.ok("0f 60 2c 25 fc ff 1f 00"); // PUNPCKLBW mm5, [UNMAPPED-4]: reads only 32 bits
        assertEquals(0x44DD_33CC_22BB_11AAL, f.c.stMant[5]);
    }

    @Test void laneArithmetic() {
        f.c.stMant[0] = 0xFF01_7F80_0000_00FFL;
        f.c.stMant[1] = 0x0101_0180_0000_0001L;
        f.ok("0f dc c1"); // PADDUSB mm0, mm1
        assertEquals(0xFF02_80FF_0000_00FFL, f.c.stMant[0]);
        f.c.stMant[0] = 0x0001_0002_FFFF_7FFFL;
        f.c.stMant[1] = 0x0003_0004_FFFF_7FFFL;
        f.ok("0f f5 c1"); // PMADDWD mm0, mm1: (1*3 + 2*4), (1 + 0x7FFF^2)
        assertEquals(0x0000_000B_3FFF_0002L, f.c.stMant[0]);
        f.c.stMant[1] = 0x4444_3333_2222_1111L;
        f.ok("0f 70 c1 1b"); // PSHUFW mm0, mm1, 0x1B: reversed words
        assertEquals(0x1111_2222_3333_4444L, f.c.stMant[0]);
        f.c.stMant[0] = 0x7FFF_8000_0100_FF00L;
        f.c.stMant[1] = 0x0000_0000_7FFF_FF80L;
        f.ok("0f 63 c1"); // PACKSSWB mm0, mm1: dst words -> low bytes, src words -> high bytes
        assertEquals(0x0000_7F80_7F80_7F80L, f.c.stMant[0]);
    }

    @Test void shiftsSaturateTheCount() {
        f.c.stMant[0] = 0x8000_7FFF_1234_F000L;
        f.ok("0f 71 e0 14"); // PSRAW mm0, 20: sign fill
        assertEquals(0xFFFF_0000_0000_FFFFL, f.c.stMant[0]);
        f.c.stMant[0] = -1;
        f.c.stMant[1] = 0x1_0000_0000L; // a 64-bit count: 2^32 is beyond 63
        f.ok("0f f3 c1"); // PSLLQ mm0, mm1
        assertEquals(0, f.c.stMant[0]);
        f.c.stMant[0] = 0x8000_0001_8000_0001L;
        f.ok("0f 72 d0 01"); // PSRLD mm0, 1
        assertEquals(0x4000_0000_4000_0000L, f.c.stMant[0]);
    }

    @Test void extractInsertAndByteMask() {
        f.c.stMant[1] = 0x8899_7766_5544_3322L;
        f.c.r[Cpu.RAX] = -1;
        f.ok("0f c5 c1 02"); // PEXTRW eax, mm1, 2
        assertEquals(0x7766, f.c.r[Cpu.RAX]);
        f.c.stMant[0] = 0;
        f.c.r[Cpu.RAX] = 0xABCD_1234;
        f.ok("0f c4 c0 07"); // PINSRW mm0, eax, 7 (index mod 4 = 3)
        assertEquals(0x1234_0000_0000_0000L, f.c.stMant[0]);
        f.c.stMant[1] = 0x80FF_007F_8001_0000L;
        f.ok("0f d7 c1"); // PMOVMSKB eax, mm1
        assertEquals(0b1100_1000, f.c.r[Cpu.RAX]);
    }

    @Test void maskmovqStoresOnlyTheSelectedBytesAtRdi() {
        f.mem.st64(DATA, 0xEEEE_EEEE_EEEE_EEEEL);
        f.c.r[Cpu.RDI] = DATA;
        f.c.stMant[0] = 0x0807_0605_0403_0201L;
        f.c.stMant[1] = 0x8000_0080_FF00_7F80L;
        f.ok("0f f7 c1"); // MASKMOVQ mm0, mm1
        assertEquals(0x08EE_EE05_04EE_EE01L, f.mem.ld64(DATA));
        assertEquals(0, f.c.ftw);
    }

    /** Measured on the AMD host (a user-mode probe under Linux): zero masks fault too, CR2 = second page's start. */
    @Test void maskmovqChecksTheWholeDestinationWhateverTheMaskAfterTheMmxTransition() {
        x87InUse();
        f.c.r[Cpu.RDI] = UNMAPPED - 4;
        f.mem.st32(UNMAPPED - 4, 0);
        f.c.stMant[0] = -1;
        f.c.stMant[1] = 0x0000_0000_8080_8080L; // only the bytes in the mapped page selected
        assertEquals(Exceptions.PF, f.exec("0f f7 c1"));
        assertEquals(UNMAPPED, f.c.cr2);
        assertEquals(0, f.mem.ld32(UNMAPPED - 4), "nothing written before the fault");
        assertEquals(0, f.c.fpuTop, "the transition to MMX state precedes the write check");
        assertEquals(0, f.c.ftw);
        f.c.stMant[1] = 0;
        f.c.r[Cpu.RDI] = UNMAPPED + 8;
        f.c.cr2 = 0;
        assertEquals(Exceptions.PF, f.exec("0f f7 c1"), "an all-zero mask still checks the destination");
        assertEquals(UNMAPPED + 8, f.c.cr2);
    }

    @Test void maskmovdquAndCrossingStoresReportTheSecondPagesFirstByte() {
        f.c.r[Cpu.RDI] = UNMAPPED - 8;
        f.xmm(1, 0, 0); // all-zero mask
        assertEquals(Exceptions.PF, f.exec("66 0f f7 c1")); // MASKMOVDQU xmm0, xmm1
        assertEquals(UNMAPPED, f.c.cr2);
        f.c.cr2 = 0;
        f.c.r[Cpu.RAX] = UNMAPPED - 6;
        assertEquals(Exceptions.PF, f.exec("0f 11 00")); // MOVUPS [rax], xmm0
        assertEquals(UNMAPPED, f.c.cr2);
    }

    @Test void cvtpi2psConvertsTwoDwordsAndSwitchesToMmxOnlyWithARegisterSource() {
        x87InUse();
        f.mem.st64(DATA, 0xFFFF_FFFF_0000_0003L); // -1, 3
        f.xmm(0, 0, 0x1234);
        f.ok("0f 2a 04 25 00 00 02 00"); // CVTPI2PS xmm0, [0x20000]
        assertEquals(0xBF80_0000_4040_0000L, f.lo(0));
        assertEquals(0x1234, f.hi(0), "the high quadword is kept");
        assertEquals(5, f.c.fpuTop, "a memory source is no MMX operation");
        f.c.fsw |= X87.ES | X87.B | 1;
        f.ok("66 0f 2a 04 25 00 00 02 00"); // CVTPI2PD xmm0, [0x20000]: a pending x87 exception is ignored
        assertEquals(Double.doubleToRawLongBits(3), f.lo(0));
        assertEquals(Double.doubleToRawLongBits(-1), f.hi(0));
        assertEquals(Exceptions.MF, f.exec("66 0f 2a c1")); // CVTPI2PD xmm0, mm1: #MF
        f.c.fsw = 0;
        f.c.stMant[1] = 0x0000_0010_FFFF_FFFEL; // 16, -2
        f.ok("66 0f 2a c1");
        assertEquals(Double.doubleToRawLongBits(-2), f.lo(0));
        assertEquals(Double.doubleToRawLongBits(16), f.hi(0));
        assertEquals(0, f.c.fpuTop);
        assertEquals(0, f.c.ftw);
    }

    @Test void cvtps2piRoundsPerMxcsrAndCvttps2piTruncates() {
        f.xmmF(1, 2.5f, -1.75f, 0, 0);
        f.ok("0f 2d c1"); // CVTPS2PI mm0, xmm1: round to nearest even
        assertEquals(0xFFFF_FFFE_0000_0002L, f.c.stMant[0]);
        assertEquals(0xFFFF, f.c.stExp[0]);
        f.ok("0f 2c c1"); // CVTTPS2PI mm0, xmm1
        assertEquals(0xFFFF_FFFF_0000_0002L, f.c.stMant[0]);
        f.xmmD(2, 1e10, Double.NaN);
        f.c.mxcsr = 0x1F80;
        f.ok("66 0f 2d c2"); // CVTPD2PI mm0, xmm2: out of range and NaN give the integer indefinite, IE
        assertEquals(0x8000_0000_8000_0000L, f.c.stMant[0]);
        assertEquals(1, f.c.mxcsr & 1);
    }

    @Test void cvtps2piUnmaskedInvalidFaultsAfterTheMmxTransitionWithoutWriting() {
        x87InUse();
        f.c.stMant[3] = 0x5555;
        f.xmmF(1, Float.NaN, 1, 0, 0);
        f.c.mxcsr = 0x1F80 & ~0x80; // IM clear
        assertEquals(Exceptions.XM, f.exec("0f 2d d9")); // CVTPS2PI mm3, xmm1
        assertEquals(0x5555, f.c.stMant[3]);
        assertEquals(0, f.c.fpuTop, "the transition is made before #XM (AMD host)");
        assertEquals(0, f.c.ftw);
    }

    @Test void cvtpd2piNeedsAnAlignedM128() {
        assertEquals(Exceptions.GP, f.exec("66 0f 2d 04 25 08 00 02 00")); // CVTPD2PI mm0, [0x20008]
        f.mem.st64(DATA, Double.doubleToRawLongBits(-7.5));
        f.mem.st64(DATA + 8, Double.doubleToRawLongBits(7.5));
        f.ok("66 0f 2c 04 25 00 00 02 00"); // CVTTPD2PI mm0, [0x20000]
        assertEquals(0x0000_0007_FFFF_FFF9L, f.c.stMant[0]);
    }
}
