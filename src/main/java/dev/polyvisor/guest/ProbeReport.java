package dev.polyvisor.guest;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What /bin/pv-probe ({@link GuestProbe}) reported: the JSON object it prints between
 * {@link GuestProbe#BEGIN_MARKER} and {@link GuestProbe#END_MARKER}, read from a console capture.
 * Nullable components are the ones the probe prints as {@code null}: no "Hypervisor detected" line,
 * no /sys/hypervisor files, and so on.
 */
public record ProbeReport(String kernel, String hypervisorDetected, String paravirt, String clocksource,
                          List<String> clocksources, String clockevent, int cpus, boolean cpuidHypervisorBit,
                          long stealTicks, long stealTicksDelta, Map<String, String> sysHypervisor,
                          List<String> pvFeatures, List<VirtioDevice> virtioDevices) {

    /**
     * One entry of /sys/bus/virtio/devices: its name, virtio device id (e.g. "0x0002"), bound driver, if any, and the
     * features the driver negotiated as the sysfs file shows them, one '0' or '1' per bit from bit 0 (null when the
     * report has none): the device-level ABI the guest bound, as pv_features is the hypervisor's.
     */
    public record VirtioDevice(String name, String device, String driver, String features) {
        public VirtioDevice(String name, String device, String driver) { this(name, device, driver, null); }

        /** Whether feature bit {@code bit} was negotiated (false when the report has no features). */
        public boolean negotiated(int bit) { return features != null && bit < features.length() && features.charAt(bit) == '1'; }

        /** The negotiated device-independent features by name (virtio 1.2, 6 "Reserved Feature Bits"). */
        public List<String> transportFeatures() {
            List<String> out = new ArrayList<>();
            TRANSPORT_FEATURES.forEach((bit, name) -> { if (negotiated(bit)) out.add(name); });
            return List.copyOf(out);
        }
    }

    /** Bits 28-40 of virtio 1.2, 6, by number. */
    private static final java.util.SortedMap<Integer, String> TRANSPORT_FEATURES = new java.util.TreeMap<>(Map.ofEntries(
            Map.entry(28, "INDIRECT_DESC"), Map.entry(29, "EVENT_IDX"), Map.entry(32, "VERSION_1"),
            Map.entry(33, "ACCESS_PLATFORM"), Map.entry(34, "RING_PACKED"), Map.entry(35, "IN_ORDER"),
            Map.entry(36, "ORDER_PLATFORM"), Map.entry(37, "SR_IOV"), Map.entry(38, "NOTIFICATION_DATA"),
            Map.entry(39, "NOTIF_CONFIG_DATA"), Map.entry(40, "RING_RESET")));

    /** The report is missing from the console or is not the JSON object the probe prints. */
    public static final class MalformedProbeReport extends IllegalArgumentException {
        MalformedProbeReport(String message) { super(message); }
    }

    private static final Pattern REPORT = Pattern.compile(
            "^" + Pattern.quote(GuestProbe.BEGIN_MARKER) + "\\r?$(.*?)^" + Pattern.quote(GuestProbe.END_MARKER) + "\\r?$",
            Pattern.MULTILINE | Pattern.DOTALL);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The first report in {@code consoleText}; throws {@link MalformedProbeReport} with a one-line reason otherwise. */
    public static ProbeReport parse(String consoleText) {
        Matcher m = REPORT.matcher(consoleText);
        if (!m.find()) {
            throw new MalformedProbeReport(consoleText.contains(GuestProbe.BEGIN_MARKER)
                    ? "probe report has no '" + GuestProbe.END_MARKER + "' line: the probe did not finish"
                    : "no probe report: the console has no '" + GuestProbe.BEGIN_MARKER + "' line");
        }
        JsonNode o;
        try {
            o = JSON.readTree(m.group(1).strip());
        } catch (JacksonException e) {
            throw new MalformedProbeReport("probe report is not valid JSON: " + e.getOriginalMessage());
        }
        if (o == null || !o.isObject()) throw new MalformedProbeReport("probe report is not a JSON object");
        return new ProbeReport(
                string(o, "kernel", false), string(o, "hypervisor_detected", true), string(o, "paravirt", true),
                string(o, "clocksource", true), strings(o, "clocksources"), string(o, "clockevent", true),
                (int) number(o, "cpus"), bool(o, "cpuid_hypervisor_bit"), number(o, "steal_ticks"),
                number(o, "steal_ticks_delta"), sysHypervisor(o), strings(o, "pv_features"), virtio(o));
    }

    /** Whether some PV-feature dmesg line contains {@code text}. */
    public boolean reportsFeature(String text) {
        return pvFeatures.stream().anyMatch(l -> l.contains(text));
    }

    private static JsonNode field(JsonNode o, String name) {
        JsonNode v = o.get(name);
        if (v == null) throw new MalformedProbeReport("probe report lacks '" + name + "'");
        return v;
    }

    private static String string(JsonNode o, String name, boolean nullable) {
        JsonNode v = field(o, name);
        if (v.isNull() && nullable) return null;
        if (!v.isTextual()) throw new MalformedProbeReport("probe report '" + name + "' is not a string: " + v);
        return v.textValue();
    }

    private static long number(JsonNode o, String name) {
        JsonNode v = field(o, name);
        if (!v.isIntegralNumber() || !v.canConvertToLong()) throw new MalformedProbeReport("probe report '" + name + "' is not an integer: " + v);
        return v.longValue();
    }

    private static boolean bool(JsonNode o, String name) {
        JsonNode v = field(o, name);
        if (!v.isBoolean()) throw new MalformedProbeReport("probe report '" + name + "' is not true or false: " + v);
        return v.booleanValue();
    }

    private static List<String> strings(JsonNode o, String name) {
        JsonNode v = field(o, name);
        if (!v.isArray()) throw new MalformedProbeReport("probe report '" + name + "' is not an array: " + v);
        List<String> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isTextual()) throw new MalformedProbeReport("probe report '" + name + "' holds a non-string: " + e);
            out.add(e.textValue());
        }
        return List.copyOf(out);
    }

    private static Map<String, String> sysHypervisor(JsonNode o) {
        JsonNode v = field(o, "sys_hypervisor");
        if (v.isNull()) return null;
        if (!v.isObject()) throw new MalformedProbeReport("probe report 'sys_hypervisor' is not an object or null: " + v);
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : v.properties()) {
            if (!e.getValue().isTextual()) throw new MalformedProbeReport("probe report 'sys_hypervisor." + e.getKey() + "' is not a string");
            out.put(e.getKey(), e.getValue().textValue());
        }
        return java.util.Collections.unmodifiableMap(out);
    }

    private static List<VirtioDevice> virtio(JsonNode o) {
        JsonNode v = field(o, "virtio_devices");
        if (!v.isArray()) throw new MalformedProbeReport("probe report 'virtio_devices' is not an array: " + v);
        List<VirtioDevice> out = new ArrayList<>();
        for (JsonNode d : v) {
            if (!d.isObject()) throw new MalformedProbeReport("probe report 'virtio_devices' holds a non-object: " + d);
            String features = d.has("features") ? string(d, "features", true) : null;
            if (features != null && !features.matches("[01]{1,128}"))
                throw new MalformedProbeReport("probe report virtio features are not a bit string: " + features);
            out.add(new VirtioDevice(string(d, "name", false), string(d, "device", false), string(d, "driver", true), features));
        }
        return List.copyOf(out);
    }
}
