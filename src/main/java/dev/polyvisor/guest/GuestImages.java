package dev.polyvisor.guest;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * The default guest: Debian's current cloud kernel plus an initramfs built here around
 * busybox-static. Built on first use into {@code <cache>/guests/<key>/}, where the key names the
 * kernel package and version, the busybox version and {@link GuestInit#REVISION}; later calls reuse
 * it. A directory is published by an atomic rename, so a half-built image is never seen. A new build
 * removes the older guests of its kernel series that it supersedes ({@link CacheEntries}).
 */
public final class GuestImages {
    static final String KERNEL_FILE = "vmlinuz", INITRAMFS_FILE = "initramfs.cpio", INFO_FILE = "guest.properties";

    private GuestImages() {}

    /** The default guest's packages as apt's local lists name them: its kernel package and the two candidate versions. */
    private record DefaultChoice(String kernelPkg, String kernelVersion, String busyboxVersion) {
        /** apt's answers, remembered while the host's apt state stays the same ({@link AptStateCache}). */
        static DefaultChoice fromApt() throws GuestImageException {
            AptStateCache cache;
            try {
                cache = new AptStateCache(GuestCache.subdirectory("apt-host").resolve("default-guest.properties"),
                        AptStateCache.HOST_APT_INPUTS);
            } catch (java.io.UncheckedIOException e) {
                return askApt(); // no writable cache directory
            }
            java.util.Properties p = cache.get(() -> {
                DefaultChoice c = askApt();
                java.util.Properties a = new java.util.Properties();
                a.setProperty("kernel-package", c.kernelPkg);
                a.setProperty("kernel-version", c.kernelVersion);
                a.setProperty("busybox-version", c.busyboxVersion);
                return a;
            });
            String k = p.getProperty("kernel-package"), kv = p.getProperty("kernel-version"), bv = p.getProperty("busybox-version");
            return k == null || kv == null || bv == null ? askApt() : new DefaultChoice(k, kv, bv);
        }

        private static DefaultChoice askApt() throws GuestImageException {
            String kernelPkg = DebianPackages.resolveKernelPackage();
            return new DefaultChoice(kernelPkg, DebianPackages.candidateVersion(kernelPkg),
                    DebianPackages.candidateVersion(DebianPackages.BUSYBOX));
        }

        Path dir() { return guestsDir().resolve(key(kernelPkg, kernelVersion, busyboxVersion)); }
    }

    /** Paths to the cached default kernel and initramfs, downloading and building them on first use. */
    public static GuestImage defaultGuest() throws GuestImageException {
        DefaultChoice choice;
        try {
            choice = DefaultChoice.fromApt();
        } catch (GuestImageException e) {
            // Offline or no apt: a guest built earlier is still good.
            GuestImage newest = newestCached();
            if (newest == null) throw e;
            System.err.println("polyvisor: " + e.getMessage() + "; using the cached guest " + newest.kernelPackage() + " " + newest.kernelVersion());
            return newest;
        }
        GuestImage cached = load(choice.dir());
        if (cached != null) return cached;
        DebPackage kernel = DebianPackages.fetch(choice.kernelPkg());
        DebPackage busybox = DebianPackages.fetch(DebianPackages.BUSYBOX);
        return build(kernel, busybox);
    }

    /**
     * The default guest if it is already built, else null: never downloads or builds. The same choice as
     * {@link #defaultGuest} (apt's candidates, from its local lists; without apt the newest cached guest).
     */
    public static GuestImage cachedDefaultGuest() {
        try {
            return load(DefaultChoice.fromApt().dir());
        } catch (GuestImageException e) {
            return newestCached();
        }
    }

    /**
     * The guest built around a user-given kernel package (any Debian linux-image-* .deb with a
     * bzImage and modules), with busybox-static from apt or the cache.
     */
    public static GuestImage withKernelDeb(Path kernelDeb) throws GuestImageException {
        return build(DebPackage.of(kernelDeb), DebianPackages.fetch(DebianPackages.BUSYBOX));
    }

    /** Where the busybox-static of {@link #build(KernelSource)} guests comes from: one userland for every kernel. */
    public static final String USERLAND_SUITE = "bookworm";

    /**
     * The guest built around any Debian kernel package from any suite ({@link KernelSource}), fetched
     * through that suite's private apt configuration ({@link PrivateApt}), with busybox-static from
     * {@value #USERLAND_SUITE} so that only the kernel differs between guests. Cached like the default guest,
     * keyed by the concrete linux-image package and version.
     */
    public static GuestImage build(KernelSource src) throws GuestImageException {
        DebianPackages.ResolvedKernel k = DebianPackages.resolve(src);
        DebPackage busybox = DebianPackages.fetch(DebianPackages.BUSYBOX, null, USERLAND_SUITE);
        GuestImage cached = load(guestsDir().resolve(key(k.image().name(), k.image().version(), busybox.version())));
        if (cached != null) return cached;
        return build(k.image().name(), k.image().version(), DebianPackages.fetch(k), busybox);
    }

    /** Builds (or reuses) the guest made from two given packages, e.g. user-supplied .deb files. */
    public static GuestImage build(DebPackage kernelDeb, DebPackage busyboxDeb) throws GuestImageException {
        return build(kernelDeb.name(), kernelDeb.version(), List.of(kernelDeb), busyboxDeb);
    }

    /**
     * Builds (or reuses) the guest of a kernel spread over several packages (the split layout of
     * {@link KernelPackage}), named by its linux-image package {@code kernelName} at {@code kernelVersion}.
     */
    public static GuestImage build(String kernelName, String kernelVersion, List<DebPackage> kernelDebs, DebPackage busyboxDeb)
            throws GuestImageException {
        Path dir = guestsDir().resolve(key(kernelName, kernelVersion, busyboxDeb.version()));
        GuestImage cached = load(dir);
        if (cached != null) return cached;
        System.err.println("polyvisor: building guest image from "
                + kernelDebs.stream().map(d -> d.file().getFileName().toString()).toList() + " and " + busyboxDeb.file().getFileName());
        KernelPackage kernel = KernelPackage.read(kernelDebs.stream().map(DebPackage::file).toList());
        byte[] busybox = DebExtractor.dataFiles(busyboxDeb.file(), "bin/busybox"::equals).get("bin/busybox");
        if (busybox == null) throw new GuestImageException(busyboxDeb.file() + ": has no bin/busybox (is it busybox-static?)");
        byte[] initramfs = GuestInitramfs.build(kernel, busybox, ModuleSet.VIRTIO_ROOTS, ModuleSet.ROOTFS_ROOTS);
        Path tmp = null;
        try {
            tmp = Files.createTempDirectory(guestsDir(), ".build-");
            try {
                Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
            } catch (UnsupportedOperationException notPosix) {
                // keep the default permissions
            }
            Files.write(tmp.resolve(KERNEL_FILE), kernel.vmlinuz());
            Files.write(tmp.resolve(INITRAMFS_FILE), initramfs);
            Files.writeString(tmp.resolve(INFO_FILE), String.join("\n",
                    "release=" + kernel.release(), "kernelPackage=" + kernelName,
                    "kernelVersion=" + kernelVersion, "busyboxVersion=" + busyboxDeb.version(), ""), StandardCharsets.UTF_8);
            try {
                Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException raced) {
                if (load(dir) == null) throw raced; // another process published the same image first
            }
        } catch (IOException e) {
            throw new GuestImageException("cannot write the guest image to " + dir + ": " + e.getMessage(), e);
        } finally {
            if (tmp != null) DebianPackages.deleteTree(tmp);
        }
        GuestImage built = load(dir);
        if (built == null) throw new GuestImageException("guest image in " + dir + " is incomplete");
        System.err.println("polyvisor: guest image ready in " + dir);
        CacheEntries.prune(guestsDir(), dir, INFO_FILE, GuestImages::line, "guest image", System.err);
        return built;
    }

    /** Guests of one kernel series supersede each other ({@link CacheEntries}): other inputs are only older. */
    static String line(Map<String, String> info) {
        String release = info.get("release");
        return release == null ? null : CacheEntries.kernelSeries(release);
    }

    static String key(String kernelPkg, String kernelVersion, String busyboxVersion) {
        return (kernelPkg + "_" + kernelVersion + "+busybox_" + busyboxVersion + "+init" + GuestInit.REVISION)
                .replaceAll("[^A-Za-z0-9._+-]", "_");
    }

    private static Path guestsDir() { return GuestCache.subdirectory("guests"); }

    private static GuestImage load(Path dir) {
        Path info = dir.resolve(INFO_FILE), kernel = dir.resolve(KERNEL_FILE), initramfs = dir.resolve(INITRAMFS_FILE);
        if (!Files.isRegularFile(info) || !Files.isRegularFile(kernel) || !Files.isRegularFile(initramfs)) return null;
        Map<String, String> p = CacheEntries.info(info);
        if (p == null || !p.containsKey("release")) return null;
        return new GuestImage(kernel, initramfs, p.get("release"), p.get("kernelPackage"), p.get("kernelVersion"), p.get("busyboxVersion"));
    }

    private static GuestImage newestCached() {
        List<Path> dirs = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(guestsDir())) {
            for (Path p : ds) if (!p.getFileName().toString().startsWith(".")) dirs.add(p);
        } catch (IOException e) {
            return null;
        }
        dirs.sort(Comparator.comparing((Path p) -> p.toFile().lastModified()).reversed());
        for (Path d : dirs) {
            GuestImage g = load(d);
            if (g != null && g.kernelPackage() != null) return g;
        }
        return null;
    }
}
