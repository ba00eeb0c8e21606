package dev.polyvisor.guest;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What Debian's kernel packages contribute to a guest: the kernel release string, the bzImage, the
 * loadable modules keyed by module name, and the names of the modules built into the image.
 *
 * <p>Two layouts are read. Up to 6.12 (bookworm, trixie) one {@code linux-image-RELEASE} package holds
 * {@code boot/vmlinuz-RELEASE} and {@code lib/modules/RELEASE/} (modules.builtin included). From 6.17
 * on (sid, experimental) {@code linux-image-RELEASE} is empty and depends on {@code linux-binary-RELEASE}
 * ({@code usr/lib/modules/RELEASE/vmlinuz}), {@code linux-modules-RELEASE} ({@code usr/lib/modules/RELEASE/kernel/})
 * and {@code linux-base-RELEASE} ({@code usr/lib/modules/RELEASE/modules.builtin}); {@link #read(List)} merges them.
 * Modules may be plain {@code .ko} or {@code .ko.xz}.
 */
public record KernelPackage(String release, byte[] vmlinuz, Map<String, KernelModule> modules, Set<String> builtin) {
    private static final Pattern BOOT_VMLINUZ = Pattern.compile("boot/vmlinuz-(.+)");
    private static final Pattern MODULES_VMLINUZ = Pattern.compile("(?:usr/)?lib/modules/([^/]+)/vmlinuz");
    private static final Pattern MODULE = Pattern.compile("(?:usr/)?lib/modules/([^/]+)/(kernel/.+\\.ko(\\.xz)?)");
    private static final Pattern BUILTIN = Pattern.compile("(?:usr/)?lib/modules/([^/]+)/modules\\.builtin");

    /** A package without a list of built-in modules (every module must then be loadable). */
    public KernelPackage(String release, byte[] vmlinuz, Map<String, KernelModule> modules) {
        this(release, vmlinuz, modules, Set.of());
    }

    public static KernelPackage read(Path deb) throws GuestImageException { return read(List.of(deb)); }

    /** The kernel spread over one or more packages (the image package and the packages it depends on). */
    public static KernelPackage read(List<Path> debs) throws GuestImageException {
        Map<String, byte[]> files = new LinkedHashMap<>();
        for (Path deb : debs) {
            Map<String, byte[]> f = DebExtractor.dataFiles(deb, p -> BOOT_VMLINUZ.matcher(p).matches()
                    || MODULES_VMLINUZ.matcher(p).matches() || MODULE.matcher(p).matches() || BUILTIN.matcher(p).matches());
            files.putAll(f);
        }
        String what = debs.size() == 1 ? debs.getFirst().toString() : debs.stream().map(p -> p.getFileName().toString()).toList().toString();
        List<String> releases = new ArrayList<>();
        byte[] vmlinuz = null;
        for (var e : files.entrySet()) {
            Matcher m = BOOT_VMLINUZ.matcher(e.getKey()), u = MODULES_VMLINUZ.matcher(e.getKey());
            String rel = m.matches() ? m.group(1) : u.matches() ? u.group(1) : null;
            if (rel == null || releases.contains(rel)) continue;
            releases.add(rel);
            vmlinuz = e.getValue();
        }
        if (releases.isEmpty())
            throw new GuestImageException(what + ": not a kernel package (no boot/vmlinuz-* or usr/lib/modules/*/vmlinuz)");
        if (releases.size() > 1)
            throw new GuestImageException(what + ": holds more than one kernel (" + String.join(", ", releases) + ")");
        String release = releases.getFirst();
        Map<String, KernelModule> modules = new LinkedHashMap<>();
        Set<String> builtin = new LinkedHashSet<>();
        for (var e : files.entrySet()) {
            Matcher b = BUILTIN.matcher(e.getKey());
            if (b.matches() && b.group(1).equals(release)) builtin.addAll(parseBuiltin(new String(e.getValue(), StandardCharsets.UTF_8)));
            Matcher m = MODULE.matcher(e.getKey());
            if (!m.matches() || !m.group(1).equals(release)) continue;
            KernelModule km = KernelModule.parse(m.group(2), e.getValue());
            modules.put(km.name(), km);
        }
        return new KernelPackage(release, vmlinuz, modules, Set.copyOf(builtin));
    }

    /** modules.builtin (modules.builtin(5)): one path per line, "kernel/drivers/virtio/virtio.ko"; module names out. */
    static Set<String> parseBuiltin(String text) {
        Set<String> out = new LinkedHashSet<>();
        for (String line : text.split("\n")) {
            String l = line.strip();
            if (!l.isEmpty()) out.add(KernelModule.moduleNameOf(l));
        }
        return out;
    }
}
