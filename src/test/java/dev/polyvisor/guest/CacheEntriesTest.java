package dev.polyvisor.guest;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Which cache entries a new build supersedes, and that removing them is best effort ({@link CacheEntries}). */
class CacheEntriesTest {
    @TempDir Path cache;
    private final ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
    private final PrintStream err = new PrintStream(errBytes, true, StandardCharsets.UTF_8);
    private static final long T0 = 1_700_000_000_000L;

    private List<String> errLines() { return errBytes.toString(StandardCharsets.UTF_8).lines().toList(); }

    @Test
    void aKernelSeriesIsMajorMinorDistributionTagAndFlavour() {
        assertEquals("6.1-cloud-amd64", CacheEntries.kernelSeries("6.1.0-57-cloud-amd64"));
        assertEquals("6.1-cloud-amd64", CacheEntries.kernelSeries("6.1.0-50-cloud-amd64"), "an ABI bump stays in the series");
        assertEquals("6.12+deb13-cloud-amd64", CacheEntries.kernelSeries("6.12.118+deb13-cloud-amd64"));
        assertEquals("6.12+deb12-cloud-amd64", CacheEntries.kernelSeries("6.12.95+deb12-cloud-amd64"), "backports is another series");
        assertEquals("6.5+deb12-cloud-amd64", CacheEntries.kernelSeries("6.5.0-0.deb12.4-cloud-amd64"));
        assertEquals("7.3-cloud-amd64", CacheEntries.kernelSeries("7.3-cloud-amd64"));
        assertEquals("6.1-rt-amd64", CacheEntries.kernelSeries("6.1.0-57-rt-amd64"), "another flavour is another series");
        assertEquals("weird", CacheEntries.kernelSeries("weird"));
    }

    /** A guest entry as GuestImages publishes it, built at T0 + {@code age} minutes, with 64 KiB of kernel. */
    private Path guest(String release, int init, int minute) throws Exception {
        Path d = Files.createDirectory(cache.resolve("linux-image-" + release + "_1+busybox_1+init" + init));
        Files.write(d.resolve(GuestImages.KERNEL_FILE), new byte[64 << 10]);
        Files.write(d.resolve(GuestImages.INITRAMFS_FILE), new byte[1024]);
        Path info = d.resolve(GuestImages.INFO_FILE);
        Files.writeString(info, "release=" + release + "\nkernelPackage=linux-image-" + release + "\n");
        Files.setLastModifiedTime(info, FileTime.fromMillis(T0 + minute * 60_000L));
        return d;
    }

    private CacheEntries.Outcome pruneGuests(Path current) {
        return CacheEntries.prune(cache, current, GuestImages.INFO_FILE, GuestImages::line, "guest image", err);
    }

    @Test
    void olderEntriesOfTheSeriesGoTheNewestSupersededOneAndEverythingElseStays() throws Exception {
        Path abiBefore = guest("6.1.0-50-cloud-amd64", 5, 1);
        Path older = guest("6.1.0-57-cloud-amd64", 6, 2);
        Path previous = guest("6.1.0-57-cloud-amd64", 7, 3);
        Path trixie = guest("6.12.118+deb13-cloud-amd64", 6, 0);
        Path current = guest("6.1.0-57-cloud-amd64", 8, 4);
        Path building = Files.createDirectory(cache.resolve(".build-123"));
        Path notes = Files.writeString(cache.resolve("notes.txt"), "mine");
        Path noEntry = Files.createDirectory(cache.resolve("something-else"));

        CacheEntries.Outcome o = pruneGuests(current);

        assertEquals(List.of(), o.failures());
        assertEquals(2, o.removed().size(), o.toString());
        assertTrue(o.removed().containsAll(List.of(abiBefore, older)));
        assertFalse(Files.exists(abiBefore));
        assertFalse(Files.exists(older));
        for (Path kept : List.of(current, previous, trixie, building, notes, noEntry)) assertTrue(Files.exists(kept), kept + " stays");
        assertFalse(Files.list(cache).anyMatch(p -> p.getFileName().toString().startsWith(CacheEntries.PRUNE_PREFIX)), "no hidden leftovers");
        List<String> lines = errLines();
        assertEquals(2, lines.size(), lines.toString());
        for (String l : lines) assertTrue(l.matches("polyvisor: removed the superseded guest image linux-image-6\\.1\\.0-5[07]\\S+ \\(\\d+ KiB freed\\)"), l);
    }

