package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.exec.FpuTestFixture.DATA;
import static org.junit.jupiter.api.Assertions.*;

class SseMoveOpsTest {
    final FpuTestFixture f = new FpuTestFixture();

    @AfterEach void close() { f.close(); }

    @Test void movdquLoadsUnalignedAndMovdqaFaultsWhenMisaligned() {
        for (int i = 0; i < 32; i++) f.mem.st8(DATA + i, i);
        f.c.r[Cpu.RAX] = DATA + 1;
        f.ok("f3 0f 6f 00");
        assertEquals(0x0807_0605_0403_0201L, f.lo(0));
        assertEquals(0x100F_0E0D_0C0B_0A09L, f.hi(0));
        f.xmm(1, 7, 7);
        assertEquals(Exceptions.GP, f.exec("66 0f 6f 08"));
        assertEquals(7, f.lo(1));
        assertEquals(Exceptions.GP, f.exec("0f 28 08")); // MOVAPS
        f.c.r[Cpu.RAX] = DATA + 16;
        f.ok("66 0f 6f 08");
        assertEquals(0x1716_1514_1312_1110L, f.lo(1));
    }

    @Test void alignedStoreChecksAlignmentAndPageCrossingStoreIsAtomic() {
        f.xmm(2, 0x1111_1111_1111_1111L, 0x2222_2222_2222_2222L);
        f.c.r[Cpu.RAX] = DATA + 8;
        assertEquals(Exceptions.GP, f.exec("66 0f 7f 10")); // MOVDQA [rax], xmm2
        f.ok("f3 0f 7f 10"); // MOVDQU
        assertEquals(0x1111_1111_1111_1111L, f.mem.ld64(DATA + 8));
        assertEquals(0x2222_2222_2222_2222L, f.mem.ld64(DATA + 16));
        long edge = FpuTestFixture.UNMAPPED - 8; // the last 8 mapped bytes; the next page is not present
        f.c.r[Cpu.RAX] = edge;
        assertEquals(Exceptions.PF, f.exec("f3 0f 7f 10"));
        assertEquals(0, f.mem.ld64(edge));
    }

    @Test void movssAndMovsdMergeFromRegistersAndZeroFromMemory() {
        f.xmm(0, 0xAAAA_AAAA_BBBB_BBBBL, 0xCCCC_CCCC_CCCC_CCCCL);
        f.xmm(1, 0x1111_1111_2222_2222L, 0x3333_3333_3333_3333L);
        f.ok("f3 0f 10 c1"); // MOVSS xmm0, xmm1
        assertEquals(0xAAAA_AAAA_2222_2222L, f.lo(0));
        assertEquals(0xCCCC_CCCC_CCCC_CCCCL, f.hi(0));
        f.mem.st64(DATA, 0x5555_5555_6666_6666L);
        f.c.r[Cpu.RAX] = DATA;
        f.ok("f3 0f 10 00"); // MOVSS xmm0, [rax]
        assertEquals(0x6666_6666L, f.lo(0));
        assertEquals(0, f.hi(0));
        f.ok("f2 0f 10 08"); // MOVSD xmm1, [rax]
        assertEquals(0x5555_5555_6666_6666L, f.lo(1));
        assertEquals(0, f.hi(1));
        f.xmm(3, 0x77, 0x88);
        f.ok("f2 0f 11 18"); // MOVSD [rax], xmm3
        assertEquals(0x77, f.mem.ld64(DATA));
    }

    @Test void highLowQuadwordMoves() {
        f.xmm(0, 1, 2);
        f.xmm(1, 3, 4);
        f.ok("0f 12 c1"); // MOVHLPS xmm0, xmm1
        assertEquals(4, f.lo(0));
        assertEquals(2, f.hi(0));
        f.ok("0f 16 c1"); // MOVLHPS xmm0, xmm1
        assertEquals(3, f.hi(0));
        f.c.r[Cpu.RAX] = DATA;
        f.ok("0f 17 08"); // MOVHPS [rax], xmm1
        assertEquals(4, f.mem.ld64(DATA));
        f.ok("66 0f 12 00"); // MOVLPD xmm0, [rax]
        assertEquals(4, f.lo(0));
        assertEquals(3, f.hi(0));
        assertEquals(Exceptions.UD, f.exec("66 0f 12 c1")); // MOVLPD has no register form
    }

    @Test void movdMovqBetweenGeneralAndXmmRegisters() {
        f.c.r[Cpu.RAX] = 0x1234_5678_9ABC_DEF0L;
        f.xmm(0, -1, -1);
        f.ok("66 0f 6e c0"); // MOVD xmm0, eax
        assertEquals(0x9ABC_DEF0L, f.lo(0));
        assertEquals(0, f.hi(0));
        f.ok("66 48 0f 6e c0"); // MOVQ xmm0, rax
        assertEquals(0x1234_5678_9ABC_DEF0L, f.lo(0));
        f.ok("66 0f 7e c1"); // MOVD ecx, xmm0
        assertEquals(0x9ABC_DEF0L, f.c.r[Cpu.RCX]);
        f.ok("66 48 0f 7e c2"); // MOVQ rdx, xmm0
        assertEquals(0x1234_5678_9ABC_DEF0L, f.c.r[Cpu.RDX]);
        f.xmm(1, 5, 6);
        f.ok("f3 0f 7e c8"); // MOVQ xmm1, xmm0
        assertEquals(0x1234_5678_9ABC_DEF0L, f.lo(1));
        assertEquals(0, f.hi(1));
        f.xmm(2, 9, 9);
        f.ok("66 0f d6 c2"); // MOVQ xmm2, xmm0 (store form, register destination)
        assertEquals(0x1234_5678_9ABC_DEF0L, f.lo(2));
        assertEquals(0, f.hi(2));
    }

