package dev.polyvisor.cli;

import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImageException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.util.concurrent.Callable;

/**
 * {@code polyvisor image}: fetches and builds the default guest (Debian's cloud kernel and a busybox
 * initramfs) if it is not cached yet, and prints where it is, one {@code key=value} per line, for
 * scripts such as bench/boot-vs-qemu.sh that hand the same files to another emulator.
 */
@Command(name = "image", mixinStandardHelpOptions = true,
        description = "Build (or find in the cache) the default Debian guest, or the one around --kernel-package/--suite, and print its paths.")
public final class ImageCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Mixin KernelPackageOptions kernelPackage = new KernelPackageOptions();

    @Override
    public Integer call() throws Exception {
        try {
            kernelPackage.source();
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        GuestImage g;
        try {
            g = kernelPackage.guest();
        } catch (GuestImageException e) {
            spec.commandLine().getErr().println("polyvisor: " + (kernelPackage.given() ? "cannot prepare the Linux guest for "
                    + kernelPackage.source() + ": " : "") + e.getMessage());
            spec.commandLine().getErr().flush();
            return RunCommand.USAGE;
        }
        System.out.println("kernel=" + g.kernel());
        System.out.println("initramfs=" + g.initramfs());
        System.out.println("release=" + g.kernelRelease());
        System.out.println("kernel-package=" + g.kernelPackage() + " " + g.kernelVersion());
        System.out.println("busybox=" + g.busyboxVersion());
        return 0;
    }
}
