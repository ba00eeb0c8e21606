package dev.polyvisor.guest;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

class AptStateCacheTest {
    @TempDir Path dir;

    /** A query that counts its calls and answers with the call number. */
    private static AptStateCache.Query counting(AtomicInteger calls) {
        return () -> {
            Properties p = new Properties();
            p.setProperty("answer", "call " + calls.incrementAndGet());
            return p;
        };
    }

    @Test
    void anAnswerIsReusedUntilAnAptInputChanges() throws Exception {
        Path lists = Files.createDirectories(dir.resolve("lists")), status = dir.resolve("status");
        Path packages = Files.writeString(lists.resolve("deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"), "Package: a\n");
        Files.writeString(status, "Package: dpkg\n");
        AptStateCache cache = new AptStateCache(dir.resolve("cache/choice.properties"), List.of(lists, status, dir.resolve("no-such-etc")));
        AtomicInteger calls = new AtomicInteger();

        assertEquals("call 1", cache.get(counting(calls)).getProperty("answer"));
        assertEquals("call 1", cache.get(counting(calls)).getProperty("answer"), "same lists, same status: apt is not asked");
        assertEquals(1, calls.get());
        assertNull(cache.get(counting(calls)).getProperty("apt-state"), "the key is not part of the answer");

        Files.setLastModifiedTime(packages, FileTime.fromMillis(Files.getLastModifiedTime(packages).toMillis() + 1000));
        assertEquals("call 2", cache.get(counting(calls)).getProperty("answer"), "a list refreshed (apt-get update)");
        Files.writeString(status, "Package: dpkg\n\nPackage: busybox-static\n");
        assertEquals("call 3", cache.get(counting(calls)).getProperty("answer"), "a package installed");
        Files.writeString(lists.resolve("security.debian.org_Packages"), "Package: b\n");
        assertEquals("call 4", cache.get(counting(calls)).getProperty("answer"), "a new source's list");
        Files.createDirectories(dir.resolve("no-such-etc"));
        Files.writeString(dir.resolve("no-such-etc/preferences"), "Package: *\nPin: release a=trixie\nPin-Priority: 900\n");
        assertEquals("call 5", cache.get(counting(calls)).getProperty("answer"), "a pin that did not exist");
        assertEquals("call 5", cache.get(counting(calls)).getProperty("answer"));
    }

    @Test
    void aDamagedOrUnwritableCacheFileOnlyMeansAskingApt() throws Exception {
        Path lists = Files.createDirectories(dir.resolve("lists"));
        Files.writeString(lists.resolve("Packages"), "x");
        Path file = dir.resolve("choice.properties");
        AtomicInteger calls = new AtomicInteger();
        AptStateCache cache = new AptStateCache(file, List.of(lists));
        cache.get(counting(calls));
        Files.write(file, new byte[] {'\\', 'u', '1'}); // an invalid \\u escape: Properties.load throws
        assertEquals("call 2", cache.get(counting(calls)).getProperty("answer"));
        assertEquals("call 2", cache.get(counting(calls)).getProperty("answer"), "rewritten");

        Path blocked = Files.writeString(dir.resolve("a-file"), "not a directory");
        AptStateCache nowhere = new AptStateCache(blocked.resolve("choice.properties"), List.of(lists));
        assertEquals("call 3", nowhere.get(counting(calls)).getProperty("answer"));
        assertEquals("call 4", nowhere.get(counting(calls)).getProperty("answer"), "nothing stored, no error");
    }

    @Test
    void aDirectoryThisUserCannotReadIsNamedNotRead() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeFalse("root".equals(System.getProperty("user.name")), "root reads every directory");
        Path lists = Files.createDirectories(dir.resolve("lists"));
        Files.writeString(lists.resolve("Packages"), "x");
        Path partial = Files.createDirectories(lists.resolve("partial")); // _apt's, mode 0700, on a Debian host
        assertTrue(partial.toFile().setReadable(false, false) && partial.toFile().setExecutable(false, false));
        try {
            AptStateCache cache = new AptStateCache(dir.resolve("c.properties"), List.of(lists));
            assertNotNull(cache.digest());
            AtomicInteger calls = new AtomicInteger();
            cache.get(counting(calls));
            cache.get(counting(calls));
            assertEquals(1, calls.get());
        } finally {
            partial.toFile().setReadable(true);
            partial.toFile().setExecutable(true);
        }
    }

    @Test
    void theQuerysErrorReachesTheCaller() {
        AptStateCache cache = new AptStateCache(dir.resolve("c.properties"), List.of(dir));
        GuestImageException e = assertThrows(GuestImageException.class,
                () -> cache.get(() -> { throw new GuestImageException("apt has no installable version of busybox-static"); }));
        assertTrue(e.getMessage().contains("busybox-static"));
    }
}
