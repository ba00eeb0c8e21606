package dev.polyvisor.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** {@code polyvisor image}'s --rootfs flags: bad combinations and sizes are one line and status 2, before anything is built. */
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
}
