package dev.polyvisor.cli;

import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImages;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

/**
 * {@code polyvisor image}: fetches and builds the default guest (Debian's cloud kernel and a busybox
 * initramfs) if it is not cached yet, and prints where it is, one {@code key=value} per line, for
 * scripts such as bench/boot-vs-qemu.sh that hand the same files to another emulator.
 */
@Command(name = "image", mixinStandardHelpOptions = true,
        description = "Build (or find in the cache) the default Debian guest and print its paths.")
public final class ImageCommand implements Callable<Integer> {
    @Override
    public Integer call() throws Exception {
        GuestImage g = GuestImages.defaultGuest();
        System.out.println("kernel=" + g.kernel());
        System.out.println("initramfs=" + g.initramfs());
        System.out.println("release=" + g.kernelRelease());
        System.out.println("kernel-package=" + g.kernelPackage() + " " + g.kernelVersion());
        System.out.println("busybox=" + g.busyboxVersion());
        return 0;
    }
}
