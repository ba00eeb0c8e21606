package dev.polyvisor.guest;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.apache.commons.compress.archivers.ar.ArArchiveEntry;
import org.apache.commons.compress.archivers.ar.ArArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.tukaani.xz.LZMA2Options;
import org.tukaani.xz.XZOutputStream;

/** Builds small Debian packages and kernel modules shaped like the real ones. */
final class SyntheticDebs {
    private SyntheticDebs() {}

    /** A .deb (ar: debian-binary, control.tar.xz, data.tar.&lt;ext&gt;) with ./-prefixed tar paths, as dpkg-deb writes. */
    static Path deb(Path dir, String name, String version, Map<String, byte[]> files, String dataExt) throws IOException {
        byte[] control = ("Package: " + name + "\nVersion: " + version + "\nArchitecture: amd64\nDescription: test\n continued line\n")
                .getBytes(StandardCharsets.UTF_8);
        Path deb = dir.resolve(name + "_" + version + "_amd64.deb");
        try (OutputStream os = Files.newOutputStream(deb); ArArchiveOutputStream ar = new ArArchiveOutputStream(os)) {
            member(ar, "debian-binary", "2.0\n".getBytes(StandardCharsets.US_ASCII));
            member(ar, "control.tar.xz", xz(tar(Map.of("control", control))));
            byte[] data = tar(files);
            member(ar, "data.tar." + dataExt, dataExt.equals("xz") ? xz(data) : data);
        }
        return deb;
    }

    private static void member(ArArchiveOutputStream ar, String name, byte[] data) throws IOException {
        ar.putArchiveEntry(new ArArchiveEntry(name, data.length));
        ar.write(data);
        ar.closeArchiveEntry();
    }

    static byte[] tar(Map<String, byte[]> files) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(out)) {
            tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_GNU);
            TarArchiveEntry dot = new TarArchiveEntry("./");
            tar.putArchiveEntry(dot);
            tar.closeArchiveEntry();
            for (var e : new java.util.TreeMap<>(files).entrySet()) {
                TarArchiveEntry t = new TarArchiveEntry("./" + e.getKey());
                t.setSize(e.getValue().length);
                tar.putArchiveEntry(t);
                tar.write(e.getValue());
                tar.closeArchiveEntry();
            }
        }
        return out.toByteArray();
    }

    static byte[] xz(byte[] data) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            try (XZOutputStream x = new XZOutputStream(out, new LZMA2Options(1))) { x.write(data); }
            return out.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A relocatable ELF64 with sections [null, .modinfo, .shstrtab], like a .ko. */
    static byte[] module(String name, String depends) {
        byte[] modinfo = ("license=GPL\0depends=" + depends + "\0name=" + name + "\0vermagic=6.1.0 SMP mod_unload\0")
                .getBytes(StandardCharsets.US_ASCII);
        byte[] shstr = "\0.modinfo\0.shstrtab\0".getBytes(StandardCharsets.US_ASCII);
        int modOff = 0x40, strOff = modOff + modinfo.length, shOff = (strOff + shstr.length + 7) & ~7;
        ByteBuffer b = ByteBuffer.allocate(shOff + 3 * 64).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {0x7F, 'E', 'L', 'F', 2, 1, 1});
        b.putShort(0x10, (short) 1).putShort(0x12, (short) 62).putInt(0x14, 1);
        b.putLong(0x28, shOff).putShort(0x34, (short) 64).putShort(0x3A, (short) 64).putShort(0x3C, (short) 3).putShort(0x3E, (short) 2);
        b.put(modOff, modinfo).put(strOff, shstr);
        int sh1 = shOff + 64, sh2 = shOff + 128;
        b.putInt(sh1, 1).putInt(sh1 + 4, 1).putLong(sh1 + 24, modOff).putLong(sh1 + 32, modinfo.length);
        b.putInt(sh2, 10).putInt(sh2 + 4, 3).putLong(sh2 + 24, strOff).putLong(sh2 + 32, shstr.length);
        return b.array();
    }
}
