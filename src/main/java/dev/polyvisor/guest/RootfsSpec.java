package dev.polyvisor.guest;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;

/**
 * Everything that decides a Debian root filesystem image's contents, and so its cache key: the suite
 * and the apt sources mmdebstrap installs from, the variant and extra packages, the kernel whose
 * modules go in, the image size, the ssh key, and the files and commands of {@link RootfsLayout}.
 * The archive's own state is not part of it (a point release changes package versions under the same
 * key, as a cached .deb of the candidate does); {@value #REVISION} changes with the build procedure.
 */
public record RootfsSpec(String suite, List<String> sources, String variant, List<String> packages,
                         String kernelPackage, String kernelVersion, String kernelRelease,
                         long sizeBytes, String sshPublicKey) {
    /** Changes whenever the build procedure changes in a way the other fields do not capture. */
    public static final int REVISION = 2; // 2: the tree goes through a tarball (tar-in, unshare mode), /dev left empty
    public static final String SUITE = "bookworm";
    public static final String VARIANT = "minbase";
    /**
     * On top of minbase: an init, udev, a D-Bus for logind, ssh, ip(8), modprobe/depmod, fsck and ps, and
     * systemd-resolved, which takes the DNS servers networkd learns by DHCP (passt hands out the host's) and
     * makes /etc/resolv.conf point at its stub (bookworm ships it as its own package; without it nothing
     * writes resolv.conf and names do not resolve).
     */
    public static final List<String> PACKAGES = List.of("systemd", "systemd-sysv", "udev", "dbus", "openssh-server",
            "iproute2", "kmod", "e2fsprogs", "procps", "systemd-resolved");
    public static final long DEFAULT_SIZE = 2L << 30;
    /** Smaller than this cannot hold minbase, systemd, ssh and a kernel's modules (about 450 MB used). */
    public static final long MIN_SIZE = 768L << 20;
    /** The ext4 volume label (at most 16 bytes) by which {@code polyvisor run} recognises the image as a root disk. */
    public static final String LABEL = "polyvisor-root";

    public RootfsSpec {
        sources = List.copyOf(sources);
        packages = List.copyOf(packages);
        if (sizeBytes < MIN_SIZE) throw new IllegalArgumentException("a root filesystem needs at least " + (MIN_SIZE >> 20) + " MiB, got " + sizeBytes + " bytes");
        if (kernelRelease == null || kernelRelease.isBlank() || kernelRelease.contains("/"))
            throw new IllegalArgumentException("bad kernel release '" + kernelRelease + "'");
    }

    /** bookworm's sources as a Debian system has them: main, -updates and -security, from the given mirrors. */
    public static List<String> bookwormSources(String mirror, String securityMirror) {
        return List.of("deb " + mirror + " bookworm main", "deb " + mirror + " bookworm-updates main",
                "deb " + securityMirror + " bookworm-security main");
    }

    /** A directory name for the cache: the suite, the kernel release and 16 hex digits of SHA-256 over every field. */
    public String key() {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        String all = String.join("\0", "rev" + REVISION, suite, String.join("\n", sources), variant, String.join(",", packages),
                kernelPackage, kernelVersion, kernelRelease, Long.toString(sizeBytes), LABEL,
                RootfsLayout.fingerprint(sshPublicKey, kernelRelease));
        String h = HexFormat.of().formatHex(sha.digest(all.getBytes(StandardCharsets.UTF_8))).substring(0, 16);
        return (suite + "_" + kernelRelease + "_" + h).replaceAll("[^A-Za-z0-9._+-]", "_");
    }

    /**
     * A size as {@code --size} takes it: bytes, or a number with K, M, G or T (binary multiples,
     * as mke2fs and truncate read them); IllegalArgumentException with a one-line message otherwise.
     */
    public static long parseSize(String s) {
        String t = s.strip().toUpperCase(Locale.ROOT);
        if (t.endsWith("IB")) t = t.substring(0, t.length() - 2);
        else if (t.endsWith("B") && t.length() > 1 && !Character.isDigit(t.charAt(t.length() - 2))) t = t.substring(0, t.length() - 1);
        int shift = 0;
        if (!t.isEmpty()) {
            switch (t.charAt(t.length() - 1)) {
                case 'K' -> shift = 10;
                case 'M' -> shift = 20;
                case 'G' -> shift = 30;
                case 'T' -> shift = 40;
                default -> {}
            }
        }
        if (shift != 0) t = t.substring(0, t.length() - 1);
        try {
            long v = Long.parseLong(t);
            if (v <= 0 || v > (Long.MAX_VALUE >> shift)) throw new NumberFormatException();
            return v << shift;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("a size like 2G, 1536M or 4294967296 was expected, got '" + s + "'");
        }
    }
}
