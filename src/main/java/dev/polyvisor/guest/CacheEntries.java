package dev.polyvisor.guest;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The entries of the per-user cache's {@code guests/} and {@code rootfs/} directories: each a directory
 * named by its key with a key=value info file, published by an atomic rename. This reads their info files
 * and removes the entries a newly built one supersedes: the guest images ({@code <cache>/guests/}) and
 * root filesystems ({@code <cache>/rootfs/}) built for the same line as the new one (the same kernel series,
 * and for a root filesystem the same suite and size) but from older inputs: an earlier kernel ABI, busybox,
 * {@link GuestInit#REVISION} or {@link RootfsSpec#REVISION}. Each key names its inputs exactly, so nothing
 * else ever looks such an entry up again; a root filesystem is a GiB of sparse image.
 *
 * <p>The rule. After a successful build, of the other entries of its line the newest one ({@link #KEEP})
 * stays and the older ones go, except any whose files a process has open ({@code /proc/PID/fd}: a VM
 * booted from the cache's own image, which holds it open). Nothing in Polyvisor locks a cache entry, so the
 * open-file check is what "in use" can mean; keeping the newest superseded entry covers the rest: a VM just
 * started from it, a second checkout of the project at the previous revision (which would otherwise
 * rebuild on every switch), and going back one step. Other tools draw the line in the same place: Debian's
 * kernel auto-removal keeps the running, the latest and the second-latest kernel
 * (/etc/kernel/postinst.d/apt-auto-removal), {@code vagrant box prune} keeps the newest version of each box
 * and refuses the ones in use, {@code docker image prune} removes superseded (dangling) images but none a
 * container uses, {@code apt-get autoclean} removes the package files that can no longer be downloaded.
 * QEMU and Firecracker keep no image cache at all.
 *
 * <p>Removal is best effort and never fails the build that asked for it: an entry is first renamed to a
 * hidden {@code .prune-NAME} (atomic, so no reader ever sees half an entry; hidden names are never cache
 * hits, and {@code .build-*} directories of builds in progress are never touched), then deleted; a leftover
 * {@code .prune-*} is deleted by the next prune. Each removal is one line on stderr with the space freed.
 */
final class CacheEntries {
    /** Superseded entries kept besides the current one, newest first. */
    static final int KEEP = 1;
    static final String PRUNE_PREFIX = ".prune-";

    /**
     * Debian's kernel release names, {@code linux-image-RELEASE}: bookworm's {@code 6.1.0-57-cloud-amd64}
     * (upstream version, ABI number, flavour), trixie's {@code 6.12.118+deb13-cloud-amd64}, backports'
     * {@code 6.5.0-0.deb12.4-cloud-amd64}, experimental's {@code 7.3-cloud-amd64}: the upstream major.minor,
     * then anything up to the ABI part, then the flavour.
     */
    private static final Pattern RELEASE = Pattern.compile("(\\d+\\.\\d+)(?:\\.\\d+)?([^-]*)(-\\d[^-]*)?-([a-z].*)");
    private static final Pattern DEBIAN_TAG = Pattern.compile("deb\\d+");

    private CacheEntries() {}

    /**
     * The kernel series a release belongs to: upstream major.minor, the distribution tag of the ABI name
     * ({@code +debNN}, which tells trixie's 6.12 from bookworm-backports' 6.12) and the flavour. An ABI bump
     * within a suite ({@code 6.1.0-50} to {@code 6.1.0-57}) is the same series; another suite's or upstream
     * series' kernel is another (tests boot several side by side). A name of another shape is its own series.
     */
    static String kernelSeries(String release) {
        Matcher m = RELEASE.matcher(release);
        if (!m.matches()) return release;
        Matcher tag = DEBIAN_TAG.matcher(m.group(2) + (m.group(3) == null ? "" : m.group(3)));
        return m.group(1) + (tag.find() ? "+" + tag.group() : "") + "-" + m.group(4);
    }

    /** The key=value lines of an entry's info file, or null when it has none (not an entry, or half-built). */
    static Map<String, String> info(Path file) {
        try {
            Map<String, String> p = new HashMap<>();
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                int eq = line.indexOf('=');
                if (eq > 0) p.put(line.substring(0, eq), line.substring(eq + 1));
            }
            return p;
        } catch (IOException e) {
            return null;
        }
    }

    /** What one prune did: the entries removed, those kept because a process has them open, and the failures. */
    record Outcome(List<Path> removed, List<Path> inUse, List<String> failures) {}

    /**
     * Prunes the entries of {@code cacheDir} that {@code current} supersedes, reporting on {@code err}.
     * Never throws.
     *
     * @param infoFile the name of each entry's key=value file
     * @param line     an entry's line from its info (null: not an entry this prune judges)
     * @param what     what an entry is, for the messages ("guest image", "root filesystem")
     */
    static Outcome prune(Path cacheDir, Path current, String infoFile, Function<Map<String, String>, String> line,
                         String what, PrintStream err) {
        Outcome out = new Outcome(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        try {
            Map<String, String> currentInfo = info(current.resolve(infoFile));
            String currentLine = currentInfo == null ? null : line.apply(currentInfo);
            if (currentLine == null) return out;
            List<Candidate> older = new ArrayList<>();
            List<Path> leftovers = new ArrayList<>();
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(cacheDir)) {
                for (Path d : ds) {
                    String name = d.getFileName().toString();
                    if (!Files.isDirectory(d, LinkOption.NOFOLLOW_LINKS) || d.equals(current)) continue;
                    if (name.startsWith(PRUNE_PREFIX)) { leftovers.add(d); continue; }
                    if (name.startsWith(".")) continue;
                    Map<String, String> info = info(d.resolve(infoFile));
                    if (info != null && currentLine.equals(line.apply(info)))
                        older.add(new Candidate(d, builtAt(d.resolve(infoFile))));
                }
            }
            removeAllBut(KEEP, older, leftovers, cacheDir, what, err, out);
        } catch (IOException | RuntimeException e) {
            fail(out, err, what, cacheDir, e);
        }
        return out;
    }

    /**
     * Prunes the siblings of {@code current} in {@code dir} whose names start with {@code prefix} and end with
     * {@code suffix}, directories or files, by the same rule as {@link #prune} with {@code keep} superseded ones: for cache items with no info file,
     * each built from sources or inputs that its name hashes ({@code default-guest-*} and {@code workloads-*} from
     * the jar's guest sources, a workload initramfs from its guest's), so a new name means the old ones are stale.
     * Their age is their modification time (a hit touches a file that is used again, see {@link #touch}). Never throws.
     */
    static Outcome pruneSiblings(Path dir, Path current, String prefix, String suffix, int keep, String what, PrintStream err) {
        Outcome out = new Outcome(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        try {
            List<Candidate> older = new ArrayList<>();
            List<Path> leftovers = new ArrayList<>();
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
                for (Path d : ds) {
                    String name = d.getFileName().toString();
                    if (d.equals(current) || Files.isSymbolicLink(d)) continue;
                    if (!name.endsWith(suffix)) continue; // a temporary file of a build in progress, say
                    if (name.startsWith(PRUNE_PREFIX + prefix)) leftovers.add(d);
                    else if (name.startsWith(prefix)) older.add(new Candidate(d, builtAt(d)));
                }
            }
            removeAllBut(keep, older, leftovers, dir, what, err, out);
        } catch (IOException | RuntimeException e) {
            fail(out, err, what, dir, e);
        }
        return out;
    }

    /** Marks a cache item as used now, so that {@link #pruneSiblings} takes it for one of the newest. Best effort. */
    static void touch(Path p) {
        try {
            Files.setLastModifiedTime(p, FileTime.fromMillis(System.currentTimeMillis()));
        } catch (IOException e) {
            // a read-only cache: the item is merely older than it is
        }
    }

    private record Candidate(Path dir, FileTime built) {}

    /** Removes the leftovers of earlier prunes and all but the {@code keep} newest of {@code older}. */
    private static void removeAllBut(int keep, List<Candidate> older, List<Path> leftovers, Path cacheDir, String what,
                                     PrintStream err, Outcome out) throws IOException {
        older.sort(Comparator.comparing(Candidate::built).reversed());
        List<Path> doomed = older.stream().skip(keep).map(Candidate::dir).toList();
        Map<Path, Long> open = doomed.isEmpty() ? Map.of() : openFilesUnder(cacheDir.toRealPath());
        for (Path d : leftovers) remove(d, d.getFileName().toString().substring(PRUNE_PREFIX.length()), what, err, out);
        for (Path d : doomed) pruneOne(d, open, what, err, out);
    }

    /** When an entry was built: its info file is written last, just before the entry is published. */
    private static FileTime builtAt(Path info) {
        try {
            return Files.getLastModifiedTime(info);
        } catch (IOException e) {
            return FileTime.fromMillis(0); // gone meanwhile: the oldest
        }
    }

    /** Hides the entry by renaming it, then deletes it, unless a process has one of its files open. */
    private static void pruneOne(Path d, Map<Path, Long> open, String what, PrintStream err, Outcome out) {
        try {
            Path real = d.toRealPath();
            var user = open.entrySet().stream().filter(e -> e.getKey().startsWith(real)).findFirst();
            if (user.isPresent()) {
                out.inUse().add(d);
                err.println("polyvisor: keeping the superseded " + what + " " + d.getFileName() + ": process "
                        + user.get().getValue() + " has " + user.get().getKey().getFileName() + " open");
                return;
            }
            Path hidden = d.resolveSibling(PRUNE_PREFIX + d.getFileName());
            Files.move(d, hidden, StandardCopyOption.ATOMIC_MOVE);
            remove(hidden, d.getFileName().toString(), what, err, out);
        } catch (IOException | RuntimeException e) {
            fail(out, err, what, d, e);
        }
    }

    /**
     * The files below {@code dir} that some process has open, with one such process: the targets of the
     * {@code /proc/PID/fd} links (proc(5)) this user may read, which include every VM this user runs.
     */
    static Map<Path, Long> openFilesUnder(Path dir) {
        Map<Path, Long> open = new HashMap<>();
        try (DirectoryStream<Path> procs = Files.newDirectoryStream(Path.of("/proc"), p -> p.getFileName().toString().matches("\\d+"))) {
            for (Path proc : procs) {
                try (DirectoryStream<Path> fds = Files.newDirectoryStream(proc.resolve("fd"))) {
                    for (Path fd : fds) {
                        try {
                            Path target = Files.readSymbolicLink(fd);
                            if (target.startsWith(dir)) open.putIfAbsent(target, Long.parseLong(proc.getFileName().toString()));
                        } catch (IOException e) {
                            // closed meanwhile
                        }
                    }
                } catch (IOException | SecurityException e) {
                    // another user's process, or one that ended
                }
            }
        } catch (IOException e) {
            // no /proc: nothing is known to be open
        }
        return open;
    }

    /** Deletes a renamed entry, reporting the space it held. */
    private static void remove(Path hidden, String name, String what, PrintStream err, Outcome out) {
        long bytes = diskUsage(hidden);
        try {
            DebianPackages.deleteTree(hidden);
        } catch (UncheckedIOException e) {
            fail(out, err, what, hidden, e.getCause());
            return;
        }
        out.removed().add(hidden.resolveSibling(name));
        err.println("polyvisor: removed the superseded " + what + " " + name + " (" + size(bytes) + " freed)");
    }

    private static void fail(Outcome out, PrintStream err, String what, Path p, Exception e) {
        String why = e instanceof FileSystemException f && f.getReason() != null ? f.getReason()
                : e instanceof AccessDeniedException ? "permission denied" : e.toString();
        String line = "polyvisor: could not remove the superseded " + what + " " + p + ": " + why;
        out.failures().add(line);
        err.println(line);
    }

    /**
     * The disk space a tree takes, as {@code du -sk} counts it (allocated blocks: a root filesystem image is
     * sparse, and its apparent size is the image size, not what removing it frees); the files' apparent
     * sizes if du cannot say.
     */
    static long diskUsage(Path dir) {
        try {
            Process p = new ProcessBuilder("du", "-sk", dir.toString()).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0) return Long.parseLong(out.split("\\s+")[0]) * 1024;
        } catch (IOException | NumberFormatException e) {
            // no du: the apparent sizes below
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try (var s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
        } catch (IOException | UncheckedIOException e) {
            return 0;
        }
    }

    static String size(long bytes) {
        if (bytes >= 1L << 30) return String.format(Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30));
        if (bytes >= 1L << 20) return String.format(Locale.ROOT, "%.0f MiB", bytes / (double) (1L << 20));
        return String.format(Locale.ROOT, "%d KiB", (bytes + 1023) >> 10);
    }
}