    @Test
    void rootFilesystemsOfAnotherSuiteOrSizeAreNotSuperseded() throws Exception {
        Path old = rootfs("a", "bookworm", "6.1.0-50-cloud-amd64", 2L << 30, 1);
        Path previous = rootfs("b", "bookworm", "6.1.0-57-cloud-amd64", 2L << 30, 2);
        Path bigger = rootfs("c", "bookworm", "6.1.0-50-cloud-amd64", 4L << 30, 0);
        Path otherKernel = rootfs("d", "bookworm", "6.12.95+deb12-cloud-amd64", 2L << 30, 0);
        Path current = rootfs("e", "bookworm", "6.1.0-57-cloud-amd64", 2L << 30, 3);
        Path key = Files.writeString(cache.resolve(RootfsImages.SSH_KEY), "key");
        Path failedLog = Files.writeString(cache.resolve("bookworm_x.log"), "E: failed");

        CacheEntries.Outcome o = CacheEntries.prune(cache, current, RootfsImages.INFO_FILE, RootfsImages::line, "root filesystem", err);

        assertEquals(List.of(old), o.removed());
        for (Path kept : List.of(previous, bigger, otherKernel, current, key, failedLog)) assertTrue(Files.exists(kept), kept + " stays");
        assertTrue(errLines().getFirst().startsWith("polyvisor: removed the superseded root filesystem a ("), errLines().toString());
    }

    private Path rootfs(String name, String suite, String release, long size, int minute) throws Exception {
        Path d = Files.createDirectory(cache.resolve(name));
        Files.write(d.resolve(RootfsImages.IMAGE_FILE), new byte[4096]);
        Path info = d.resolve(RootfsImages.INFO_FILE);
        Files.writeString(info, "suite=" + suite + "\nrelease=" + release + "\nsize=" + size + "\n");
        Files.setLastModifiedTime(info, FileTime.fromMillis(T0 + minute * 60_000L));
        return d;
    }

    @Test
    void anEntryAProcessHasOpenIsKept() throws Exception {
        Path old = guest("6.1.0-57-cloud-amd64", 5, 1);
        guest("6.1.0-57-cloud-amd64", 6, 2);
        Path current = guest("6.1.0-57-cloud-amd64", 7, 3);
        // As a VM booted from the cache's own image holds its disk open.
        try (FileChannel disk = FileChannel.open(old.resolve(GuestImages.KERNEL_FILE))) {
            CacheEntries.Outcome o = pruneGuests(current);
            assertEquals(List.of(old), o.inUse());
            assertEquals(List.of(), o.removed());
        }
        assertTrue(Files.exists(old));
        assertTrue(errLines().getFirst().contains("process " + ProcessHandle.current().pid() + " has vmlinuz open"), errLines().toString());
    }

    /** A cache item without info file (a directory with one file, or a file), last modified at T0 + {@code minute}. */
    private Path item(String name, boolean directory, int minute) throws Exception {
        Path p = cache.resolve(name);
        if (directory) {
            Files.createDirectory(p);
            Files.write(p.resolve("default-guest.elf"), new byte[4096]);
        } else {
            Files.write(p, new byte[4096]);
        }
        Files.setLastModifiedTime(p, FileTime.fromMillis(T0 + minute * 60_000L));
        return p;
    }

    @Test
    void builtFromSourcesDirectoriesOfAnOlderHashGoButTheNewestOfThem() throws Exception {
        Path oldest = item("default-guest-1111", true, 1), previous = item("default-guest-2222", true, 2);
        Path workloads = item("workloads-3333", true, 0);
        Path leftover = item(CacheEntries.PRUNE_PREFIX + "default-guest-0000", true, 0);
        Path current = item("default-guest-4444", true, 3);
        CacheEntries.Outcome o = CacheEntries.pruneSiblings(cache, current, "default-guest-", "", CacheEntries.KEEP, "default guest build", err);
        assertEquals(List.of(cache.resolve("default-guest-0000"), oldest), o.removed());
        assertFalse(Files.exists(oldest));
        assertFalse(Files.exists(leftover));
        assertTrue(Files.exists(previous), "the newest superseded one stays");
        assertTrue(Files.exists(current));
        assertTrue(Files.exists(workloads), "another prefix is not judged");
        assertTrue(errLines().stream().anyMatch(l -> l.matches("polyvisor: removed the superseded default guest build default-guest-1111 \\(\\d+ KiB freed\\)")),
                errLines().toString());
    }

    @Test
    void workloadInitramfsFilesUsedLeastRecentlyGoAndTemporariesStay() throws Exception {
        Path[] img = new Path[5];
        for (int i = 0; i < 5; i++) img[i] = item("initramfs-" + i + ".img", false, i);
        Path building = item("initramfs-123.tmp", false, 0);
        CacheEntries.touch(img[0]); // used again just now: the most recent
        Path current = item("initramfs-new.img", false, 10);
        CacheEntries.Outcome o = CacheEntries.pruneSiblings(cache, current, "initramfs-", ".img", 3, "workload initramfs", err);
        assertEquals(List.of(img[1], img[2]), o.removed().stream().sorted().toList());
        for (Path p : List.of(img[0], img[3], img[4], building, current)) assertTrue(Files.exists(p), p.toString());
    }

