package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.vmm.boot.LoadException;
import dev.polyvisor.guest.InitramfsBuilder;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class InitrdImageTest {
    private static byte[] newc(String name, byte[] data) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        entry(o, name, data);
        entry(o, "TRAILER!!!", new byte[0]);
        return o.toByteArray();
    }

    private static void entry(ByteArrayOutputStream o, String name, byte[] data) {
        byte[] n = (name + "\0").getBytes(StandardCharsets.US_ASCII);
        String h = String.format("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1, 0100644, 0, 0, 1, 0,
                data.length, 0, 0, 0, 0, n.length, 0);
        o.writeBytes(h.getBytes(StandardCharsets.US_ASCII));
        o.writeBytes(n);
        while (o.size() % 4 != 0) o.write(0);
        o.writeBytes(data);
        while (o.size() % 4 != 0) o.write(0);
    }

    @Test
    void aCompleteNewcArchiveIsAccepted() throws Exception {
        InitrdImage.check(newc("init", "#!/bin/sh\n".getBytes()));
    }

    @Test
    void aTruncatedNewcArchiveIsAOneLineError() {
        byte[] full = newc("init", new byte[1000]);
        LoadException e = assertThrows(LoadException.class, () -> InitrdImage.check(Arrays.copyOf(full, 600)));
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    @Test
    void compressedImagesAreRecognisedByMagic() throws Exception {
        InitrdImage.check(new byte[] {0x1F, (byte) 0x8B, 8, 0});                              // gzip
        InitrdImage.check(new byte[] {(byte) 0xFD, '7', 'z', 'X', 'Z', 0, 0});                // xz
        InitrdImage.check(new byte[] {0x28, (byte) 0xB5, 0x2F, (byte) 0xFD, 0});              // zstd
    }

    @Test
    void garbageAndEmptyFilesAreRejected() {
        LoadException e = assertThrows(LoadException.class, () -> InitrdImage.check("hello world".getBytes()));
        assertTrue(e.getMessage().startsWith("initrd is neither a cpio archive"), e.getMessage());
        assertThrows(LoadException.class, () -> InitrdImage.check(new byte[0]));
    }

    @Test
    void theProjectsOwnInitramfsBuilderOutputPasses() throws Exception {
        InitramfsBuilder b = new InitramfsBuilder();
        b.file("/init", 0755, "#!/bin/sh\necho hi\n".getBytes());
        InitrdImage.check(b.build());
    }
}
