package dev.polyvisor.personality;

import dev.polyvisor.cli.RunCommand;
import dev.polyvisor.guest.DebPackage;
import dev.polyvisor.guest.DebianPackages;
import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImageException;
import dev.polyvisor.guest.GuestImages;
import dev.polyvisor.guest.KernelSource;
import dev.polyvisor.vmm.Outcome;
import dev.polyvisor.vmm.Vm;
import dev.polyvisor.vmm.VmConfig;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.opentest4j.TestAbortedException;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue #10 (kernel versions): the cloud kernels of trixie (6.12) and sid (7.x), fetched through the
 * private apt configuration of their suite, boot clean under kvm and bare with two vCPUs, as
 * {@code polyvisor run --kernel-package linux-image-cloud-amd64 --suite S --personality P --smp 2
 * --append loglevel=7 --exec true} does. A clean log has none of the kernel's defect markers and no
 * "unchecked MSR access" (arch/x86/lib/msr.c's warning for an MSR the CPU lacks).
 *
 * <p>Fetching may skip (archive unreachable, nothing cached: the reason is printed); building the
 * guest from packages we have, and booting it, may not.
 */
@Tag("linux")
class KernelVersionsBootTest {
    private static final Pattern UNCLEAN = Pattern.compile(
            "\\bBUG\\b|\\bOops\\b|WARNING:|Kernel panic|\\bCall Trace\\b|unchecked MSR access|\\bpanic\\(");
    private static final Duration TIMEOUT = Duration.ofSeconds(300);
    private static final Map<String, Object> guests = new HashMap<>();

    /** The suite's cloud-kernel guest; a fetch failure skips every test of that suite with its reason. */
    private static synchronized GuestImage guest(String suite) throws GuestImageException {
        Object g = guests.get(suite);
        if (g == null) {
            DebianPackages.ResolvedKernel k;
            List<DebPackage> debs;
            DebPackage busybox;
            try {
                k = DebianPackages.resolve(KernelSource.cloud(suite));
                debs = DebianPackages.fetch(k);
                busybox = DebianPackages.fetch(DebianPackages.BUSYBOX, null, GuestImages.USERLAND_SUITE);
            } catch (GuestImageException e) {
                g = "Debian " + suite + " packages unavailable: " + e.getMessage();
                guests.put(suite, g);
                System.err.println("kernel versions: skipping " + suite + ": " + g);
                throw new TestAbortedException((String) g);
            }
            g = GuestImages.build(k.image().name(), k.image().version(), debs, busybox); // must not fail
            guests.put(suite, g);
            System.err.println("kernel versions: " + suite + ": " + k.image() + " (release " + ((GuestImage) g).kernelRelease() + ")");
        }
        if (g instanceof String reason) throw new TestAbortedException(reason);
        return (GuestImage) g;
    }

    private record Boot(String console, Outcome outcome) {
        String tail() { return console.length() <= 6000 ? console : "..." + console.substring(console.length() - 6000); }

        void isClean() {
            assertTrue(console.contains("polyvisor: exit status 0"), "/init's command failed or never ran\n" + tail());
            assertEquals(Outcome.Kind.POWEROFF, outcome.kind(), outcome.message() + "\n" + tail());
            List<String> bad = console.lines().filter(l -> UNCLEAN.matcher(l).find()).toList();
            assertTrue(bad.isEmpty(), "kernel log reports defects:\n" + String.join("\n", bad) + "\n" + tail());
            assertFalse(console.contains("polyvisor: insmod "), "a module did not load\n" + tail());
        }

        void shows(String s) { assertTrue(console.contains(s), "console lacks '" + s + "'\n" + tail()); }
    }

    private static Boot boot(String suite, String personality) throws Exception {
        GuestImage g = guest(suite);
        VmConfig cfg = VmConfig.of(g.kernel(), VmConfig.BootKind.LINUX)
                .withInitrd(g.initramfs())
                .withAppend(RunCommand.linuxCommandLine("loglevel=7", "true"))
                .withSmp(2)
                .withTimeout(TIMEOUT)
                .withPersonalities(List.of(personality.split("\\+")), List.of())
                // A disk, so that /init loads virtio_blk's modules as well as the entropy device's (it loads the drivers
                // of the functions present) and the clean-boot check covers them on every kernel.
                .withDisks(List.of(new VmConfig.Disk(scratchDisk(), false)));
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        Outcome o;
        try (Vm vm = new Vm(cfg, console)) {
            o = vm.run();
        }
        System.err.printf("kernel versions: %s (%s) %s smp 2: %s in %.1f s, %d instructions%n", suite, g.kernelRelease(), personality,
                o.kind(), o.wallNanos() / 1e9, o.instructions());
        Boot b = new Boot(console.toString(StandardCharsets.UTF_8), o);
        b.shows("Linux version " + g.kernelRelease());
        b.shows("[vda] 2048 512-byte logical blocks");
        return b;
    }

    /** A 1 MiB raw image, deleted when the JVM exits. */
    private static java.nio.file.Path scratchDisk() throws java.io.IOException {
        java.nio.file.Path p = java.nio.file.Files.createTempFile("kernel-versions", ".img");
        p.toFile().deleteOnExit();
        java.nio.file.Files.write(p, new byte[1 << 20]);
        return p;
    }

    @Test
    void trixie612BootsCleanUnderKvm() throws Exception {
        Boot b = boot("trixie", "kvm");
        b.isClean();
        b.shows("Booting paravirtualized kernel on KVM");
        b.shows("kvm-clock: Using msrs 4b564d01 and 4b564d00");
    }

    @Test
    void trixie612BootsCleanOnBareHardware() throws Exception {
        Boot b = boot("trixie", "bare");
        b.isClean();
        b.shows("Booting paravirtualized kernel on bare hardware");
    }

    @Test
    void sid7BootsCleanUnderKvm() throws Exception {
        Boot b = boot("sid", "kvm");
        b.isClean();
        b.shows("Booting paravirtualized kernel on KVM");
        b.shows("kvm-clock: Using msrs 4b564d01 and 4b564d00");
    }

    @Test
    void sid7BootsCleanOnBareHardware() throws Exception {
        Boot b = boot("sid", "bare");
        b.isClean();
        b.shows("Booting paravirtualized kernel on bare hardware");
    }
}
