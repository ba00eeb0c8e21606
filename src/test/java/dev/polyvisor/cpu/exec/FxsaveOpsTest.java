package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.exec.FpuTestFixture.DATA;
import static org.junit.jupiter.api.Assertions.*;

class FxsaveOpsTest {
    final FpuTestFixture f = new FpuTestFixture();

    @AfterEach void close() { f.close(); }

    private void fillState() {
        // IE unmasked and flagged: an x87 exception is pending (ES, B), so FXSAVE stores the pointers.
        f.c.fcw = 0x027E;
        f.c.fpuTop = 6;
        f.c.fsw = 0x80A1;
        f.c.ftw = 0x0FFF; // physical 6 and 7 valid, others empty
        f.c.fop = 0x1DD;
        f.c.fip = 0x1234_5678_9ABC_DEF0L;
        f.c.fdp = 0x0FED_CBA9_8765_4321L;
        f.c.mxcsr = 0x1FA0;
        X87.setPhys(f.c, 6, 0x8000_0000_0000_0000L, 0x3FFF); // ST0 = 1.0
        X87.setPhys(f.c, 7, 0xC90F_DAA2_2168_C235L, 0xC000); // ST1 = -pi
        for (int i = 0; i < 16; i++) f.xmm(i, 0x0101_0101_0101_0101L * i, ~(0x0101_0101_0101_0101L * i));
    }

    @Test void fxsave64ImageLayoutMatchesTable10_2() {
        fillState();
        f.c.r[Cpu.RAX] = DATA;
        for (int i = 0; i < 512; i++) f.mem.st8(DATA + i, 0xEE);
        f.ok("48 0f ae 00");
        assertEquals(0x027E, f.mem.ld16(DATA));
        assertEquals(0xB0A1, f.mem.ld16(DATA + 2)); // TOP=6 in bits 13:11
        assertEquals(0xC0, f.mem.ld8(DATA + 4));
        assertEquals(0, f.mem.ld8(DATA + 5));
        assertEquals(0x1DD, f.mem.ld16(DATA + 6));
        assertEquals(0x1234_5678_9ABC_DEF0L, f.mem.ld64(DATA + 8));
        assertEquals(0x0FED_CBA9_8765_4321L, f.mem.ld64(DATA + 16));
        assertEquals(0x1FA0, f.mem.ld32(DATA + 24));
        assertEquals(0xFFFF, f.mem.ld32(DATA + 28));
        assertEquals(0x8000_0000_0000_0000L, f.mem.ld64(DATA + 32)); // ST0
        assertEquals(0x3FFF, f.mem.ld16(DATA + 40));
        assertEquals(0xC90F_DAA2_2168_C235L, f.mem.ld64(DATA + 48)); // ST1
        assertEquals(0xC000, f.mem.ld16(DATA + 56));
        for (int i = 0; i < 8; i++) { // bytes 10-15 of every register slot are stored as zeros (as AMD does)
            assertEquals(0, f.mem.ld16(DATA + 42 + 16 * i));
            assertEquals(0, f.mem.ld32(DATA + 44 + 16 * i));
        }
        assertEquals(0xEEEE_EEEE_EEEE_EEEEL, f.mem.ld64(DATA + 416)); // reserved 416-463: untouched
        for (int i = 0; i < 16; i++) {
            assertEquals(0x0101_0101_0101_0101L * i, f.mem.ld64(DATA + 160 + 16 * i));
            assertEquals(~(0x0101_0101_0101_0101L * i), f.mem.ld64(DATA + 168 + 16 * i));
        }
        assertEquals(0xEEEE_EEEE_EEEE_EEEEL, f.mem.ld64(DATA + 464));
    }

    @Test void fxsaveLegacyFormatStores32BitPointersAndEightXmmRegisters() {
        fillState();
        f.protectedMode32();
        f.c.r[Cpu.RAX] = DATA;
        for (int i = 0; i < 512; i++) f.mem.st8(DATA + i, 0xEE);
        f.ok("0f ae 00");
        assertEquals(0x9ABC_DEF0, f.mem.ld32(DATA + 8));
        assertEquals(0, f.mem.ld32(DATA + 12));
        assertEquals(0x8765_4321, f.mem.ld32(DATA + 16));
        assertEquals(0, f.mem.ld32(DATA + 20));
        assertEquals(0x0707_0707_0707_0707L, f.mem.ld64(DATA + 160 + 16 * 7));
        assertEquals(0xEEEE_EEEE_EEEE_EEEEL, f.mem.ld64(DATA + 160 + 16 * 8));
    }

    @Test void fxrstorRoundTripsTheImage() {
        fillState();
        f.c.r[Cpu.RAX] = DATA;
        f.ok("48 0f ae 00");
        f.c.fcw = 0x37F; f.c.fsw = 0; f.c.fpuTop = 0; f.c.ftw = 0xFFFF; f.c.mxcsr = 0x1F80; f.c.fip = 0; f.c.fdp = 0;
        java.util.Arrays.fill(f.c.xmm, 0);
        java.util.Arrays.fill(f.c.stMant, 0);
        f.ok("48 0f ae 08");
        assertEquals(0x027E, f.c.fcw);
        assertEquals(6, f.c.fpuTop);
        assertEquals(0x80A1, f.c.fsw);
        assertEquals(0x0FFF, f.c.ftw); // both valid registers re-tagged VALID
        assertEquals(0x1FA0, f.c.mxcsr);
        assertEquals(0x1234_5678_9ABC_DEF0L, f.c.fip);
        assertEquals(0xC90F_DAA2_2168_C235L, f.c.stMant[7]);
        assertEquals(-Math.PI, f.c.st[7]);
        assertEquals(0x0F0F_0F0F_0F0F_0F0FL, f.lo(15));
    }

