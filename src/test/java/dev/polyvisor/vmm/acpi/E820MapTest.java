package dev.polyvisor.vmm.acpi;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class E820MapTest {
    @Test
    void standardPcMapReservesTheLegacyRegionAndStopsAtThePciHole() {
        List<E820Map.Entry> e = E820Map.standardPc(256L << 20).entries();
        assertEquals(new E820Map.Entry(0, 0x9FC00, E820Map.RAM), e.get(0));
        assertEquals(new E820Map.Entry(0x9FC00, 0x100000 - 0x9FC00, E820Map.RESERVED), e.get(1));
        assertEquals(new E820Map.Entry(0x100000, (256L << 20) - 0x100000, E820Map.RAM), e.get(2));
        assertEquals(E820Map.RESERVED, e.get(3).type());
        assertEquals(0xFEC0_0000L, e.get(3).address());
        List<E820Map.Entry> big = E820Map.standardPc(8L << 30).entries();
        assertEquals(E820Map.PCI_HOLE, big.get(2).end());
    }

    @Test
    void bootParamsEncodingIsTwentyBytesLittleEndianPerEntry() {
        E820Map m = new E820Map().add(0x100000, 0x200000, E820Map.RAM).add(0, 0x1000, E820Map.ACPI);
        byte[] b = m.toBootParams();
        assertEquals(40, b.length);
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(0, bb.getLong(0));       // sorted by address
        assertEquals(0x1000, bb.getLong(8));
        assertEquals(E820Map.ACPI, bb.getInt(16));
        assertEquals(0x100000, bb.getLong(20));
        assertEquals(0x200000, bb.getLong(28));
        assertEquals(E820Map.RAM, bb.getInt(36));
    }

    @Test
    void invalidEntriesAreRejectedAndEmptyOnesDropped() {
        assertThrows(IllegalArgumentException.class, () -> new E820Map().add(0, 10, 9));
        assertEquals(0, new E820Map().add(0, 0, E820Map.RAM).size());
    }
}
