package dev.polyvisor.memory;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The PC RAM layout of {@link GuestMemory#pc}: RAM below the 3 GiB PCI hole, the rest from 4 GiB. */
class GuestMemoryLayoutTest {
    static final long GIB = 1L << 30;

    @Test
    void smallGuestsHaveFlatRamAndNoHole() {
        try (GuestMemory m = GuestMemory.pc(64L << 20)) {
            assertEquals(64L << 20, m.ramBytes);
            assertEquals(m.ramSize, m.ramBytes);
            assertTrue(m.isRamPage((64L << 20) - 4096));
            assertFalse(m.isRamPage(64L << 20));
        }
    }

    @Test
    void ramBeyondThreeGibStartsAtFourGibAndTheHoleIsNotRam() {
        try (GuestMemory m = GuestMemory.pc(5 * GIB)) {
            assertEquals(5 * GIB, m.ramBytes);
            assertEquals(6 * GIB, m.ramSize, "span: 3 GiB low, 1 GiB hole, 2 GiB high");
            assertTrue(m.isRamPage(3 * GIB - 4096));
            assertFalse(m.isRamPage(3 * GIB));
            assertFalse(m.isRamPage(4 * GIB - 4096));
            assertTrue(m.isRamPage(4 * GIB));
            assertTrue(m.isRamPage(6 * GIB - 4096));
            assertFalse(m.isRamPage(6 * GIB));

            m.writePhys(4 * GIB + 8, 8, 0x1122_3344_5566_7788L);
            assertEquals(0x1122_3344_5566_7788L, m.readPhys(4 * GIB + 8, 8));
            m.writePhys(3 * GIB + 16, 4, 0x1234_5678);
            assertEquals(0xFFFF_FFFFL, m.readPhys(3 * GIB + 16, 4), "the hole reads as an unclaimed bus cycle");
            assertFalse(m.backed(3 * GIB - 4, 8), "an access straddling the hole start is not RAM");
            assertThrows(IllegalArgumentException.class, () -> m.load(3 * GIB + 4096, new byte[16]));
            assertEquals(0, m.readPhys(5 * GIB, 8), "untouched RAM reads as zero");
        }
    }
}