    @Test
    void aRemovalLeftHalfDoneIsFinishedByTheNextPrune() throws Exception {
        Path leftover = Files.createDirectory(cache.resolve(CacheEntries.PRUNE_PREFIX + "linux-image-old"));
        Files.write(leftover.resolve("vmlinuz"), new byte[8192]);
        CacheEntries.Outcome o = pruneGuests(guest("6.1.0-57-cloud-amd64", 8, 1));
        assertFalse(Files.exists(leftover));
        assertEquals(List.of(cache.resolve("linux-image-old")), o.removed());
    }

    @Test
    void anEntryWithoutInfoOrAMissingCacheIsNoError() throws Exception {
        assertEquals(new CacheEntries.Outcome(List.of(), List.of(), List.of()), pruneGuests(cache.resolve("absent")));
        CacheEntries.Outcome o = CacheEntries.prune(cache.resolve("no-such-dir"), cache.resolve("no-such-dir/x"),
                GuestImages.INFO_FILE, GuestImages::line, "guest image", err);
        assertEquals(List.of(), o.removed());
        assertEquals(List.of(), errLines());
    }

    private static boolean root() throws Exception {
        return Integer.valueOf(0).equals(Files.getAttribute(Path.of("/proc/self"), "unix:uid"));
    }

    /** The cache keeps every entry and the prune reports one line for the one it could not remove, without throwing. */
    private void assertFailureIsReportedNotThrown(Path old, Path previous, Path current) {
        CacheEntries.Outcome o = assertDoesNotThrow(() -> pruneGuests(current));
        assertEquals(List.of(), o.removed());
        assertEquals(1, o.failures().size(), o.toString());
        assertTrue(o.failures().getFirst().startsWith("polyvisor: could not remove the superseded guest image " + old), o.failures().getFirst());
        assertEquals(o.failures(), errLines());
        for (Path p : List.of(old, previous, current)) assertTrue(Files.exists(p), p + " stays");
    }

    @Test
    void aReadOnlyCacheDirectoryIsReportedAndTheNewImageStands() throws Exception {
        assumeFalse(root(), "skipped: running as root, which may rename entries of a read-only directory anyway "
                + "(the immutable-attribute test covers root)");
        Path old = guest("6.1.0-57-cloud-amd64", 5, 1), previous = guest("6.1.0-57-cloud-amd64", 6, 2);
        Path current = guest("6.1.0-57-cloud-amd64", 7, 3);
        Files.setPosixFilePermissions(cache, PosixFilePermissions.fromString("r-xr-xr-x"));
        try {
            assertFailureIsReportedNotThrown(old, previous, current);
        } finally {
            Files.setPosixFilePermissions(cache, PosixFilePermissions.fromString("rwx------"));
        }
    }

    private static int chattr(String flag, Path p) throws Exception {
        Process c = new ProcessBuilder("chattr", flag, p.toString()).redirectErrorStream(true).start();
        c.getInputStream().readAllBytes();
        return c.waitFor(10, TimeUnit.SECONDS) ? c.exitValue() : -1;
    }

    @Test
    void anImmutableEntryIsReportedAndTheNewImageStands() throws Exception {
        Path old = guest("6.1.0-57-cloud-amd64", 5, 1), previous = guest("6.1.0-57-cloud-amd64", 6, 2);
        Path current = guest("6.1.0-57-cloud-amd64", 7, 3);
        assumeTrue(chattr("+i", old) == 0, "skipped: chattr +i needs root (CAP_LINUX_IMMUTABLE) and a filesystem with the attribute");
        try {
            assertFailureIsReportedNotThrown(old, previous, current);
            assertTrue(errLines().getFirst().endsWith(": Operation not permitted"), errLines().toString());
        } finally {
            chattr("-i", old);
        }
    }

    @Test
    void theLinesOfGuestsAndRootFilesystems() {
        assertEquals("6.1-cloud-amd64", GuestImages.line(Map.of("release", "6.1.0-57-cloud-amd64")));
        assertNull(GuestImages.line(Map.of()));
        assertEquals("bookworm 6.1-cloud-amd64 2147483648",
                RootfsImages.line(Map.of("suite", "bookworm", "release", "6.1.0-57-cloud-amd64", "size", "2147483648")));
        assertNull(RootfsImages.line(Map.of("suite", "bookworm", "release", "6.1.0-57-cloud-amd64")));
    }
}
