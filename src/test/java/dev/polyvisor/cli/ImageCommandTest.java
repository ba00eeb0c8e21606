package dev.polyvisor.cli;

import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImages;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code polyvisor image}'s flags: bad combinations and sizes are one line and status 2, before anything is
 * built; {@code --if-cached} (the launcher's question before it trains the JVM's AOT cache on a boot) never
 * builds.
 */
class ImageCommandTest {
    private static void assertUsage(CliRun.Result r, String expected) {
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().startsWith("polyvisor: " + expected), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        assertEquals("", r.out());
    }

    @Test
    void outAndSizeNeedRootfs() {
        assertUsage(CliRun.run("image", "--size", "1G"), "--size needs --rootfs");
        assertUsage(CliRun.run("image", "--out", "x.img"), "--out needs --rootfs");
    }

    @Test
    void sizesAreCheckedBeforeAnythingIsFetched() {
        assertUsage(CliRun.run("image", "--rootfs", "--size", "100M"), "--size 100M: a root filesystem needs at least 768M");
        assertUsage(CliRun.run("image", "--rootfs", "--size", "2X"), "--size: a size like 2G");
    }

    @Test
    void ifCachedIsForTheDefaultGuestOnly() {
        assertUsage(CliRun.run("image", "--if-cached", "--rootfs"), "--if-cached is for the default guest");
    }

    @Test
    void ifCachedWithAnEmptyCacheSaysSoAndBuildsNothing(@TempDir Path cache) throws Exception {
        String old = System.getProperty("polyvisor.cache");
        System.setProperty("polyvisor.cache", cache.toString());
        try {
            CliRun.Result r = CliRun.run("image", "--if-cached");
            assertEquals(1, r.status(), r.err());
            assertEquals("", r.out());
            assertTrue(r.err().startsWith("polyvisor: the default guest is not built yet"), r.err());
            try (var files = Files.walk(cache)) {
                assertTrue(files.noneMatch(f -> f.toString().endsWith(".deb") || f.toString().contains("vmlinuz")),
                        "nothing was downloaded or built");
            }
        } finally {
            if (old == null) System.clearProperty("polyvisor.cache"); else System.setProperty("polyvisor.cache", old);
        }
    }

    @Test
    @Tag("linux")
    void ifCachedPrintsTheBuiltDefaultGuest() throws Exception {
        GuestImage g = GuestImages.defaultGuest();
        CliRun.Result r = CliRun.run("image", "--if-cached");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("kernel=" + g.kernel() + "\n"), r.out());
        assertTrue(r.out().contains("initramfs=" + g.initramfs() + "\n"), r.out());
    }
}
