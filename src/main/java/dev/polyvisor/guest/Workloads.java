package dev.polyvisor.guest;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The coupling matrix's micro-workloads in the default guest: {@code pv-workloads}, a static C program
 * (its source ships in the jar, src/main/guests/workloads/pv_workloads.c) built with the host gcc on
 * first use, and an initramfs that is the guest's own with the program appended as a second cpio
 * archive at {@value #PATH} (the kernel unpacks concatenated archives in order,
 * Documentation/driver-api/early-userspace/buffer-format.rst). The default guest itself needs no
 * compiler; only a run that measures workloads does.
 *
 * <p>The program prints {@code pv-mark begin NAME} / {@code pv-mark end NAME} around each workload; the
 * VMM stamps those lines ({@code vmm.ConsoleMarkers}).
 */
public final class Workloads {
    public static final String PATH = "/bin/pv-workloads";
    /** The workloads, in the order the program runs them. */
    public static final List<String> NAMES = List.of("clock", "ipi", "tlb", "lock", "yield", "idle");
    static final String RESOURCE = "/guests/workloads/pv_workloads.c";
    /** Workload initramfs files kept besides the newest ({@link #initramfs}). */
    static final int KEPT_INITRAMFS = 3;

    private Workloads() {}

    /** The shell command that runs every workload (or the named ones). */
    public static String command(String... names) {
        return names.length == 0 ? PATH : PATH + " " + String.join(" ", names);
    }

    /** {@code guest}'s initramfs with pv-workloads appended, built (and cached) on first use. */
    public static Path initramfs(GuestImage guest) throws GuestImageException {
        Path binary = binary();
        try {
            byte[] base = Files.readAllBytes(guest.initramfs());
            byte[] prog = Files.readAllBytes(binary);
            String key = sha256(base, prog).substring(0, 16);
            Path out = binary.getParent().resolve("initramfs-" + key + ".img");
            if (Files.isRegularFile(out)) {
                CacheEntries.touch(out);
                return out;
            }
            byte[] extra = new InitramfsBuilder().file(PATH, 0755, prog).build();
            int pad = (4 - base.length % 4) % 4; // archives start 4-byte aligned; the kernel skips zero padding
            Path tmp = Files.createTempFile(out.getParent(), "initramfs-", ".tmp");
            try (var w = Files.newOutputStream(tmp)) {
                w.write(base);
                w.write(new byte[pad]);
                w.write(extra);
            }
            Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            // One per guest initramfs it was made from (3.7 MiB each for the default guest's): the ones used least
            // recently go, but a few stay, as the matrix alternates between kernels and each has its own.
            CacheEntries.pruneSiblings(out.getParent(), out, "initramfs-", ".img", KEPT_INITRAMFS, "workload initramfs", System.err);
            return out;
        } catch (IOException e) {
            throw new GuestImageException("cannot build the workload initramfs: " + e.getMessage());
        }
    }

    private static void deleteQuietly(Path p) {
        if (p == null) return;
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // a leftover temporary file in the cache directory: harmless, and pruned with the directory
        }
    }

    /** The static pv-workloads binary, compiled with the host gcc unless the cache has it. */
    public static Path binary() throws GuestImageException {
        byte[] src;
        try (InputStream in = Workloads.class.getResourceAsStream(RESOURCE)) {
            if (in == null) throw new GuestImageException("the workload source " + RESOURCE + " is missing from the jar");
            src = in.readAllBytes();
        } catch (IOException e) {
            throw new GuestImageException("cannot read the workload source: " + e.getMessage());
        }
        Path dir = GuestCache.subdirectory("workloads-" + sha256(src).substring(0, 16));
        Path bin = dir.resolve("pv-workloads");
        if (Files.isExecutable(bin)) return bin;
        // Every builder compiles its own copy of the source into its own file, then renames it into place: two VMs
        // started together on a fresh cache (WorkloadsBootTest boots two at once) both build, and with one shared
        // temporary name the second rename found the file gone (CI on a new machine, session 11).
        Path c = null, tmp = null;
        try {
            c = Files.createTempFile(dir, "pv_workloads-", ".c");
            Files.write(c, src);
            tmp = Files.createTempFile(dir, "pv-workloads-", ".tmp");
            List<String> cmd = List.of("gcc", "-O2", "-static", "-pthread", "-o", tmp.toString(), c.toString());
            Process p;
            try {
                p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            } catch (IOException e) {
                throw new GuestImageException("cannot build pv-workloads: gcc not found (install gcc and libc6-dev)");
            }
            String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new GuestImageException("building pv-workloads timed out");
            }
            if (p.exitValue() != 0)
                throw new GuestImageException("building pv-workloads failed: "
                        + log.lines().filter(l -> !l.isBlank()).findFirst().orElse("gcc exit status " + p.exitValue()));
            Files.move(tmp, bin, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            Files.move(c, dir.resolve("pv_workloads.c"), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            GuestCache.pruneSuperseded(dir, "workloads-", "workload build");
            return bin;
        } catch (IOException e) {
            throw new GuestImageException("cannot build pv-workloads in " + dir + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new GuestImageException("interrupted while building pv-workloads");
        } finally {
            deleteQuietly(c);
            deleteQuietly(tmp);
        }
    }

    private static String sha256(byte[]... parts) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (byte[] p : parts) md.update(p);
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
