package dev.polyvisor.cli;

import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImageException;
import dev.polyvisor.guest.GuestImages;
import dev.polyvisor.guest.RootfsImages;
import dev.polyvisor.guest.RootfsSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code polyvisor image}: fetches and builds the default guest (Debian's cloud kernel and a busybox
 * initramfs) if it is not cached yet, and prints where it is, one {@code key=value} per line, for
 * scripts such as bench/boot-vs-qemu.sh that hand the same files to another emulator.
 *
 * <p>With {@code --rootfs} it builds (or finds in the cache) a Debian bookworm root filesystem as an ext4
 * raw image ({@link RootfsImages}) carrying the modules of the same kernel, copies it to {@code --out}
 * if given, and prints {@code rootfs=}, {@code ssh-key=} and the kernel it matches.
 */
@Command(name = "image", mixinStandardHelpOptions = true,
        description = {"Build (or find in the cache) the default Debian guest, or the one around --kernel-package/--suite, and print its paths.",
                "With --rootfs: a Debian bookworm root filesystem (mmdebstrap: root mode as root, else unshare mode with the user's subordinate ids) as an ext4 raw image with systemd, "
                        + "ssh, DHCP on the virtio NIC, root autologin on ttyS0/hvc0 and the guest kernel's modules; boot it with "
                        + "'polyvisor run --disk FILE'."})
public final class ImageCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Mixin KernelPackageOptions kernelPackage = new KernelPackageOptions();

    @Option(names = "--rootfs", description = "Build a Debian root filesystem image instead (cached; a second call is instant).")
    boolean rootfs;

    @Option(names = "--out", paramLabel = "FILE", description = "With --rootfs: copy the image to FILE (sparse), the copy to boot "
            + "and write to; without it the cache's own image is printed.")
    Path out;

    @Option(names = "--size", paramLabel = "SIZE", description = "With --rootfs: the image size, like 2G or 1536M (default: 2G).")
    String size;

    @Option(names = "--if-cached", description = "Print the default guest only if it is already built (never downloads "
            + "or builds); exit status 1 if it is not.")
    boolean ifCached;

    @Override
    public Integer call() throws Exception {
        try {
            kernelPackage.source();
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        if (!rootfs && (out != null || size != null))
            throw new ParameterException(spec.commandLine(), (out != null ? "--out" : "--size") + " needs --rootfs");
        if (ifCached && (rootfs || kernelPackage.given()))
            throw new ParameterException(spec.commandLine(), "--if-cached is for the default guest: not with --rootfs or a kernel choice");
        if (rootfs) return rootfs();
        GuestImage g;
        if (ifCached) {
            g = GuestImages.cachedDefaultGuest();
            if (g == null) {
                spec.commandLine().getErr().println("polyvisor: the default guest is not built yet ('polyvisor image' builds it)");
                spec.commandLine().getErr().flush();
                return 1;
            }
            print(g);
            return 0;
        }
        try {
            g = kernelPackage.guest();
        } catch (GuestImageException e) {
            spec.commandLine().getErr().println("polyvisor: " + (kernelPackage.given() ? "cannot prepare the Linux guest for "
                    + kernelPackage.source() + ": " : "") + e.getMessage());
            spec.commandLine().getErr().flush();
            return RunCommand.USAGE;
        }
        print(g);
        return 0;
    }

    private static void print(GuestImage g) {
        System.out.println("kernel=" + g.kernel());
        System.out.println("initramfs=" + g.initramfs());
        System.out.println("release=" + g.kernelRelease());
        System.out.println("kernel-package=" + g.kernelPackage() + " " + g.kernelVersion());
        System.out.println("busybox=" + g.busyboxVersion());
    }

    private Integer rootfs() {
        long bytes = RootfsSpec.DEFAULT_SIZE;
        if (size != null) {
            try {
                bytes = RootfsSpec.parseSize(size);
            } catch (IllegalArgumentException e) {
                throw new ParameterException(spec.commandLine(), "--size: " + e.getMessage());
            }
            if (bytes < RootfsSpec.MIN_SIZE)
                throw new ParameterException(spec.commandLine(), "--size " + size + ": a root filesystem needs at least " + (RootfsSpec.MIN_SIZE >> 20) + "M");
        }
        RootfsImages.Rootfs r;
        try {
            KernelPackageOptions.KernelDebs k = kernelPackage.kernelDebs();
            r = RootfsImages.build(k.name(), k.version(), k.files(), bytes);
        } catch (GuestImageException e) {
            spec.commandLine().getErr().println("polyvisor: cannot build the root filesystem: " + e.getMessage());
            spec.commandLine().getErr().flush();
            return RunCommand.USAGE;
        }
        try {
            if (out != null) RootfsImages.copy(r.image(), out);
        } catch (GuestImageException e) {
            spec.commandLine().getErr().println("polyvisor: " + e.getMessage()); // the message starts with "--out FILE: "
            spec.commandLine().getErr().flush();
            return RunCommand.USAGE;
        }
        System.out.println("rootfs=" + (out != null ? out.toAbsolutePath() : r.image()));
        System.out.println("ssh-key=" + r.sshKey());
        System.out.println("release=" + r.spec().kernelRelease());
        System.out.println("kernel-package=" + r.spec().kernelPackage() + " " + r.spec().kernelVersion());
        System.out.println("cached=" + r.fromCache());
        return 0;
    }
}
