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
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Fetches the Debian packages a default guest is built from, with the host's own apt: the kernel
 * named by the {@code linux-image-cloud-amd64} metapackage's Depends (a concrete
 * {@code linux-image-<abi>-cloud-amd64}) and {@code busybox-static}. {@code apt-get download} needs
 * no root; only refreshing missing package lists ({@code apt-get update}) does. Downloads land in
 * the cache's {@code debs/} directory and are reused; apt's progress goes to stderr.
 *
 * <p>Any other kernel ({@link KernelSource}: a package, optional version and suite) is fetched through
 * the suite's private apt configuration ({@link PrivateApt}) instead, which needs no root and leaves the
 * host's sources and lists alone: {@link #resolve} follows the request's Depends to every package that
 * carries a part of the kernel ({@link #KERNEL_PART}), {@link #fetch(ResolvedKernel)} downloads them.
 */
public final class DebianPackages {
    public static final String KERNEL_METAPACKAGE = "linux-image-cloud-amd64";
    public static final String BUSYBOX = "busybox-static";

    private static final long QUERY_TIMEOUT_S = 120, DOWNLOAD_TIMEOUT_S = 900;
    private static volatile boolean listsRefreshed;

    private DebianPackages() {}

    /** The concrete kernel package the metapackage currently depends on, e.g. linux-image-6.1.0-56-cloud-amd64. */
    public static String resolveKernelPackage() throws GuestImageException {
        for (String line : aptQuery(aptCache("depends", KERNEL_METAPACKAGE))) {
            String l = line.strip();
            if (l.startsWith("Depends:") && l.contains("linux-image-"))
                return l.substring("Depends:".length()).strip().replaceAll("[<>]", "");
        }
        throw new GuestImageException(KERNEL_METAPACKAGE + " has no linux-image-* dependency in apt's lists");
    }

    /** The version apt would install (the candidate), e.g. 6.1.192-2. */
    public static String candidateVersion(String pkg) throws GuestImageException {
        for (String line : aptQuery(aptCache("policy", pkg))) {
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
        Path tmp = downloadDirectory(dir);
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

    // ---- Any kernel from any suite, through a private apt configuration (PrivateApt) ----

    /** A binary package at an exact version. */
    public record AptPackage(String name, String version) {
        @Override public String toString() { return name + " " + version; }
    }

    /**
     * What a {@link KernelSource} stands for in its suite: the requested package and, transitively, the
     * kernel packages it depends on ({@link #KERNEL_PART}), requested first; {@code image} is the
     * concrete, versioned linux-image package (the metapackage's target), which names the guest.
     */
    public record ResolvedKernel(KernelSource source, List<AptPackage> packages, AptPackage image) {}

    /**
     * Dependencies that carry a kernel's parts: linux-image-* (a metapackage's versioned target),
     * and the split layout of Debian's 6.17+ packaging, where linux-image-RELEASE is empty and depends
     * on linux-binary-RELEASE (usr/lib/modules/RELEASE/vmlinuz), linux-modules-RELEASE and
     * linux-base-RELEASE (modules.builtin, config, System.map). The plain {@code linux-base} package
     * (maintainer scripts' helpers) has no suffix and is not followed.
     */
    static final java.util.regex.Pattern KERNEL_PART = java.util.regex.Pattern.compile("linux-(image|binary|modules|base)-[a-z0-9][a-z0-9+.~-]*");
    private static final int MAX_KERNEL_PACKAGES = 16;
    /** Lists older than this are refreshed before use (sid and experimental change daily). */
    static final long LISTS_MAX_AGE_MS = 24L * 3600 * 1000;
    /** A package apt does not know triggers a refresh only when the lists are older than this (a typo should not cost one). */
    private static final long RECHECK_AGE_MS = 3600L * 1000;
    private static final java.util.Set<String> updatedThisRun = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /** Resolves a kernel request to the exact packages to fetch (no download yet): one apt query per dependency level. */
    public static synchronized ResolvedKernel resolve(KernelSource src) throws GuestImageException {
        PrivateApt apt = PrivateApt.forSuite(src.suite());
        ensureLists(apt);
        List<AptPackage> out = new ArrayList<>();
        java.util.Set<String> seen = new java.util.HashSet<>(List.of(src.packageName()));
        List<String> level = List.of(src.aptSpec());
        AptPackage image = null;
        while (!level.isEmpty()) {
            List<String> next = new ArrayList<>();
            for (Map<String, String> rec : show(apt, level)) {
                AptPackage p = new AptPackage(rec.get("Package"), rec.get("Version"));
                out.add(p);
                if (p.name().startsWith("linux-image-")) image = p; // the deepest one is the versioned kernel
                for (String[] dep : kernelDepends(rec.getOrDefault("Depends", ""))) {
                    if (!seen.add(dep[0])) continue;
                    if (seen.size() > MAX_KERNEL_PACKAGES)
                        throw new GuestImageException(src.aptSpec() + " in " + src.suite() + " depends on more than " + MAX_KERNEL_PACKAGES + " kernel packages");
                    next.add(dep[1] == null ? dep[0] : dep[0] + "=" + dep[1]);
                }
            }
            level = next;
        }
        return new ResolvedKernel(src, List.copyOf(out), image != null ? image : out.getFirst());
    }

    /** The kernel-part dependencies of a Depends field: {name, exact version or null}, in field order. */
    static List<String[]> kernelDepends(String depends) {
        List<String[]> out = new ArrayList<>();
        for (String group : depends.split(",")) {
            for (String alt : group.split("\\|")) {
                String a = alt.strip();
                if (a.isEmpty()) continue;
                int sp = a.indexOf(' '), par = a.indexOf('(');
                String name = a.substring(0, sp < 0 ? (par < 0 ? a.length() : par) : sp).strip();
                if (name.contains(":")) name = name.substring(0, name.indexOf(':'));
                if (!KERNEL_PART.matcher(name).matches()) continue;
                String version = null;
                java.util.regex.Matcher m = java.util.regex.Pattern.compile("\\(\\s*=\\s*([^)\\s]+)\\s*\\)").matcher(a);
                if (m.find()) version = m.group(1);
                out.add(new String[] {name, version});
                break; // one alternative per group is enough
            }
        }
        return out;
    }

    /** The control records of NAME (apt's candidate) or NAME=VERSION specs in the suite, in order, as apt-cache show prints them. */
    private static List<Map<String, String>> show(PrivateApt apt, List<String> specs) throws GuestImageException {
        List<Map<String, String>> recs = showOnce(apt, specs);
        if (recs == null && !updatedThisRun.contains(apt.suite()) && apt.listsAgeMillis() > RECHECK_AGE_MS) {
            // A package new since the lists were fetched: refresh once and ask again.
            update(apt);
            recs = showOnce(apt, specs);
        }
        if (recs != null) return recs;
        // Say what apt says: for a whole package apt-cache show does; for a missing version it prints nothing.
        for (String spec : specs) {
            int eq = spec.indexOf('=');
            Result r = run(null, QUERY_TIMEOUT_S, false, apt.command("apt-cache", "madison", eq < 0 ? spec : spec.substring(0, eq)));
            List<String> versions = r.lines().stream().filter(l -> l.contains("|") && l.contains("Packages"))
                    .map(l -> l.split("\\|")[1].strip()).distinct().toList();
            if (versions.isEmpty())
                throw new GuestImageException("apt (" + apt.suite() + "): Unable to locate package " + (eq < 0 ? spec : spec.substring(0, eq)));
            if (eq >= 0 && !versions.contains(spec.substring(eq + 1)))
                throw new GuestImageException("apt (" + apt.suite() + "): Version '" + spec.substring(eq + 1) + "' for '"
                        + spec.substring(0, eq) + "' was not found (" + apt.suite() + " has " + String.join(", ", versions) + ")");
        }
        throw new GuestImageException("apt (" + apt.suite() + "): apt-cache show " + String.join(" ", specs) + " failed");
    }

    /** One apt-cache show; null when it failed or did not return one record per spec. */
    private static List<Map<String, String>> showOnce(PrivateApt apt, List<String> specs) throws GuestImageException {
        List<String> args = new ArrayList<>(List.of("show", "--no-all-versions"));
        args.addAll(specs);
        Result r = run(null, QUERY_TIMEOUT_S, false, apt.command("apt-cache", args.toArray(String[]::new)));
        if (!r.ok()) return null;
        List<Map<String, String>> recs = parseRecords(r.lines());
        if (recs.size() != specs.size()) return null;
        for (int i = 0; i < specs.size(); i++) {
            String name = specs.get(i).contains("=") ? specs.get(i).substring(0, specs.get(i).indexOf('=')) : specs.get(i);
            if (!name.equals(recs.get(i).get("Package")) || !recs.get(i).containsKey("Version")) return null;
        }
        return recs;
    }

    /** deb822 records (Debian Policy 5.1): "Field: value", continuation lines start with a space, records split by blank lines. */
    static List<Map<String, String>> parseRecords(List<String> lines) {
        List<Map<String, String>> out = new ArrayList<>();
        Map<String, String> cur = null;
        String last = null;
        for (String line : lines) {
            if (line.isBlank()) {
                cur = null;
                continue;
            }
            if ((line.startsWith(" ") || line.startsWith("\t")) && cur != null && last != null) {
                cur.merge(last, "\n" + line.strip(), String::concat);
            } else if (line.indexOf(':') > 0) {
                if (cur == null) out.add(cur = new java.util.LinkedHashMap<>());
                last = line.substring(0, line.indexOf(':'));
                cur.put(last, line.substring(line.indexOf(':') + 1).strip());
            }
        }
        return out;
    }

    /** apt's own words: its last "E:" line, else its last line. */
    private static String aptError(Result r, String fallback) {
        for (String l : r.lines().reversed()) if (l.startsWith("E: ")) return l.substring(3);
        return r.lines().isEmpty() ? fallback : r.lastLine();
    }

    /** Fetches the suite's lists if there are none or they are older than {@link #LISTS_MAX_AGE_MS}. */
    private static void ensureLists(PrivateApt apt) throws GuestImageException {
        apt.write();
        if (apt.hasLists() && apt.listsAgeMillis() < LISTS_MAX_AGE_MS) return;
        if (updatedThisRun.contains(apt.suite())) return;
        update(apt);
    }

    /**
     * apt-get update under the private configuration, holding its lock. A failure with lists already
     * present (offline) keeps those lists with a warning; without lists it is an error.
     */
    private static void update(PrivateApt apt) throws GuestImageException {
        apt.write();
        updatedThisRun.add(apt.suite());
        System.err.println("polyvisor: fetching the package lists of " + apt.suite() + " into " + apt.dir());
        try (PrivateApt.Lock l = apt.lock()) {
            Result r = run(null, DOWNLOAD_TIMEOUT_S, false, apt.command("apt-get", "update", "-q"));
            // apt-get update exits 0 even when some index could not be fetched; those are "E:"/"W: Failed" lines.
            boolean failed = !r.ok() || r.lines().stream().anyMatch(x -> x.startsWith("E: ") || x.startsWith("W: Failed") || x.startsWith("Err:"));
            if (!failed) {
                apt.markUpdated();
                return;
            }
            // apt's own words: an error, else the first "Failed to fetch URL  reason", else "Err:" and its reason line.
            String why = aptError(r, "apt-get update failed");
            List<String> out = r.lines();
            for (int i = out.size() - 1; i >= 0; i--)
                if (out.get(i).startsWith("Err:")) why = out.get(i) + (i + 1 < out.size() ? ":" + out.get(i + 1) : "");
            for (int i = out.size() - 1; i >= 0; i--)
                if (out.get(i).startsWith("W: Failed to fetch ")) why = out.get(i).substring(3).replaceAll("\\s+", " ");
            for (String x : out) if (x.startsWith("E: ")) { why = x.substring(3); break; }
            if (apt.hasLists()) {
                System.err.println("polyvisor: cannot refresh the " + apt.suite() + " lists (" + why + "); using the lists from before");
                return;
            }
            throw new GuestImageException("cannot fetch the " + apt.suite() + " package lists from " + apt.mirror() + ": " + why);
        } catch (java.io.IOException e) {
            throw new GuestImageException("cannot update the private apt lists in " + apt.dir() + ": " + e.getMessage(), e);
        }
    }

    /** One package at an exact version (null: the candidate) from a suite, from the cache or via apt-get download. */
    public static DebPackage fetch(String name, String version, String suite) throws GuestImageException {
        PrivateApt apt = PrivateApt.forSuite(suite);
        String v = version;
        if (v == null) {
            synchronized (DebianPackages.class) {
                ensureLists(apt);
                v = show(apt, List.of(name)).getFirst().get("Version");
            }
        }
        return download(apt, List.of(new AptPackage(name, v))).getFirst();
    }

    /** The resolved kernel's packages, downloaded (or found in the cache), in {@link ResolvedKernel#packages()} order. */
    public static List<DebPackage> fetch(ResolvedKernel k) throws GuestImageException {
        return download(PrivateApt.forSuite(k.source().suite()), k.packages());
    }

    /** A fresh directory under {@code dir} for apt-get download to write into (moved into place after). */
    private static Path downloadDirectory(Path dir) throws GuestImageException {
        try {
            return Files.createTempDirectory(dir, ".download-");
        } catch (IOException e) {
            throw new GuestImageException("cannot write to " + dir + ": " + e.getMessage(), e);
        }
    }

    /** Downloads the packages the cache lacks with one apt-get download, into the shared debs/ directory. */
    private static List<DebPackage> download(PrivateApt apt, List<AptPackage> pkgs) throws GuestImageException {
        Path dir = GuestCache.subdirectory("debs");
        List<AptPackage> missing = new ArrayList<>();
        for (AptPackage p : pkgs) if (findCached(dir, p.name(), p.version()) == null) missing.add(p);
        if (!missing.isEmpty()) {
            System.err.println("polyvisor: downloading " + missing + " from " + apt.suite() + " into " + dir);
            Path tmp = downloadDirectory(dir);
            try {
                apt.write();
                List<String> args = new ArrayList<>(List.of("download", "-q"));
                for (AptPackage p : missing) args.add(p.name() + "=" + p.version());
                Result r = run(tmp, DOWNLOAD_TIMEOUT_S, false, apt.command("apt-get", args.toArray(String[]::new)));
                if (!r.ok()) throw new GuestImageException("apt-get download (" + apt.suite() + "): " + aptError(r, "failed"));
                for (AptPackage p : missing) {
                    Path got = findCached(tmp, p.name(), p.version());
                    if (got == null) throw new GuestImageException("apt-get download " + p + " produced no .deb");
                    Files.move(got, dir.resolve(got.getFileName()), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                }
            } catch (IOException e) {
                throw new GuestImageException("cannot store packages in " + dir + ": " + e.getMessage(), e);
            } finally {
                deleteTree(tmp);
            }
        }
        List<DebPackage> out = new ArrayList<>();
        for (AptPackage p : pkgs) out.add(new DebPackage(p.name(), p.version(), findCached(dir, p.name(), p.version())));
        return out;
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

    /**
     * apt-cache with its binary package cache in Polyvisor's cache directory. Debian's container images switch that
     * cache off (/etc/apt/apt.conf.d/docker-clean: Dir::Cache::pkgcache ""), and then every apt-cache run parses
     * all of apt's lists again: about 1.1 s each here, and choosing the default guest takes three, so a cached
     * `run` spent 3.5-4 s in apt before the VM started. apt keeps its own cache valid (it rebuilds it when the
     * lists or the dpkg status change), so the answers are the same; a second query takes about 0.07 s.
     */
    static String[] aptCache(String... args) {
        List<String> cmd = new java.util.ArrayList<>(List.of("apt-cache"));
        try {
            cmd.addAll(List.of("-o", "Dir::Cache::pkgcache=" + GuestCache.subdirectory("apt-host").resolve("pkgcache.bin"),
                    "-o", "Dir::Cache::srcpkgcache="));
        } catch (java.io.UncheckedIOException e) {
            // no writable cache directory: apt-cache as configured (slower, same answers)
        }
        cmd.addAll(List.of(args));
        return cmd.toArray(String[]::new);
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
        return run(dir, timeoutS, echo, List.of(cmd));
    }

    private static Result run(Path dir, long timeoutS, boolean echo, List<String> command) throws GuestImageException {
        String[] cmd = command.toArray(String[]::new);
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
