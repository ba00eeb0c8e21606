package dev.polyvisor.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The cache key of a root filesystem image names every input, and --size reads like mke2fs's sizes. */
class RootfsSpecTest {
    static final List<String> SOURCES = RootfsSpec.bookwormSources("http://deb.debian.org/debian", "http://deb.debian.org/debian-security");

    static RootfsSpec spec() {
        return new RootfsSpec("bookworm", SOURCES, "minbase", RootfsSpec.PACKAGES, "linux-image-6.1.0-57-cloud-amd64",
                "6.1.192-3", "6.1.0-57-cloud-amd64", 2L << 30, RootfsLayoutTest.KEY);
    }

    @Test
    void keyIsAStableFileNameThatNamesSuiteAndKernel() {
        String k = spec().key();
        assertEquals(k, spec().key());
        assertTrue(k.matches("bookworm_6\\.1\\.0-57-cloud-amd64_[0-9a-f]{16}"), k);
    }

    @Test
    void everyInputChangesTheKey() {
        RootfsSpec s = spec();
        List<RootfsSpec> variants = List.of(
                new RootfsSpec("trixie", s.sources(), s.variant(), s.packages(), s.kernelPackage(), s.kernelVersion(), s.kernelRelease(), s.sizeBytes(), s.sshPublicKey()),
                new RootfsSpec(s.suite(), RootfsSpec.bookwormSources("http://mirror.example/debian", "http://deb.debian.org/debian-security"),
                        s.variant(), s.packages(), s.kernelPackage(), s.kernelVersion(), s.kernelRelease(), s.sizeBytes(), s.sshPublicKey()),
                new RootfsSpec(s.suite(), s.sources(), "important", s.packages(), s.kernelPackage(), s.kernelVersion(), s.kernelRelease(), s.sizeBytes(), s.sshPublicKey()),
                new RootfsSpec(s.suite(), s.sources(), s.variant(), List.of("systemd"), s.kernelPackage(), s.kernelVersion(), s.kernelRelease(), s.sizeBytes(), s.sshPublicKey()),
                new RootfsSpec(s.suite(), s.sources(), s.variant(), s.packages(), "linux-image-6.1.0-58-cloud-amd64", s.kernelVersion(), s.kernelRelease(), s.sizeBytes(), s.sshPublicKey()),
                new RootfsSpec(s.suite(), s.sources(), s.variant(), s.packages(), s.kernelPackage(), "6.1.192-4", s.kernelRelease(), s.sizeBytes(), s.sshPublicKey()),
                new RootfsSpec(s.suite(), s.sources(), s.variant(), s.packages(), s.kernelPackage(), s.kernelVersion(), "6.1.0-58-cloud-amd64", s.sizeBytes(), s.sshPublicKey()),
                new RootfsSpec(s.suite(), s.sources(), s.variant(), s.packages(), s.kernelPackage(), s.kernelVersion(), s.kernelRelease(), 3L << 30, s.sshPublicKey()),
                new RootfsSpec(s.suite(), s.sources(), s.variant(), s.packages(), s.kernelPackage(), s.kernelVersion(), s.kernelRelease(), s.sizeBytes(), "ssh-ed25519 AAAAother"));
        Set<String> keys = new HashSet<>(List.of(s.key()));
        for (RootfsSpec v : variants) assertTrue(keys.add(v.key()), "same key for " + v);
    }

    @Test
    void tooSmallImagesAndBadReleasesAreRefused() {
        RootfsSpec s = spec();
        assertThrows(IllegalArgumentException.class, () -> new RootfsSpec(s.suite(), s.sources(), s.variant(), s.packages(),
                s.kernelPackage(), s.kernelVersion(), s.kernelRelease(), RootfsSpec.MIN_SIZE - 1, s.sshPublicKey()));
        assertThrows(IllegalArgumentException.class, () -> new RootfsSpec(s.suite(), s.sources(), s.variant(), s.packages(),
                s.kernelPackage(), s.kernelVersion(), "../etc", s.sizeBytes(), s.sshPublicKey()));
    }

    @Test
    void sizesReadWithBinarySuffixes() {
        assertEquals(2L << 30, RootfsSpec.parseSize("2G"));
        assertEquals(1536L << 20, RootfsSpec.parseSize("1536M"));
        assertEquals(1536L << 20, RootfsSpec.parseSize("1536MiB"));
        assertEquals(4L << 30, RootfsSpec.parseSize("4g"));
        assertEquals(4294967296L, RootfsSpec.parseSize("4294967296"));
        assertEquals(1L << 40, RootfsSpec.parseSize("1T"));
        for (String bad : List.of("", "G", "-1G", "0", "2X", "1.5G", "99999999999999999999"))
            assertThrows(IllegalArgumentException.class, () -> RootfsSpec.parseSize(bad), bad);
    }

    @Test
    void bookwormSourcesCarryUpdatesAndSecurity() {
        assertEquals(List.of("deb http://deb.debian.org/debian bookworm main", "deb http://deb.debian.org/debian bookworm-updates main",
                "deb http://deb.debian.org/debian-security bookworm-security main"), SOURCES);
    }
}
