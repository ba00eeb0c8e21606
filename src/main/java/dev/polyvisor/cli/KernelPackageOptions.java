package dev.polyvisor.cli;

import dev.polyvisor.guest.DebPackage;
import dev.polyvisor.guest.DebianPackages;
import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImageException;
import dev.polyvisor.guest.GuestImages;
import dev.polyvisor.guest.KernelSource;
import dev.polyvisor.guest.PrivateApt;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;

/**
 * {@code --kernel-package NAME[=VERSION]} and {@code --suite SUITE}, shared by {@code run} and
 * {@code image}: build the Linux guest around any Debian kernel package of a suite instead of the
 * default guest's (fetched through a private apt configuration, {@link PrivateApt}).
 */
public final class KernelPackageOptions {
    @Option(names = "--kernel-package", paramLabel = "NAME[=VERSION]", description = "Build the Linux guest around this Debian "
            + "kernel package (a metapackage such as linux-image-cloud-amd64 is followed to its kernel), at apt's "
            + "candidate version or the one given.")
    String kernelPackage;

    @Option(names = "--suite", paramLabel = "SUITE", description = "The Debian suite --kernel-package comes from: bookworm, "
            + "bookworm-backports, trixie, sid or experimental (default: bookworm; alone, it means that suite's linux-image-cloud-amd64).")
    String suite;

    /** True when either flag was given. */
    boolean given() { return kernelPackage != null || suite != null; }

    /** The request, or null without the flags; a malformed one is an IllegalArgumentException with a one-line message. */
    KernelSource source() {
        if (!given()) return null;
        if (suite != null && !PrivateApt.SUITES.contains(suite)) throw new IllegalArgumentException("--suite: " + PrivateApt.unknownSuite(suite));
        try {
            return KernelSource.parse(kernelPackage, suite);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--kernel-package: " + e.getMessage());
        }
    }

    /** A kernel's package files, named by its versioned linux-image package. */
    record KernelDebs(String name, String version, List<Path> files) {}

    /**
     * The package files of the kernel the guest for these flags boots (so a root filesystem built with
     * the same flags carries its modules): the default guest's kernel, else the requested one.
     */
    KernelDebs kernelDebs() throws GuestImageException {
        KernelSource src = source();
        if (src == null) {
            DebPackage d = DebianPackages.fetch(DebianPackages.resolveKernelPackage());
            return new KernelDebs(d.name(), d.version(), List.of(d.file()));
        }
        DebianPackages.ResolvedKernel k = DebianPackages.resolve(src);
        return new KernelDebs(k.image().name(), k.image().version(), DebianPackages.fetch(k).stream().map(DebPackage::file).toList());
    }

    /** The guest for the flags: the requested kernel's, else the default guest. */
    GuestImage guest() throws GuestImageException {
        KernelSource src = source();
        return src == null ? GuestImages.defaultGuest() : GuestImages.build(src);
    }
}
