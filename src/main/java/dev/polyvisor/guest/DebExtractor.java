package dev.polyvisor.guest;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;
import java.util.zip.GZIPInputStream;
import org.apache.commons.compress.archivers.ar.ArArchiveEntry;
import org.apache.commons.compress.archivers.ar.ArArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.tukaani.xz.XZInputStream;

/**
 * Reads a Debian binary package (deb(5)): an ar archive holding {@code debian-binary},
 * {@code control.tar.*} and {@code data.tar.*}. Debian 12 compresses both tars with xz (dpkg's
 * default since 1.17); gzip and uncompressed tars are accepted too, as dpkg-deb(1) allows them.
 * zstd (used by Ubuntu, not Debian) is refused with a clear message rather than a crash.
 */
public final class DebExtractor {
    /** Largest single file we will hold in memory; a kernel package's biggest file is ~15 MB. */
    private static final long MAX_FILE = 512L << 20;

    private DebExtractor() {}

    /**
     * The regular files of the package's data.tar whose normalized path (no leading "./" or "/",
     * e.g. {@code boot/vmlinuz-6.1.0-56-cloud-amd64}) satisfies {@code wanted}, in archive order.
     */
    public static Map<String, byte[]> dataFiles(Path deb, Predicate<String> wanted) throws GuestImageException {
        return readMember(deb, "data.tar", wanted);
    }

    /** The fields of the package's control file (Package, Version, Architecture, ...). */
    public static Map<String, String> control(Path deb) throws GuestImageException {
        byte[] control = readMember(deb, "control.tar", "control"::equals).get("control");
        if (control == null) throw new GuestImageException(deb + ": control.tar has no control file");
        Map<String, String> fields = new LinkedHashMap<>();
        String last = null;
        for (String line : new String(control, StandardCharsets.UTF_8).split("\n")) {
            if (line.startsWith(" ") || line.startsWith("\t")) {
                if (last != null) fields.merge(last, "\n" + line.strip(), String::concat);
            } else if (line.indexOf(':') > 0) {
                last = line.substring(0, line.indexOf(':')).strip();
                fields.put(last, line.substring(line.indexOf(':') + 1).strip());
            }
        }
        return fields;
    }

    private static Map<String, byte[]> readMember(Path deb, String prefix, Predicate<String> wanted) throws GuestImageException {
        if (!Files.isRegularFile(deb)) throw new GuestImageException(deb + ": no such file");
        try (InputStream in = new BufferedInputStream(Files.newInputStream(deb));
             ArArchiveInputStream ar = new ArArchiveInputStream(in)) {
            boolean sawDebianBinary = false;
            ArArchiveEntry e;
            while ((e = ar.getNextEntry()) != null) {
                String name = e.getName();
                if (name.endsWith("/")) name = name.substring(0, name.length() - 1);
                if (name.equals("debian-binary")) sawDebianBinary = true;
                if (!name.startsWith(prefix)) continue;
                if (!sawDebianBinary) throw new GuestImageException(deb + ": not a Debian package (no debian-binary member before " + name + ")");
                return readTar(deb, decompressor(deb, name, ar), wanted);
            }
            throw new GuestImageException(deb + ": not a Debian package (no " + prefix + ".* member)");
        } catch (IOException | RuntimeException ex) {
            throw new GuestImageException(deb + ": cannot read package: " + oneLine(ex), ex);
        }
    }

    private static InputStream decompressor(Path deb, String member, InputStream in) throws IOException, GuestImageException {
        if (member.endsWith(".xz")) return new XZInputStream(in);
        if (member.endsWith(".gz")) return new GZIPInputStream(in);
        if (member.endsWith(".tar")) return in;
        throw new GuestImageException(deb + ": " + member + " uses a compression this reader does not support (xz, gz or none)");
    }

    private static Map<String, byte[]> readTar(Path deb, InputStream in, Predicate<String> wanted) throws IOException, GuestImageException {
        Map<String, byte[]> out = new LinkedHashMap<>();
        TarArchiveInputStream tar = new TarArchiveInputStream(in);
        TarArchiveEntry t;
        while ((t = tar.getNextEntry()) != null) {
            if (!t.isFile()) continue;
            String path = normalize(t.getName());
            if (!wanted.test(path)) continue;
            if (t.getSize() > MAX_FILE) throw new GuestImageException(deb + ": " + path + " is too large (" + t.getSize() + " bytes)");
            out.put(path, tar.readAllBytes());
        }
        return out;
    }

    static String normalize(String tarName) {
        String p = tarName;
        while (p.startsWith("./")) p = p.substring(2);
        while (p.startsWith("/")) p = p.substring(1);
        return p;
    }

    static String oneLine(Throwable t) {
        String m = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
        return m.replace('\n', ' ');
    }
}
