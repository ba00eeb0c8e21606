package dev.polyvisor.devices;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class PciHostBridgeTest {
    private final IoBus io = new IoBus();
    private final PciHostBridge pci = new PciHostBridge();

    { pci.register(io); }

    private long cfg(int dev, int fn, int reg, int size) {
        io.out(0xCF8, 4, 0x8000_0000L | dev << 11 | fn << 8 | (reg & 0xFC));
        return io.in(0xCFC + (reg & 3), size);
    }

    @Test
    void linuxPciCheckType1RoundTripsTheAddressRegister() {
        io.out(0xCFB, 1, 0x01);
        io.out(0xCF8, 4, 0x8000_0000L);
        assertEquals(0x8000_0000L, io.in(0xCF8, 4));
    }

    @Test
    void hostBridgeIsAnI440fx() {
        assertEquals(0x1237_8086L, cfg(0, 0, 0, 4));
        assertEquals(0x8086, cfg(0, 0, 0, 2));
        assertEquals(0x12, cfg(0, 0, 3, 1));
        assertEquals(0x06, cfg(0, 0, 0x0B, 1)); // base class: bridge
        assertEquals(0x00, cfg(0, 0, 0x0A, 1)); // sub-class: host
        assertEquals(0x00, cfg(0, 0, 0x0E, 1)); // header type 0
    }

    @Test
    void emptySlotsAndDisabledCyclesReadAllOnes() {
        assertEquals(0xFFFF_FFFFL, cfg(1, 0, 0, 4));
        assertEquals(0xFFFF, cfg(31, 7, 0, 2));
        io.out(0xCF8, 4, 0); // enable bit clear
        assertEquals(0xFFFF_FFFFL, io.in(0xCFC, 4));
    }

    @Test
    void identificationIsReadOnlyButCommandAndInterruptLineAreWritable() {
        io.out(0xCF8, 4, 0x8000_0000L);
        io.out(0xCFC, 4, 0);
        assertEquals(0x1237_8086L, cfg(0, 0, 0, 4));
        io.out(0xCF8, 4, 0x8000_0004L);
        io.out(0xCFC, 2, 0xFFFF);
        assertEquals(0x0147, cfg(0, 0, 4, 2));
        io.out(0xCF8, 4, 0x8000_003CL);
        io.out(0xCFC, 1, 0x0B);
        assertEquals(0x0B, cfg(0, 0, 0x3C, 1));
    }

    @Test
    void registeredFunctionsAppearAndSlotsCannotBeTakenTwice() {
        pci.register(0, 3, 0, new PciConfigSpace(0x1AF4, 0x1000, 0, 0x020000, 0));
        assertEquals(0x1000_1AF4L, cfg(3, 0, 0, 4));
        assertThrows(IllegalStateException.class, () -> pci.register(0, 3, 0, new PciConfigSpace(1, 2, 0, 0, 0)));
    }

    @Test
    void guestGarbageNeverThrows() {
        java.util.Random r = new java.util.Random(8);
        for (int i = 0; i < 20_000; i++) {
            int p = 0xCF8 + r.nextInt(8);
            int size = 1 << r.nextInt(3);
            if (r.nextBoolean()) io.out(p, size, r.nextLong()); else io.in(p, size);
        }
    }
}
