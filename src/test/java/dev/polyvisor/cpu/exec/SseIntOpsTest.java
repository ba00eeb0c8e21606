package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class SseIntOpsTest {
    final FpuTestFixture f = new FpuTestFixture();

    @AfterEach void close() { f.close(); }

    @Test void paddbWrapsPerByte() {
        f.xmm(0, 0xFF01_7F80_0000_00FFL, 0x0102_0304_0506_0708L);
        f.xmm(1, 0x0101_0180_0000_0001L, 0x1010_1010_1010_1010L);
        f.ok("66 0f fc c1");
        assertEquals(0x0002_8000_0000_0000L, f.lo(0));
        assertEquals(0x1112_1314_1516_1718L, f.hi(0));
    }

    @Test void paddswAndPsubusbSaturate() {
        f.xmm(0, 0x7FF0_8010_0001_FFFFL, 0);
        f.xmm(1, 0x0020_8000_0001_0001L, 0);
        f.ok("66 0f ed c1"); // PADDSW
        assertEquals(0x7FFF_8000_0002_0000L, f.lo(0));
        f.xmm(2, 0x0510_FF00_0000_0000L, 0);
        f.xmm(3, 0x0620_0101_0000_0000L, 0);
        f.ok("66 0f d8 d3"); // PSUBUSB xmm2, xmm3
        assertEquals(0x0000_FE00_0000_0000L, f.lo(2));
    }

    @Test void pcmpeqbAndPmovmskbFindAZeroByte() {
        f.xmm(0, 0x6867_6665_0064_6362L, 0x4141_4141_4141_4100L);
        f.ok("66 0f ef c9"); // PXOR xmm1, xmm1
        f.ok("66 0f 74 c8"); // PCMPEQB xmm1, xmm0
        assertEquals(0x0000_0000_FF00_0000L, f.lo(1));
        f.ok("66 0f d7 c1"); // PMOVMSKB eax, xmm1
        assertEquals(0x0108, f.c.r[Cpu.RAX]);
    }

    @Test void pcmpgtIsSigned() {
        f.xmm(0, 0x0000_0001_FFFF_FFFFL, 0x8000_0000_7FFF_FFFFL);
        f.xmm(1, 0x0000_0000_0000_0000L, 0x7FFF_FFFF_8000_0000L);
        f.ok("66 0f 66 c1"); // PCMPGTD
        assertEquals(0xFFFF_FFFF_0000_0000L, f.lo(0));
        assertEquals(0x0000_0000_FFFF_FFFFL, f.hi(0));
    }

    @Test void unpackAndPack() {
        f.xmm(0, 0x0706_0504_0302_0100L, 0x0F0E_0D0C_0B0A_0908L);
        f.xmm(1, 0x1716_1514_1312_1110L, 0x1F1E_1D1C_1B1A_1918L);
        f.xmm(2, f.lo(0), f.hi(0));
        f.ok("66 0f 60 c1"); // PUNPCKLBW xmm0, xmm1
        assertEquals(0x1303_1202_1101_1000L, f.lo(0));
        assertEquals(0x1707_1606_1505_1404L, f.hi(0));
        f.ok("66 0f 6d d1"); // PUNPCKHQDQ xmm2, xmm1
        assertEquals(0x0F0E_0D0C_0B0A_0908L, f.lo(2));
        assertEquals(0x1F1E_1D1C_1B1A_1918L, f.hi(2));
        f.xmm(3, 0x0100_FFFF_8000_007FL, 0x0080_0000_7FFF_0001L);
        f.xmm(4, 0, 0);
        f.ok("66 0f 67 dc"); // PACKUSWB xmm3, xmm4
        assertEquals(0x80_00_FF_01_FF_00_00_7FL, f.lo(3));
        assertEquals(0, f.hi(3));
        f.xmm(5, 0x0100_FFFF_8000_007FL, 0x0080_0000_7FFF_0001L);
        f.ok("66 0f 63 ed"); // PACKSSWB xmm5, xmm5
        assertEquals(0x7F_00_7F_01_7F_FF_80_7FL, f.lo(5));
        assertEquals(f.lo(5), f.hi(5));
    }

    @Test void shiftsByImmediateAndByRegister() {
        f.xmm(0, 0x8000_4000_0001_FFFFL, 0x1234_5678_9ABC_DEF0L);
        f.xmm(1, f.lo(0), f.hi(0));
        f.ok("66 0f 71 e0 04"); // PSRAW xmm0, 4
        assertEquals(0xF800_0400_0000_FFFFL, f.lo(0));
        f.ok("66 0f 71 f1 11"); // PSLLW xmm1, 17 -> zero
        assertEquals(0, f.lo(1));
        assertEquals(0, f.hi(1));
        f.xmm(2, 0x1122_3344_5566_7788L, 0x99AA_BBCC_DDEE_FF00L);
        f.ok("66 0f 73 da 03"); // PSRLDQ xmm2, 3
        assertEquals(0xEEFF_0011_2233_4455L, f.lo(2));
        assertEquals(0x0000_0099_AABB_CCDDL, f.hi(2));
        f.ok("66 0f 73 fa 10"); // PSLLDQ xmm2, 16 -> zero
        assertEquals(0, f.lo(2) | f.hi(2));
        f.xmm(3, 0xFFFF_FFFF_8000_0000L, 0);
        f.xmm(4, 33, 0);
        f.ok("66 0f e2 dc"); // PSRAD xmm3, xmm4 (count 33 -> sign fill)
        assertEquals(0xFFFF_FFFF_FFFF_FFFFL, f.lo(3));
        f.xmm(5, 0x8000_0000_0000_0001L, 1);
        f.xmm(6, 1, 0xFFFF);
        f.ok("66 0f d3 ee"); // PSRLQ xmm5, xmm6 (count = low quadword only)
        assertEquals(0x4000_0000_0000_0000L, f.lo(5));
        assertEquals(0, f.hi(5));
    }

    @Test void pmaddwdSumsSignedProducts() {
        f.xmm(0, 0x0003_FFFF_0002_0001L, 0);
        f.xmm(1, 0x0005_FFFF_FFFE_0004L, 0);
        f.ok("66 0f f5 c1"); // dword0 = 1*4 + 2*(-2) = 0; dword1 = (-1)(-1) + 3*5 = 16
        assertEquals(0x0000_0010_0000_0000L, f.lo(0));
    }

    @Test void pmaddwdOverflowWrapsLikeHardware() {
        f.xmm(0, 0x8000_8000L, 0);
        f.xmm(1, 0x8000_8000L, 0);
        f.ok("66 0f f5 c1");
        assertEquals(0x8000_0000L, f.lo(0));
    }

    @Test void pmuludqPmulhwPsadbwPavgb() {
        f.xmm(0, 0x1234_5678_FFFF_FFFFL, 0x0000_0000_0000_0002L);
        f.xmm(1, 0x9999_9999_FFFF_FFFFL, 0x0000_0000_8000_0000L);
        f.ok("66 0f f4 c1"); // PMULUDQ
        assertEquals(0xFFFF_FFFE_0000_0001L, f.lo(0));
        assertEquals(0x1_0000_0000L, f.hi(0));
        f.xmm(2, 0x8000_7FFF_FFFF_0100L, 0);
        f.xmm(3, 0x8000_7FFF_0002_0100L, 0);
        f.ok("66 0f e5 d3"); // PMULHW
        assertEquals(0x4000_3FFF_FFFF_0001L, f.lo(2));
        f.xmm(4, 0x00FF_0000_0000_0010L, 0x0101_0101_0101_0101L);
        f.xmm(5, 0xFF00_0000_0000_0001L, 0x0000_0000_0000_0000L);
        f.ok("66 0f f6 e5"); // PSADBW: 255+255+15 = 525, 8
        assertEquals(525, f.lo(4));
        assertEquals(8, f.hi(4));
        f.xmm(6, 0x00FF_0102L, 0);
        f.xmm(7, 0x01FF_0203L, 0);
        f.ok("66 0f e0 f7"); // PAVGB
        assertEquals(0x01FF_0203L, f.lo(6));
    }

    @Test void minMaxSignedAndUnsigned() {
        f.xmm(0, 0x80FF_0102L, 0);
        f.xmm(1, 0x7F01_0201L, 0);
        f.xmm(2, f.lo(0), 0);
        f.ok("66 0f da c1"); // PMINUB
        assertEquals(0x7F01_0101L, f.lo(0));
        f.ok("66 0f ee d1"); // PMAXSW words: 0x80FF vs 0x7F01 -> 7F01; 0x0102 vs 0x0201 -> 0201
        assertEquals(0x7F01_0201L, f.lo(2));
    }

    @Test void memoryOperandMustBeAligned() {
        f.mem.st64(FpuTestFixture.DATA, 0x0101_0101_0101_0101L);
        f.mem.st64(FpuTestFixture.DATA + 8, 0x0202_0202_0202_0202L);
        f.c.r[Cpu.RAX] = FpuTestFixture.DATA;
        f.xmm(0, 1, 2);
        f.ok("66 0f fe 00"); // PADDD xmm0, [rax]
        assertEquals(0x0101_0101_0101_0102L, f.lo(0));
        assertEquals(0x0202_0202_0202_0204L, f.hi(0));
        f.c.r[Cpu.RAX] = FpuTestFixture.DATA + 4;
        assertEquals(Exceptions.GP, f.exec("66 0f fe 00"));
        assertEquals(0, f.lastError);
    }

    @Test void theNpFormIsTheMmxFormOfTheSameLaneArithmetic() {
        long a = 0xFF01_7F80_0000_00FFL, b = 0x0101_0180_0000_0001L;
        f.xmm(0, a, 0);
        f.xmm(1, b, 0);
        f.ok("66 0f ec c1"); // PADDSB xmm0, xmm1
        f.c.stMant[0] = a;
        f.c.stMant[1] = b;
        f.ok("0f ec c1"); // PADDSB mm0, mm1
        assertEquals(0x0002_7F80_0000_0000L, f.c.stMant[0]);
        assertEquals(f.lo(0), f.c.stMant[0]);
    }

    @Test void sseRequiresOsfxsrAndClearEm() {
        f.c.cr4 &= ~Cpu.CR4_OSFXSR;
        assertEquals(Exceptions.UD, f.exec("66 0f ef c0"));
        f.c.cr4 |= Cpu.CR4_OSFXSR;
        f.c.cr0 |= Cpu.CR0_EM;
        assertEquals(Exceptions.UD, f.exec("66 0f ef c0"));
        f.c.cr0 &= ~Cpu.CR0_EM;
        f.c.cr0 |= Cpu.CR0_TS;
        f.xmm(0, 5, 6);
        assertEquals(Exceptions.NM, f.exec("66 0f ef c0"));
        assertEquals(5, f.lo(0));
        f.c.cr0 &= ~Cpu.CR0_TS;
        f.ok("66 0f ef c0");
        assertEquals(0, f.lo(0));
    }

    @Test void swarLaneOperationsAgreeWithElementwiseDefinitions() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        long[] h = {SseIntOps.H8, SseIntOps.H16, SseIntOps.H32};
        for (int i = 0; i < 20000; i++) {
            long a = r.nextLong(), b = r.nextInt(4) == 0 ? a ^ (0xFFL << (8 * r.nextInt(8))) : r.nextLong();
            for (int k = 0; k < 3; k++) {
                int bits = 8 << k;
                assertEquals(SseIntOps.lanes(a, b, bits, Long::sum), SseIntOps.swarAdd(a, b, h[k]));
                assertEquals(SseIntOps.lanes(a, b, bits, (x, y) -> x - y), SseIntOps.swarSub(a, b, h[k]));
                assertEquals(SseIntOps.lanes(a, b, bits, (x, y) -> x == y ? -1 : 0), SseIntOps.swarEq(a, b, h[k], bits));
            }
            assertEquals(SseIntOps.lanes(a, b, 8, Math::min), SseIntOps.minub(a, b));
            assertEquals(SseIntOps.lanes(a, b, 8, Math::max), SseIntOps.maxub(a, b));
        }
    }
}
