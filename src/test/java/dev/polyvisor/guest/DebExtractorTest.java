package dev.polyvisor.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DebExtractorTest {
    @TempDir Path dir;

    @Test
    void readsSelectedDataFilesFromAnXzPackage() throws Exception {
        Path deb = SyntheticDebs.deb(dir, "busybox-static", "1:1.35.0-4", Map.of(
                "bin/busybox", "ELF-busybox".getBytes(StandardCharsets.US_ASCII),
                "usr/share/doc/busybox-static/copyright", "GPL".getBytes(StandardCharsets.US_ASCII)), "xz");
        Map<String, byte[]> files = DebExtractor.dataFiles(deb, p -> p.startsWith("bin/"));
        assertEquals(java.util.Set.of("bin/busybox"), files.keySet());
        assertEquals("ELF-busybox", new String(files.get("bin/busybox"), StandardCharsets.US_ASCII));
    }

    @Test
    void readsTheControlFields() throws Exception {
        Path deb = SyntheticDebs.deb(dir, "linux-image-6.1.0-56-cloud-amd64", "6.1.192-2", Map.of(), "tar");
        Map<String, String> c = DebExtractor.control(deb);
        assertEquals("linux-image-6.1.0-56-cloud-amd64", c.get("Package"));
        assertEquals("6.1.192-2", c.get("Version"));
        assertEquals("test\ncontinued line", c.get("Description"));
        DebPackage p = DebPackage.of(deb);
        assertEquals("6.1.192-2", p.version());
    }

    @Test
    void rejectsAFileThatIsNotAPackage() throws Exception {
        Path junk = Files.writeString(dir.resolve("junk.deb"), "this is not an ar archive");
        String m = assertThrows(GuestImageException.class, () -> DebExtractor.dataFiles(junk, p -> true)).getMessage();
        assertTrue(m.startsWith(junk + ": cannot read package"), m);
        String missing = assertThrows(GuestImageException.class, () -> DebExtractor.dataFiles(dir.resolve("none.deb"), p -> true)).getMessage();
        assertEquals(dir.resolve("none.deb") + ": no such file", missing);
    }

    @Test
    void refusesZstdDataWithAReason() throws Exception {
        Path deb = SyntheticDebs.deb(dir, "x", "1", Map.of("a", new byte[1]), "zst");
        String m = assertThrows(GuestImageException.class, () -> DebExtractor.dataFiles(deb, p -> true)).getMessage();
        assertTrue(m.endsWith("data.tar.zst uses a compression this reader does not support (xz, gz or none)"), m);
    }
}
