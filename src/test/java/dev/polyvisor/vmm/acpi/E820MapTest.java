package dev.polyvisor.vmm.acpi;

import org.junit.jupiter.api.Test;

import dev.polyvisor.vmm.boot.linux.E820Entry;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class E820MapTest {
    @Test
    void standardPcMapReservesTheLegacyRegionAndStopsAtThePciHole() {
        List<E820Entry> e = E820Map.standardPc(256L << 20).entries();
        assertEquals(new E820Entry(0, 0x9FC00, E820Map.RAM), e.get(0));
        assertEquals(new E820Entry(0x9FC00, 0x100000 - 0x9FC00, E820Map.RESERVED), e.get(1));
        assertEquals(new E820Entry(0x100000, (256L << 20) - 0x100000, E820Map.RAM), e.get(2));
        assertEquals(E820Map.RESERVED, e.get(3).type());
        assertEquals(0xFEC0_0000L, e.get(3).addr());
        List<E820Entry> big = E820Map.standardPc(8L << 30).entries();
        assertEquals(E820Map.PCI_HOLE, big.get(2).end());
    }

    @Test
    void ramBeyondThePciHoleIsReportedFromFourGib() {
        List<E820Entry> e = E820Map.standardPc(8L << 30).entries();
        E820Entry last = e.get(e.size() - 1);
        assertEquals(new E820Entry(1L << 32, (8L << 30) - E820Map.PCI_HOLE, E820Map.RAM), last);
        long ram = e.stream().filter(x -> x.type() == E820Map.RAM).mapToLong(E820Entry::size).sum();
        assertEquals((8L << 30) - (0x100000 - 0x9FC00), ram, "all RAM but the legacy region is usable");
    }

    @Test
    void invalidEntriesAreRejectedAndEmptyOnesDropped() {
        assertThrows(IllegalArgumentException.class, () -> new E820Map().add(0, 10, 9));
        assertEquals(0, new E820Map().add(0, 0, E820Map.RAM).size());
    }
}
