package dev.polyvisor.vmm;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * One {@code --device NAME[,KEY=VALUE...]}, spelled as QEMU's {@code -device}. Polyvisor offers the test
 * devices QEMU's test rigs use, each only when asked for:
 * <ul>
 * <li>{@code isa-debug-exit[,iobase=PORT][,iosize=N]} (hw/misc/debugexit.c; defaults 0x501 and 2 in QEMU):
 *     moves Polyvisor's exit port, which sits at 0xf4 with 4 bytes when no {@code isa-debug-exit} is given;</li>
 * <li>{@code pc-testdev} (hw/misc/pc-testdev.c);</li>
 * <li>{@code hyperv-testdev} (hw/misc/hyperv_testdev.c): SynIC routes and connections at port 0x3000, for
 *     a VM whose personality stack has Hyper-V.</li>
 * </ul>
 * Anything else is a one-line {@link IllegalArgumentException}.
 */
public record DeviceSpec(String name, Map<String, String> options) {
    public static final String DEBUG_EXIT = "isa-debug-exit", PC_TESTDEV = "pc-testdev", HYPERV_TESTDEV = "hyperv-testdev";

    public static DeviceSpec parse(String spec) {
        String[] parts = spec.trim().split(",");
        String name = parts[0].toLowerCase(Locale.ROOT);
        Map<String, String> opts = new LinkedHashMap<>();
        for (int i = 1; i < parts.length; i++) {
            int eq = parts[i].indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("--device " + spec + ": '" + parts[i] + "' is not KEY=VALUE");
            opts.put(parts[i].substring(0, eq).trim(), parts[i].substring(eq + 1).trim());
        }
        DeviceSpec d = new DeviceSpec(name, Map.copyOf(opts));
        switch (name) {
            case DEBUG_EXIT -> {
                for (String k : opts.keySet())
                    if (!k.equals("iobase") && !k.equals("iosize"))
                        throw new IllegalArgumentException("--device " + spec + ": isa-debug-exit has no property '" + k + "'");
                int base = d.number("iobase", 0x501), size = d.number("iosize", 2);
                if (base < 0 || base > 0xFFFF || size < 1 || size > 4 || base + size > 0x10000)
                    throw new IllegalArgumentException("--device " + spec + ": iobase must be a port and iosize 1 to 4");
            }
            case PC_TESTDEV, HYPERV_TESTDEV -> {
                if (!opts.isEmpty()) throw new IllegalArgumentException("--device " + spec + ": " + name + " has no properties");
            }
            default -> throw new IllegalArgumentException("device '" + parts[0] + "' is not offered (Polyvisor offers "
                    + DEBUG_EXIT + ", " + PC_TESTDEV + ", " + HYPERV_TESTDEV + ", virtconsole and virtio-rng)");
        }
        return d;
    }

    /** An integer property (decimal or 0x hex), or {@code def}. */
    public int number(String key, int def) {
        String v = options.get(key);
        if (v == null) return def;
        try {
            String t = v.toLowerCase(Locale.ROOT);
            return t.startsWith("0x") ? Integer.parseInt(t.substring(2), 16) : Integer.parseInt(t);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--device " + name + ": " + key + " must be a number, got '" + v + "'");
        }
    }
}
