package dev.polyvisor.devices;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Bus 0's INTx pins on IOAPIC pins 16-23: the slot/pin rotation and the wired OR of a shared line. */
class PciIntxRoutingTest {
    private final boolean[] gsis = new boolean[24];
    private final PciIntxRouting routing = new PciIntxRouting((gsi, level) -> gsis[gsi] = level);

    @Test
    void pinsRotateAcrossSlotsOverEightLines() {
        assertEquals(16, PciIntxRouting.gsi(0, 0));
        assertEquals(17, PciIntxRouting.gsi(0, 1));
        assertEquals(19, PciIntxRouting.gsi(3, 0));
        assertEquals(16, PciIntxRouting.gsi(8, 0), "slot 8 INTA# shares slot 0's line");
        assertEquals(18, PciIntxRouting.gsi(31, 3));
    }

    @Test
    void aSharedLineStaysAssertedWhileAnyFunctionAssertsIt() {
        IrqLine a = routing.pin(1, 0), b = routing.pin(9, 0); // both GSI 17
        a.set(true);
        assertTrue(gsis[17]);
        b.set(true);
        a.set(false);
        assertTrue(gsis[17], "b still asserts it");
        a.set(false); // a repeated level changes nothing
        assertTrue(gsis[17]);
        b.set(false);
        assertFalse(gsis[17]);
    }
}