    @Test void shufflesAndInsertExtract() {
        f.xmm(0, 0x1111_1111_0000_0000L, 0x3333_3333_2222_2222L);
        f.ok("66 0f 70 c8 1b"); // PSHUFD xmm1, xmm0, 0x1B (reverse)
        assertEquals(0x2222_2222_3333_3333L, f.lo(1));
        assertEquals(0x0000_0000_1111_1111L, f.hi(1));
        f.xmm(2, 0x0003_0002_0001_0000L, 0x0007_0006_0005_0004L);
        f.ok("f2 0f 70 da 1b"); // PSHUFLW xmm3, xmm2, 0x1B
        assertEquals(0x0000_0001_0002_0003L, f.lo(3));
        assertEquals(0x0007_0006_0005_0004L, f.hi(3));
        f.c.r[Cpu.RAX] = 0xABCD_1234L;
        f.ok("66 0f c4 d0 05"); // PINSRW xmm2, eax, 5
        assertEquals(0x0007_0006_1234_0004L, f.hi(2));
        f.ok("66 0f c5 ca 05"); // PEXTRW ecx, xmm2, 5
        assertEquals(0x1234, f.c.r[Cpu.RCX]);
        f.xmm(4, 0x1111_1111_0000_0000L, 0x3333_3333_2222_2222L);
        f.xmm(5, 0x5555_5555_4444_4444L, 0x7777_7777_6666_6666L);
        f.ok("0f c6 e5 e4"); // SHUFPS xmm4, xmm5, 0b11_10_01_00
        assertEquals(0x1111_1111_0000_0000L, f.lo(4));
        assertEquals(0x7777_7777_6666_6666L, f.hi(4));
        f.ok("66 0f c6 e5 01"); // SHUFPD xmm4, xmm5, 1: lo = xmm4.hi, hi = xmm5.lo
        assertEquals(0x7777_7777_6666_6666L, f.lo(4));
        assertEquals(0x5555_5555_4444_4444L, f.hi(4));
        f.xmm(6, 0x1111_1111_0000_0000L, 0x3333_3333_2222_2222L);
        f.ok("0f 14 f5"); // UNPCKLPS xmm6, xmm5
        assertEquals(0x4444_4444_0000_0000L, f.lo(6));
        assertEquals(0x5555_5555_1111_1111L, f.hi(6));
    }

    @Test void movmskAndLogic() {
        f.xmm(0, 0x8000_0000_7FFF_FFFFL, 0xFFFF_FFFF_0000_0000L);
        f.ok("0f 50 c0"); // MOVMSKPS eax, xmm0
        assertEquals(0b1010, f.c.r[Cpu.RAX]);
        f.ok("66 0f 50 c8"); // MOVMSKPD ecx, xmm0
        assertEquals(0b11, f.c.r[Cpu.RCX]);
        f.xmm(1, 0x7FFF_FFFF_FFFF_FFFFL, 0x7FFF_FFFF_FFFF_FFFFL);
        f.ok("66 0f 54 c1"); // ANDPD: clear sign bits
        assertEquals(0x0000_0000_7FFF_FFFFL, f.lo(0));
        assertEquals(0x7FFF_FFFF_0000_0000L, f.hi(0));
        f.ok("0f 55 c1"); // ANDNPS: ~xmm0 & xmm1
        assertEquals(0x7FFF_FFFF_8000_0000L, f.lo(0));
    }

    @Test void maskmovdquStoresSelectedBytesAtRdi() {
        f.mem.st64(DATA, 0x1111_1111_1111_1111L);
        f.mem.st64(DATA + 8, 0x1111_1111_1111_1111L);
        f.c.r[Cpu.RDI] = DATA;
        f.xmm(0, 0x0807_0605_0403_0201L, 0x100F_0E0D_0C0B_0A09L);
        f.xmm(1, 0x0000_0000_0000_80FFL, 0x8000_0000_0000_0000L);
        f.ok("66 0f f7 c1");
        assertEquals(0x1111_1111_1111_0201L, f.mem.ld64(DATA));
        assertEquals(0x1011_1111_1111_1111L, f.mem.ld64(DATA + 8));
    }

    @Test void movntiStoresAGeneralRegister() {
        f.c.r[Cpu.RAX] = DATA;
        f.c.r[Cpu.RCX] = 0x1122_3344_5566_7788L;
        f.ok("48 0f c3 08");
        assertEquals(0x1122_3344_5566_7788L, f.mem.ld64(DATA));
    }
}
