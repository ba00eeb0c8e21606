package dev.polyvisor.vmm;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.*;

class ConsoleMarkersTest {
    private final AtomicLong insns = new AtomicLong(), exits = new AtomicLong();
    private final ConsoleMarkers m = new ConsoleMarkers(insns::get, exits::get);

    private void send(int port, String s) { m.see(port, s.getBytes(StandardCharsets.ISO_8859_1)); }

    @Test
    void aWorkloadCostsWhatRetiredBetweenTheNewlinesOfItsMarkers() {
        insns.set(100); exits.set(7);
        send(1, "pv-mark begin clock");
        insns.set(150);
        send(1, "\r\n"); // stamped when the newline arrives
        insns.set(1150); exits.set(9);
        send(1, "pv-mark end clock\n");
        assertEquals(Map.of("clock", new ConsoleMarkers.Cost(1000, 2)), m.costs());
    }

    @Test
    void portsKeepSeparateLinesAndJunkIsIgnored() {
        send(0, "pv-mark be");
        insns.set(10);
        send(1, "pv-mark begin ipi\n");
        send(0, "gin tlb\n");          // COM1's line completes on COM1 only
        send(0, "pv-mark begin\n");    // malformed
        send(0, "pv-mark middle x\n"); // unknown phase
        send(0, "xx pv-mark end ipi\n"); // not at the start of a line
        insns.set(30);
        send(1, "pv-mark end ipi\n");
        assertEquals(3, m.markers().size());
        assertEquals(Map.of("ipi", new ConsoleMarkers.Cost(20, 0)), m.costs());
    }

    @Test
    void aBeginWithoutItsEndHasNoCost() {
        send(0, "pv-mark begin lock\n");
        assertTrue(m.costs().isEmpty());
    }
}
