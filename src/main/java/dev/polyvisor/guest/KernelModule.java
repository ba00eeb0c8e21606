package dev.polyvisor.guest;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.tukaani.xz.XZInputStream;

/**
 * One loadable kernel module as shipped in a kernel package: its path under
 * {@code lib/modules/<release>/}, its bytes (kept as shipped: plain or .ko.xz) and the module
 * names it depends on, read from the {@code depends=} tag of its {@code .modinfo} ELF section
 * (what depmod(8) reads to write modules.dep; Debian's package ships no modules.dep).
 */
public record KernelModule(String name, String path, byte[] data, List<String> depends) {

    /** Parses a .ko or .ko.xz; {@code path} is relative to lib/modules/&lt;release&gt;/. */
    public static KernelModule parse(String path, byte[] data) throws GuestImageException {
        byte[] elf = data;
        if (path.endsWith(".xz")) {
            try (var in = new XZInputStream(new ByteArrayInputStream(data))) {
                elf = in.readAllBytes();
            } catch (IOException e) {
                throw new GuestImageException(path + ": corrupt xz-compressed module: " + DebExtractor.oneLine(e), e);
            }
        }
        String name = null;
        List<String> depends = List.of();
        for (String tag : modinfo(path, elf)) {
            if (tag.startsWith("name=")) name = tag.substring(5);
            else if (tag.startsWith("depends=")) {
                String v = tag.substring(8);
                depends = v.isEmpty() ? List.of() : List.of(v.split(","));
            }
        }
        if (name == null) name = moduleNameOf(path);
        return new KernelModule(name, path, data, depends);
    }

    /**
     * The module as the initramfs carries it: an uncompressed ELF object. Debian compresses modules with
     * xz from 6.12 on; busybox insmod hands the file to finit_module(2) first, which a kernel only
     * decompresses when asked with MODULE_INIT_COMPRESSED_FILE (kernel/module/main.c), so every module
     * would first be refused ("Invalid ELF header magic") and then decompressed by busybox inside the
     * guest, seconds of emulated xz. Decompressing once on the host avoids both.
     */
    public byte[] elf() throws GuestImageException {
        if (!path.endsWith(".xz")) return data;
        try (var in = new XZInputStream(new ByteArrayInputStream(data))) {
            return in.readAllBytes();
        } catch (IOException e) {
            throw new GuestImageException(path + ": corrupt xz-compressed module: " + DebExtractor.oneLine(e), e);
        }
    }

    /** Where {@link #elf()} is installed under lib/modules/&lt;release&gt;/: the path without ".xz". */
    public String installedPath() {
        return path.endsWith(".xz") ? path.substring(0, path.length() - 3) : path;
    }

    /** "kernel/drivers/char/hw_random/virtio-rng.ko" to "virtio_rng", as kmod normalizes names. */
    public static String moduleNameOf(String path) {
        String file = path.substring(path.lastIndexOf('/') + 1);
        int dot = file.indexOf(".ko");
        if (dot >= 0) file = file.substring(0, dot);
        return file.replace('-', '_');
    }

    /** The NUL-separated tag=value strings of the .modinfo section (ELF64 little-endian, gABI ch. 4). */
    static List<String> modinfo(String path, byte[] elf) throws GuestImageException {
        if (elf.length < 64 || elf[0] != 0x7F || elf[1] != 'E' || elf[2] != 'L' || elf[3] != 'F')
            throw new GuestImageException(path + ": not an ELF module");
        if (elf[4] != 2 || elf[5] != 1) throw new GuestImageException(path + ": not a 64-bit little-endian ELF module");
        ByteBuffer b = ByteBuffer.wrap(elf).order(ByteOrder.LITTLE_ENDIAN);
        try {
            long shoff = b.getLong(0x28);
            int shentsize = Short.toUnsignedInt(b.getShort(0x3A));
            int shnum = Short.toUnsignedInt(b.getShort(0x3C));
            int shstrndx = Short.toUnsignedInt(b.getShort(0x3E));
            if (shentsize < 64 || shstrndx >= shnum) throw new GuestImageException(path + ": corrupt ELF section table");
            int strtab = Math.toIntExact(b.getLong(Math.toIntExact(shoff + (long) shstrndx * shentsize) + 24));
            for (int i = 0; i < shnum; i++) {
                int sh = Math.toIntExact(shoff + (long) i * shentsize);
                String secName = cString(elf, strtab + b.getInt(sh));
                if (!secName.equals(".modinfo")) continue;
                int off = Math.toIntExact(b.getLong(sh + 24));
                int size = Math.toIntExact(b.getLong(sh + 32));
                byte[] sec = Arrays.copyOfRange(elf, off, Math.addExact(off, size));
                List<String> tags = new ArrayList<>();
                for (String s : new String(sec, StandardCharsets.UTF_8).split("\0")) if (!s.isEmpty()) tags.add(s);
                return tags;
            }
            return List.of();
        } catch (IndexOutOfBoundsException | ArithmeticException e) {
            throw new GuestImageException(path + ": truncated or corrupt ELF module");
        }
    }

    private static String cString(byte[] b, int off) {
        int end = off;
        while (b[end] != 0) end++;
        return new String(b, off, end - off, StandardCharsets.US_ASCII);
    }
}
