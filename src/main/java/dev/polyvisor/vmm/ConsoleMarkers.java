package dev.polyvisor.vmm;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * Marker lines a guest prints on a serial port, {@code pv-mark begin NAME} and {@code pv-mark end NAME},
 * stamped with the VM's instructions retired and exits at the moment the line's newline reaches the
 * UART. Between a begin and its end lies what a workload cost the guest, as a deterministic figure
 * under {@code --clock icount} (the coupling matrix's cost column; guest/pv_workloads.c prints them).
 * Each serial port keeps its own partial line, so two ports never splice one marker.
 */
public final class ConsoleMarkers {
    public static final String PREFIX = "pv-mark ";
    private static final int MAX_LINE = 160;

    /** One marker line: begin or end, the workload's name, and the VM's counters when it arrived. */
    public record Marker(boolean begin, String name, long instructions, long exits) {}

    /** What a workload cost: instructions retired and VM exits between its begin and end markers. */
    public record Cost(long instructions, long exits) {}

    private final LongSupplier instructions, exits;
    private final ByteArrayOutputStream[] lines = {new ByteArrayOutputStream(), new ByteArrayOutputStream()};
    private final List<Marker> markers = new ArrayList<>();

    public ConsoleMarkers(LongSupplier instructions, LongSupplier exits) {
        this.instructions = instructions;
        this.exits = exits;
    }

    /** Bytes the guest sent on serial port {@code port} (0 = COM1, 1 = COM2). */
    public synchronized void see(int port, byte[] bytes) {
        ByteArrayOutputStream line = lines[port];
        for (byte b : bytes) {
            if (b == '\n') {
                String l = line.toString(StandardCharsets.ISO_8859_1).strip();
                line.reset();
                if (l.startsWith(PREFIX)) parse(l.substring(PREFIX.length()));
            } else if (line.size() < MAX_LINE) {
                line.write(b);
            }
        }
    }

    private void parse(String rest) {
        String[] f = rest.split(" ");
        if (f.length != 2 || !(f[0].equals("begin") || f[0].equals("end")) || !f[1].matches("[A-Za-z0-9_.-]{1,40}")) return;
        markers.add(new Marker(f[0].equals("begin"), f[1], instructions.getAsLong(), exits.getAsLong()));
    }

    public synchronized List<Marker> markers() { return List.copyOf(markers); }

    /**
     * Each workload's cost, in the order they began: from a begin to the next end of the same name. A begin
     * without its end (the guest failed mid-way) has no entry.
     */
    public synchronized Map<String, Cost> costs() {
        Map<String, Cost> out = new LinkedHashMap<>();
        Map<String, Marker> open = new LinkedHashMap<>();
        for (Marker m : markers) {
            if (m.begin()) open.put(m.name(), m);
            else {
                Marker b = open.remove(m.name());
                if (b != null) out.put(m.name(), new Cost(m.instructions() - b.instructions(), m.exits() - b.exits()));
            }
        }
        return out;
    }
}
