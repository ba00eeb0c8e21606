package dev.polyvisor.guest;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class InitramfsBuilderTest {
    @Test
    void writesNewcEntriesThatAnIndependentReaderAccepts() throws Exception {
        byte[] cpio = new InitramfsBuilder()
                .charDevice("/dev/console", 0600, 5, 1)
                .file("/bin/busybox", 0755, new byte[] {0x7F, 'E', 'L', 'F', 9})
                .symlink("/bin/sh", "busybox")
                .file("/init", 0755, "#!/bin/sh\necho hi\n")
                .build();
        Map<String, CpioReader.Entry> e = CpioReader.read(cpio);
        // Parents come first and automatically.
        assertEquals(List.of("dev", "dev/console", "bin", "bin/busybox", "bin/sh", "init"), List.copyOf(e.keySet()));
        var console = e.get("dev/console").header();
        assertTrue(console.isCharacterDevice());
        assertEquals(5, console.getRemoteDeviceMaj());
        assertEquals(1, console.getRemoteDeviceMin());
        assertEquals(0020600, console.getMode());
        assertTrue(e.get("dev").header().isDirectory());
        assertEquals(0040755, e.get("dev").header().getMode());
        assertEquals(0100755, e.get("bin/busybox").header().getMode());
        assertArrayEquals(new byte[] {0x7F, 'E', 'L', 'F', 9}, e.get("bin/busybox").data());
        assertTrue(e.get("bin/sh").header().isSymbolicLink());
        assertEquals("busybox", new String(e.get("bin/sh").data(), StandardCharsets.UTF_8));
        assertEquals("#!/bin/sh\necho hi\n", new String(e.get("init").data(), StandardCharsets.UTF_8));
        assertEquals(0, e.get("init").header().getUID());
        assertEquals(0, cpio.length % 4);
        // The archive ends with the trailer entry.
        String tail = new String(cpio, cpio.length - 124, 124, StandardCharsets.US_ASCII);
        assertTrue(tail.contains("TRAILER!!!"));
    }

    @Test
    void headerIsTheExactNewcLayout() {
        byte[] cpio = new InitramfsBuilder().file("/a", 0644, "xyz").build();
        String h = new String(cpio, 0, 110, StandardCharsets.US_ASCII);
        // magic, ino 1, mode 0100644, uid, gid, nlink 1, mtime, filesize 3, devmaj/min, rdevmaj/min, namesize 2, check
        assertEquals("070701" + "00000001" + "000081a4" + "00000000" + "00000000" + "00000001" + "00000000" + "00000003"
                + "00000000" + "00000000" + "00000000" + "00000000" + "00000002" + "00000000", h);
        assertEquals('a', cpio[110]);
        assertEquals(0, cpio[111]);
        assertEquals("xyz", new String(cpio, 112, 3, StandardCharsets.US_ASCII)); // 110+2 is already 4-aligned
        assertEquals(0, cpio[115]);
    }

    @Test
    void isReproducibleAndReplacesDuplicates() throws Exception {
        InitramfsBuilder b = new InitramfsBuilder().file("/x", 0644, "one").file("/x", 0600, "two");
        assertArrayEquals(b.build(), b.build());
        var e = CpioReader.read(b.build());
        assertEquals("two", new String(e.get("x").data(), StandardCharsets.UTF_8));
        assertEquals(0100600, e.get("x").header().getMode());
    }

    @Test
    void rejectsBadPathsAndFilesUsedAsDirectories() {
        InitramfsBuilder b = new InitramfsBuilder();
        for (String bad : new String[] {"relative", "/", "/a/", "/a//b", "/a/../b", "/a/./b"})
            assertThrows(IllegalArgumentException.class, () -> b.file(bad, 0644, "x"), bad);
        b.file("/f", 0644, "x");
        assertEquals("initramfs: /f is not a directory", assertThrows(IllegalArgumentException.class, () -> b.file("/f/g", 0644, "y")).getMessage());
    }
}
