package dev.polyvisor.guest;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Fetches the Debian packages a default guest is built from, with the host's own apt: the kernel
 * named by the {@code linux-image-cloud-amd64} metapackage's Depends (a concrete
 * {@code linux-image-<abi>-cloud-amd64}) and {@code busybox-static}. {@code apt-get download} needs
 * no root; only refreshing missing package lists ({@code apt-get update}) does. Downloads land in
 * the cache's {@code debs/} directory and are reused; apt's progress goes to stderr.
 */
public final class DebianPackages {
    public static final String KERNEL_METAPACKAGE = "linux-image-cloud-amd64";
    public static final String BUSYBOX = "busybox-static";

    private static final long QUERY_TIMEOUT_S = 120, DOWNLOAD_TIMEOUT_S = 900;
    private static volatile boolean listsRefreshed;

    private DebianPackages() {}

    /** The concrete kernel package the metapackage currently depends on, e.g. linux-image-6.1.0-56-cloud-amd64. */
    public static String resolveKernelPackage() throws GuestImageException {
        for (String line : aptQuery("apt-cache", "depends", KERNEL_METAPACKAGE)) {
            String l = line.strip();
            if (l.startsWith("Depends:") && l.contains("linux-image-"))
                return l.substring("Depends:".length()).strip().replaceAll("[<>]", "");
        }
        throw new GuestImageException(KERNEL_METAPACKAGE + " has no linux-image-* dependency in apt's lists");
    }

    /** The version apt would install (the candidate), e.g. 6.1.192-2. */
    public static String candidateVersion(String pkg) throws GuestImageException {
        for (String line : aptQuery("apt-cache", "policy", pkg)) {
            String l = line.strip();
            if (l.startsWith("Candidate:")) {
                String v = l.substring("Candidate:".length()).strip();
                if (v.equals("(none)")) break;
                return v;
            }
        }
        throw new GuestImageException("apt has no installable version of " + pkg);
    }

    /** The candidate version of {@code pkg}, from the cache if already downloaded, else via apt-get download. */
    public static DebPackage fetch(String pkg) throws GuestImageException {
        String version = candidateVersion(pkg);
        Path dir = GuestCache.subdirectory("debs");
        Path cached = findCached(dir, pkg, version);
        if (cached != null) return new DebPackage(pkg, version, cached);
        System.err.println("polyvisor: downloading " + pkg + " " + version + " with apt-get into " + dir);
        Path tmp;
        try {
            tmp = Files.createTempDirectory(dir, ".download-");
        } catch (IOException e) {
            throw new GuestImageException("cannot write to " + dir + ": " + e.getMessage(), e);
        }
        try {
            run(tmp, DOWNLOAD_TIMEOUT_S, true, "apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", pkg + "=" + version);
            Path got = findCached(tmp, pkg, version);
            if (got == null) throw new GuestImageException("apt-get download " + pkg + " produced no .deb in " + tmp);
            Path dest = dir.resolve(got.getFileName());
            Files.move(got, dest, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            return new DebPackage(pkg, version, dest);
        } catch (IOException e) {
            throw new GuestImageException("cannot store " + pkg + " in " + dir + ": " + e.getMessage(), e);
        } finally {
            deleteTree(tmp);
        }
    }

    /** apt names downloads NAME_VERSION_ARCH.deb with ':' (epochs) escaped as %3a. */
    static Path findCached(Path dir, String pkg, String version) {
        String prefix = pkg + "_" + version.replace(":", "%3a") + "_";
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, p -> {
            String f = p.getFileName().toString();
            return f.startsWith(prefix) && f.endsWith(".deb");
        })) {
            for (Path p : ds) return p;
        } catch (IOException e) {
            return null;
        }
        return null;
    }

    /** Runs an apt query; if apt knows no such package (lists missing or stale), refreshes the lists once and retries. */
    private static List<String> aptQuery(String... cmd) throws GuestImageException {
        Result r = run(null, QUERY_TIMEOUT_S, false, cmd);
        if (r.ok() && !r.lines().isEmpty() && !mentionsMissing(r)) return r.lines();
        if (!listsRefreshed) {
            System.err.println("polyvisor: apt does not know " + cmd[cmd.length - 1] + "; running apt-get update");
            try {
                run(null, DOWNLOAD_TIMEOUT_S, true, "apt-get", "update", "-q");
            } catch (GuestImageException e) {
                throw new GuestImageException("apt does not know " + cmd[cmd.length - 1]
                        + " and apt-get update failed (it needs root): " + e.getMessage());
            }
            listsRefreshed = true;
            r = run(null, QUERY_TIMEOUT_S, false, cmd);
        }
        if (!r.ok()) throw new GuestImageException(String.join(" ", cmd) + " failed: " + r.lastLine());
        return r.lines();
    }

    private static boolean mentionsMissing(Result r) {
        return r.lines().stream().anyMatch(l -> l.contains("Unable to locate") || l.contains("No packages found"))
                || r.lines().stream().anyMatch(l -> l.strip().equals("Candidate: (none)"));
    }

    private record Result(int exit, List<String> lines) {
        boolean ok() { return exit == 0; }

        String lastLine() { return lines.isEmpty() ? "exit status " + exit : lines.getLast(); }
    }

    /** Runs a command; with {@code echo}, its output is shown on stderr as progress. */
    private static Result run(Path dir, long timeoutS, boolean echo, String... cmd) throws GuestImageException {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("LC_ALL", "C");
        pb.environment().put("DEBIAN_FRONTEND", "noninteractive");
        if (dir != null) pb.directory(dir.toFile());
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new GuestImageException("cannot run " + cmd[0] + " (is this a Debian host with apt?): " + e.getMessage(), e);
        }
        List<String> lines = new ArrayList<>();
        try (BufferedReader rd = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = rd.readLine()) != null) {
                lines.add(line);
                if (echo) System.err.println("  " + line);
            }
            if (!p.waitFor(timeoutS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new GuestImageException(String.join(" ", cmd) + " timed out after " + timeoutS + " s");
            }
        } catch (IOException e) {
            throw new GuestImageException(String.join(" ", cmd) + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new GuestImageException(String.join(" ", cmd) + " interrupted");
        }
        Result r = new Result(p.exitValue(), lines);
        if (echo && !r.ok()) throw new GuestImageException(String.join(" ", cmd) + " failed: " + r.lastLine());
        return r;
    }

    static void deleteTree(Path root) {
        if (!Files.exists(root)) return;
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
