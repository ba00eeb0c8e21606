package dev.polyvisor.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The image builder's parts that need neither root nor the network. */
class RootfsImagesTest {
    @TempDir Path dir;

    /** A file with an ext4 superblock's magic and volume name where Linux's struct ext4_super_block has them. */
    private Path superblock(String label, int magic) throws Exception {
        Path f = dir.resolve("disk-" + label + "-" + magic + ".img");
        try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "rw")) {
            r.setLength(1 << 20);
            r.seek(1024 + 0x38);
            r.write(magic & 0xFF);
            r.write(magic >>> 8);
            r.seek(1024 + 0x78);
            r.write(label.getBytes(StandardCharsets.ISO_8859_1));
        }
        return f;
    }

    /** --out over an image a VM has as its disk (it holds the disk lock) is refused and left alone; a free one is copied. */
    @Test
    void copiesOnlyOverAnImageNoVmHolds() throws Exception {
        FileLockProbe.assumeLocks(dir);
        Path image = Files.write(dir.resolve("cached.img"), "new image".getBytes(StandardCharsets.US_ASCII));
        Path out = Files.write(dir.resolve("debian.img"), "the running VM's disk".getBytes(StandardCharsets.US_ASCII));
        try (var vmDisk = java.nio.channels.FileChannel.open(out, java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE);
             var lock = vmDisk.lock()) {
            GuestImageException e = assertThrows(GuestImageException.class, () -> RootfsImages.copy(image, out));
            assertEquals("--out " + out + ": the image is in use: a VM holds its lock (stop it, or give another file)", e.getMessage());
            assertEquals("the running VM's disk", Files.readString(out));
        }
        RootfsImages.copy(image, out);
        assertEquals("new image", Files.readString(out));
        Path fresh = dir.resolve("fresh.img");
        RootfsImages.copy(image, fresh);
        assertEquals("new image", Files.readString(fresh));
    }

    @Test
    void recognisesItsOwnLabelOnly() throws Exception {
        assertTrue(RootfsImages.isRootfs(superblock(RootfsSpec.LABEL, 0xEF53)));
        assertFalse(RootfsImages.isRootfs(superblock("scratch", 0xEF53)));
        assertFalse(RootfsImages.isRootfs(superblock(RootfsSpec.LABEL, 0x1234)));
        assertFalse(RootfsImages.isRootfs(superblock(RootfsSpec.LABEL + "x", 0xEF53)));
        assertFalse(RootfsImages.isRootfs(Files.write(dir.resolve("tiny"), new byte[100])));
        assertFalse(RootfsImages.isRootfs(dir.resolve("missing")));
    }

    @Test
    void mmdebstrapRunsInRootModeWithTheSpecAndTheLayoutHooks() {
        RootfsSpec s = RootfsSpecTest.spec();
        List<String> c = RootfsImages.mmdebstrapCommand(s, RootfsImages.BuildMode.ROOT, Path.of("/c/stage.tar"), Path.of("/c/rootfs.tar"));
        assertEquals(List.of("mmdebstrap", "--mode=root", "--format=tar", "--variant=minbase"), c.subList(0, 4));
        assertTrue(c.contains("--include=" + String.join(",", RootfsSpec.PACKAGES)), c.toString());
        assertTrue(c.contains("--customize-hook=tar-in /c/stage.tar /"), c.toString());
        assertTrue(c.contains("--customize-hook=chroot \"$1\" passwd --delete root"), c.toString());
        assertTrue(c.contains("--customize-hook=chroot \"$1\" depmod -a 6.1.0-57-cloud-amd64"), c.toString());
        // The files go in before the commands that need them (depmod needs the modules).
        assertTrue(c.indexOf("--customize-hook=tar-in /c/stage.tar /") < c.indexOf("--customize-hook=chroot \"$1\" depmod -a 6.1.0-57-cloud-amd64"));
        int suite = c.indexOf("bookworm");
        assertEquals("/c/rootfs.tar", c.get(suite + 1));
        assertEquals(s.sources(), c.subList(suite + 2, c.size()));
    }

    @Test
    void withoutRootMmdebstrapUnsharesAndMke2fsReadsTheTreeInTheSameNamespace() {
        List<String> c = RootfsImages.mmdebstrapCommand(RootfsSpecTest.spec(), RootfsImages.BuildMode.UNSHARE,
                Path.of("/c/stage.tar"), Path.of("/c/rootfs.tar"));
        assertEquals("--mode=unshare", c.get(1));
        List<String> mke2fs = RootfsImages.mke2fsCommand(Path.of("/t/ns"), Path.of("/t/rootfs.tar"));
        List<String> owned = RootfsImages.BuildMode.UNSHARE.asOwner(mke2fs);
        assertEquals(List.of("mmdebstrap", "--unshare-helper"), owned.subList(0, 2));
        assertEquals(mke2fs, owned.subList(2, owned.size()));
        assertEquals(mke2fs, RootfsImages.BuildMode.ROOT.asOwner(mke2fs));
    }

    /**
     * The image step for real, at a small size: the staged files, packed as root's, come out of mke2fs with
     * their modes, their contents, the label, and (when the test runs as root, who may give files away)
     * root's ownership; /dev is left out; the scratch tree is gone afterwards.
     */
    @Test
    void theImageStepMakesALabelledExt4WithTheTarballsOwnersAndModes() throws Exception {
        for (String tool : List.of("mke2fs", "debugfs", "tar"))
            org.junit.jupiter.api.Assumptions.assumeTrue(onPath(tool), tool + " is not installed (e2fsprogs, tar): skipped");
        Path stage = dir.resolve("img-stage"), work = dir.resolve("ns"), tar = dir.resolve("rootfs.tar");
        Files.createDirectories(stage.resolve("etc"));
        Files.createDirectories(stage.resolve("dev"));
        Files.writeString(stage.resolve("etc/hostname"), "polyvisor\n");
        Files.setPosixFilePermissions(stage.resolve("etc/hostname"), RootfsImages.permissions(0640));
        Files.writeString(stage.resolve("dev/null-ish"), "x");
        RootfsImages.tarAsRoot(stage, tar);
        Files.createDirectories(work);
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(work.resolve(RootfsImages.IMAGE_FILE).toFile(), "rw")) {
            f.setLength(16L << 20);
        }
        Process p = new ProcessBuilder(RootfsImages.mke2fsCommand(work, tar)).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        Path img = work.resolve(RootfsImages.IMAGE_FILE);
        assertTrue(RootfsImages.isRootfs(img));
        assertFalse(Files.exists(work.resolve("tree")), "the scratch tree is removed");
        String stat = debugfs(img, "stat /etc/hostname");
        assertTrue(stat.contains("Mode:  0640"), stat);
        assertEquals("polyvisor\n", debugfs(img, "cat /etc/hostname"));
        assertTrue(debugfs(img, "ls -l /dev").lines().noneMatch(l -> l.contains("null-ish")), "/dev is left out");
        if ("root".equals(System.getProperty("user.name"))) assertTrue(stat.contains("User:     0   Group:     0"), stat);
    }

    private static boolean onPath(String tool) {
        for (String d : (System.getenv().getOrDefault("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin").split(":"))
            if (!d.isEmpty() && Files.isExecutable(Path.of(d, tool))) return true;
        return false;
    }

    private static String debugfs(Path img, String request) throws Exception {
        Process p = new ProcessBuilder("debugfs", "-R", request, img.toString()).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor());
        return out;
    }

    @Test
    void shellQuotingSurvivesSpacesAndQuotes() {
        assertEquals("/plain/path.img", RootfsImages.shellQuote("/plain/path.img"));
        assertEquals("'/a b/c'", RootfsImages.shellQuote("/a b/c"));
        assertEquals("'it'\\''s'", RootfsImages.shellQuote("it's"));
    }

    @Test
    void moduleReleaseIsTheOneKernelInThePackages() throws Exception {
        assertEquals("6.1.0-57-cloud-amd64", RootfsImages.moduleRelease(List.of("boot/vmlinuz-6.1.0-57-cloud-amd64",
                "lib/modules/6.1.0-57-cloud-amd64/kernel/fs/ext4/ext4.ko", "lib/modules/6.1.0-57-cloud-amd64/modules.order"), "x"));
        assertEquals("7.2.13+deb14-cloud-amd64", RootfsImages.moduleRelease(List.of("usr/lib/modules/7.2.13+deb14-cloud-amd64/kernel/a.ko.xz"), "x"));
        assertThrows(GuestImageException.class, () -> RootfsImages.moduleRelease(List.of("lib/modules/a/kernel/x.ko", "lib/modules/b/kernel/y.ko"), "x"));
        assertThrows(GuestImageException.class, () -> RootfsImages.moduleRelease(List.of("boot/vmlinuz-1"), "x"));
    }

    @Test
    void stagingWritesFilesWithTheirModesAndModulesUnderUsrLib() throws Exception {
        Path stage = dir.resolve("stage");
        Map<String, byte[]> modules = new LinkedHashMap<>();
        modules.put("lib/modules/6.1.0-9-cloud-amd64/kernel/fs/ext4/ext4.ko", new byte[] {1, 2, 3});
        modules.put("lib/modules/6.1.0-9-cloud-amd64/modules.builtin", "kernel/fs/unix.ko\n".getBytes(StandardCharsets.UTF_8));
        modules.put("lib/modules/other/kernel/x.ko", new byte[] {9});
        RootfsImages.stage(stage, RootfsLayout.files(RootfsLayoutTest.KEY), "6.1.0-9-cloud-amd64", modules);
        assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(stage.resolve("usr/lib/modules/6.1.0-9-cloud-amd64/kernel/fs/ext4/ext4.ko")));
        assertTrue(Files.isRegularFile(stage.resolve("usr/lib/modules/6.1.0-9-cloud-amd64/modules.builtin")));
        assertFalse(Files.exists(stage.resolve("usr/lib/modules/other")));
        assertEquals("rwxr-xr-x", PosixFilePermissions.toString(Files.getPosixFilePermissions(stage.resolve("usr/local/sbin/polyvisor-exec"))));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(stage.resolve("root/.ssh/authorized_keys"))));
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(stage.resolve("root/.ssh"))));
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(stage.resolve("root"))));
        assertEquals("rwxr-xr-x", PosixFilePermissions.toString(Files.getPosixFilePermissions(stage.resolve("etc"))));
        assertEquals("rw-r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(stage.resolve("etc/fstab"))));
    }

    @Test
    void permissionBitsMapOntoPosixPermissions() {
        assertEquals("rwxr-x--x", PosixFilePermissions.toString(RootfsImages.permissions(0751)));
        assertEquals("---------", PosixFilePermissions.toString(RootfsImages.permissions(0)));
    }
}
