package dev.polyvisor.guest;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What a Debian {@code linux-image-*} package contributes to a guest: the kernel release string,
 * the bzImage ({@code boot/vmlinuz-<release>}) and the loadable modules under
 * {@code lib/modules/<release>/}, keyed by module name.
 */
public record KernelPackage(String release, byte[] vmlinuz, Map<String, KernelModule> modules) {
    private static final Pattern VMLINUZ = Pattern.compile("boot/vmlinuz-(.+)");
    private static final Pattern MODULE = Pattern.compile("lib/modules/([^/]+)/(kernel/.+\\.ko(\\.xz)?)");

    public static KernelPackage read(Path deb) throws GuestImageException {
        Map<String, byte[]> files = DebExtractor.dataFiles(deb,
                p -> VMLINUZ.matcher(p).matches() || MODULE.matcher(p).matches());
        String release = null;
        byte[] vmlinuz = null;
        for (var e : files.entrySet()) {
            Matcher m = VMLINUZ.matcher(e.getKey());
            if (m.matches()) {
                if (release != null) throw new GuestImageException(deb + ": holds more than one kernel (" + release + ", " + m.group(1) + ")");
                release = m.group(1);
                vmlinuz = e.getValue();
            }
        }
        if (release == null) throw new GuestImageException(deb + ": not a kernel package (no boot/vmlinuz-*)");
        Map<String, KernelModule> modules = new LinkedHashMap<>();
        for (var e : files.entrySet()) {
            Matcher m = MODULE.matcher(e.getKey());
            if (!m.matches() || !m.group(1).equals(release)) continue;
            KernelModule km = KernelModule.parse(m.group(2), e.getValue());
            modules.put(km.name(), km);
        }
        return new KernelPackage(release, vmlinuz, modules);
    }
}
