package dev.polyvisor.guest;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Builds an uncompressed initramfs: a cpio archive in the "newc" format that the kernel unpacks
 * into rootfs (Documentation/driver-api/early-userspace/buffer-format.rst). Each entry is a
 * 110-byte ASCII header ("070701" and thirteen 8-digit hex fields), the NUL-terminated name, padding
 * to 4 bytes, the data, padding to 4 bytes; the archive ends with the entry "TRAILER!!!".
 * Uncompressed, so the guest spends no time decompressing it.
 *
 * <p>Paths are absolute ("/bin/busybox") and stored without the leading slash, as the kernel's
 * own gen_init_cpio does. Parent directories are added automatically (mode 0755). Adding the same
 * path twice replaces the earlier entry. Everything is owned by root with mtime 0, so the archive
 * is reproducible byte for byte.
 */
public final class InitramfsBuilder {
    public static final int S_IFDIR = 0040000, S_IFREG = 0100000, S_IFLNK = 0120000, S_IFCHR = 0020000;

    private record Node(int mode, byte[] data, int rdevMajor, int rdevMinor) {}

    private final Map<String, Node> nodes = new LinkedHashMap<>();

    public InitramfsBuilder directory(String path, int perm) {
        put(path, new Node(S_IFDIR | (perm & 07777), new byte[0], 0, 0));
        return this;
    }

    public InitramfsBuilder file(String path, int perm, byte[] data) {
        put(path, new Node(S_IFREG | (perm & 07777), data.clone(), 0, 0));
        return this;
    }

    public InitramfsBuilder file(String path, int perm, String text) {
        return file(path, perm, text.getBytes(StandardCharsets.UTF_8));
    }

    public InitramfsBuilder symlink(String path, String target) {
        put(path, new Node(S_IFLNK | 0777, target.getBytes(StandardCharsets.UTF_8), 0, 0));
        return this;
    }

    public InitramfsBuilder charDevice(String path, int perm, int major, int minor) {
        put(path, new Node(S_IFCHR | (perm & 07777), new byte[0], major, minor));
        return this;
    }

    private void put(String path, Node node) {
        String p = normalize(path);
        int slash = p.lastIndexOf('/');
        if (slash > 0) {
            String parent = p.substring(0, slash);
            Node existing = nodes.get(parent);
            if (existing == null) directory("/" + parent, 0755);
            else if ((existing.mode() & 0170000) != S_IFDIR)
                throw new IllegalArgumentException("initramfs: /" + parent + " is not a directory");
        }
        nodes.remove(p); // keep parent-before-child order when an entry is replaced
        nodes.put(p, node);
    }

    private static String normalize(String path) {
        if (!path.startsWith("/") || path.length() < 2 || path.endsWith("/") || path.contains("//")
                || path.contains("/../") || path.endsWith("/..") || path.contains("/./") || path.contains("\0"))
            throw new IllegalArgumentException("initramfs: bad path '" + path + "' (absolute, normalized, no trailing /)");
        return path.substring(1);
    }

    /** The archive bytes. */
    public byte[] build() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int ino = 1;
        for (var e : nodes.entrySet()) {
            Node n = e.getValue();
            int nlink = (n.mode() & 0170000) == S_IFDIR ? 2 : 1;
            writeEntry(out, e.getKey(), ino++, n.mode(), nlink, n.data(), n.rdevMajor(), n.rdevMinor());
        }
        writeEntry(out, "TRAILER!!!", 0, 0, 1, new byte[0], 0, 0);
        return out.toByteArray();
    }

    private static void writeEntry(ByteArrayOutputStream out, String name, int ino, int mode, int nlink, byte[] data,
                                   int rdevMajor, int rdevMinor) {
        byte[] nameBytes = (name + "\0").getBytes(StandardCharsets.UTF_8);
        StringBuilder h = new StringBuilder(110).append("070701");
        for (long field : new long[] {ino, mode, 0 /* uid */, 0 /* gid */, nlink, 0 /* mtime */, data.length,
                0 /* devmajor */, 0 /* devminor */, rdevMajor, rdevMinor, nameBytes.length, 0 /* check */})
            h.append(String.format("%08x", field));
        out.writeBytes(h.toString().getBytes(StandardCharsets.US_ASCII));
        out.writeBytes(nameBytes);
        pad(out);
        out.writeBytes(data);
        pad(out);
    }

    private static void pad(ByteArrayOutputStream out) {
        while ((out.size() & 3) != 0) out.write(0);
    }
}
