package dev.polyvisor.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** --kernel-package and --suite on run and image: malformed requests are refused before anything is fetched. */
class KernelPackageOptionsTest {
    @TempDir Path dir;

    private static CliRun.Result run(String... args) { return CliRun.run(args); }

    private static void assertOneLineUsageError(CliRun.Result r, String expected) {
        assertEquals(RunCommand.USAGE, r.status(), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("polyvisor: " + expected), r.err());
        assertEquals("", r.out());
    }

    @Test
    void anUnknownSuiteNamesTheValidOnes() {
        String msg = "--suite: unknown suite 'buster': valid suites are bookworm, bookworm-backports, trixie, sid, experimental";
        assertOneLineUsageError(run("run", "--suite", "buster", "--exec", "true"), msg);
        assertOneLineUsageError(run("image", "--suite", "buster"), msg);
        assertOneLineUsageError(run("image", "--kernel-package", "linux-image-cloud-amd64", "--suite", "stretch"),
                "--suite: unknown suite 'stretch'");
    }

    @Test
    void aMalformedPackageIsRefused() {
        assertOneLineUsageError(run("run", "--kernel-package", "linux image", "--suite", "sid"),
                "--kernel-package: not a Debian package name: 'linux image'");
        assertOneLineUsageError(run("image", "--kernel-package", "linux-image-cloud-amd64=", "--suite", "sid"),
                "--kernel-package: empty version in 'linux-image-cloud-amd64='");
    }

    @Test
    void theFlagsChooseTheLinuxGuestsKernelOnly() throws Exception {
        Path k = Files.write(dir.resolve("k.bin"), new byte[] {(byte) 0xF4});
        assertOneLineUsageError(run("run", "--kernel", k.toString(), "--suite", "sid"),
                "--kernel-package and --suite choose the Linux guest's kernel: drop --kernel and --boot multiboot/flat");
        assertOneLineUsageError(run("run", "--boot", "multiboot", "--kernel-package", "linux-image-cloud-amd64"),
                "--kernel-package and --suite choose the Linux guest's kernel");
    }
}