    @Test void fxsaveStoresZeroPointersWhenNoExceptionIsPending() {
        fillState();
        f.c.fcw = 0x027F; // everything masked: nothing pending
        f.c.fsw = 0x0021;
        f.c.r[Cpu.RAX] = DATA;
        for (int i = 0; i < 512; i++) f.mem.st8(DATA + i, 0xEE);
        f.ok("48 0f ae 00");
        assertEquals(0, f.mem.ld16(DATA + 6));  // FOP
        assertEquals(0, f.mem.ld64(DATA + 8));  // FIP
        assertEquals(0, f.mem.ld64(DATA + 16)); // FDP
        f.ok("0f ae 00");
        assertEquals(0, f.mem.ld64(DATA + 8));
        assertEquals(0, f.mem.ld64(DATA + 16));
        assertEquals(0x1FA0, f.mem.ld32(DATA + 24)); // the rest of the image is stored as usual
    }

    @Test void fxrstorRecomputesEsAndBFromTheLoadedFlagsAndMasks() {
        f.c.r[Cpu.RAX] = DATA;
        f.ok("48 0f ae 00");
        f.mem.st16(DATA, 0x0370);      // IM..PM: IE unmasked
        f.mem.st16(DATA + 2, 0x0001);  // IE flagged, ES and B clear in the image
        f.ok("48 0f ae 08");
        assertEquals(0x8081, X87.status(f.c));
        f.mem.st16(DATA, 0x037F);      // all masked
        f.mem.st16(DATA + 2, 0xFFFF);  // ES and B set in the image
        f.ok("48 0f ae 08");
        assertEquals(0x7F7F, X87.status(f.c));
    }

    @Test void fxsaveAndFxrstorCheckTheLastByteBeforeTheFirst() {
        fillState();
        long la = FpuTestFixture.UNMAPPED - 256; // bytes 256-511 are on the not-present page
        f.c.r[Cpu.RAX] = la;
        f.mem.st32(la + 24, 0x1_0000); // a reserved MXCSR bit: the #PF still wins
        assertEquals(Exceptions.PF, f.exec("48 0f ae 00"));
        assertEquals(la + 511, f.c.cr2);
        assertEquals(0x1_0000, f.mem.ld32(la + 24)); // nothing written
        f.c.cr2 = 0;
        assertEquals(Exceptions.PF, f.exec("48 0f ae 08"));
        assertEquals(la + 511, f.c.cr2);
        assertEquals(0x027E, f.c.fcw);
    }

    @Test void fxrstorRejectsReservedMxcsrBitsAndMisalignment() {
        fillState();
        f.c.r[Cpu.RAX] = DATA;
        f.ok("48 0f ae 00");
        f.mem.st32(DATA + 24, 0x1_0000);
        f.c.fcw = 0x37F;
        assertEquals(Exceptions.GP, f.exec("48 0f ae 08"));
        assertEquals(0x37F, f.c.fcw);
        f.c.r[Cpu.RAX] = DATA + 8;
        assertEquals(Exceptions.GP, f.exec("48 0f ae 00"));
    }

    @Test void fxsaveRaisesNmWhenTsOrEmIsSet() {
        f.c.r[Cpu.RAX] = DATA;
        f.c.cr0 |= Cpu.CR0_TS;
        assertEquals(Exceptions.NM, f.exec("0f ae 00"));
        f.c.cr0 &= ~Cpu.CR0_TS;
        f.c.cr0 |= Cpu.CR0_EM;
        assertEquals(Exceptions.NM, f.exec("0f ae 00"));
    }

    @Test void ldmxcsrChecksReservedBitsAndStmxcsrStores() {
        f.c.r[Cpu.RAX] = DATA;
        f.mem.st32(DATA, 0x7F80);
        f.ok("0f ae 10");
        assertEquals(0x7F80, f.c.mxcsr);
        f.mem.st32(DATA, 0x2_1F80);
        assertEquals(Exceptions.GP, f.exec("0f ae 10"));
        assertEquals(0, f.lastError);
        assertEquals(0x7F80, f.c.mxcsr);
        f.ok("0f ae 18");
        assertEquals(0x7F80, f.mem.ld32(DATA));
        f.c.cr4 &= ~Cpu.CR4_OSFXSR;
        assertEquals(Exceptions.UD, f.exec("0f ae 10"));
        assertEquals(Exceptions.UD, f.exec("0f ae c0")); // register form of /0
        f.c.cr4 |= Cpu.CR4_OSFXSR;
        assertEquals(Exceptions.UD, f.exec("66 0f ae 10")); // NP encoding only
        assertEquals(Exceptions.UD, f.exec("f2 0f ae 18"));
    }
}
