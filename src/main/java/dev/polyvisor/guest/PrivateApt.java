package dev.polyvisor.guest;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A private apt configuration for one Debian suite, under {@code <cache>/apt/<suite>/}: its own
 * {@code sources.list}, package lists, status file, preferences and download cache, so Polyvisor can
 * fetch a kernel from any suite without root and without touching the host's {@code /etc/apt}
 * sources or lists. The host's {@code apt.conf.d} is still read (apt.conf(5): the parts directory comes
 * first, then {@code -c} files, which override it), so a proxy, mirror credentials or
 * {@code Acquire::Check-Valid-Until "false"} the host configured keep applying. Every apt command gets
 * {@code -c <dir>/apt.conf}; a user can run the same commands by hand.
 *
 * <p>The archive is signed by {@code /usr/share/keyrings/debian-archive-keyring.gpg} (package
 * debian-archive-keyring), named per source with {@code signed-by} (sources.list(5)).
 */
public record PrivateApt(String suite, Path dir, String mirror, String securityMirror) {
    /** The suites a kernel can be fetched from, in the order they are listed to users. */
    public static final List<String> SUITES = List.of("bookworm", "bookworm-backports", "trixie", "sid", "experimental");
    public static final String KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";
    public static final String DEFAULT_MIRROR = "http://deb.debian.org/debian";
    public static final String DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security";
    /** Overrides the archive URL (e.g. a local mirror); {@code POLYVISOR_DEBIAN_SECURITY_MIRROR} likewise for security. */
    public static final String MIRROR_ENV = "POLYVISOR_DEBIAN_MIRROR", SECURITY_MIRROR_ENV = "POLYVISOR_DEBIAN_SECURITY_MIRROR";

    /** Stable suites also carry their -updates and -security archives, as a Debian system's sources do. */
    private static final Map<String, List<String>> ARCHIVES = Map.of(
            "bookworm", List.of("bookworm", "bookworm-updates"),
            "bookworm-backports", List.of("bookworm", "bookworm-updates", "bookworm-backports"),
            "trixie", List.of("trixie", "trixie-updates"),
            "sid", List.of("sid"),
            "experimental", List.of("sid", "experimental"));
    private static final Map<String, String> SECURITY = Map.of(
            "bookworm", "bookworm-security", "bookworm-backports", "bookworm-security", "trixie", "trixie-security");

    public PrivateApt {
        requireSuite(suite);
    }

    /** The private configuration of {@code suite} in the user's cache, mirrors from the environment or Debian's CDN. */
    public static PrivateApt forSuite(String suite) throws GuestImageException {
        requireSuite(suite);
        String m = System.getenv(MIRROR_ENV), s = System.getenv(SECURITY_MIRROR_ENV);
        return new PrivateApt(suite, GuestCache.directory().resolve("apt").resolve(suite),
                m == null || m.isBlank() ? DEFAULT_MIRROR : m.strip(), s == null || s.isBlank() ? DEFAULT_SECURITY_MIRROR : s.strip());
    }

    /** The one-line refusal of an unknown suite, naming the valid ones. */
    public static String unknownSuite(String suite) {
        return "unknown suite '" + suite + "': valid suites are " + String.join(", ", SUITES);
    }

    private static void requireSuite(String suite) {
        if (!SUITES.contains(suite)) throw new IllegalArgumentException(unknownSuite(suite));
    }

    /**
     * Backports and experimental are NotAutomatic in their Release files (priority 100 and 1,
     * apt_preferences(5)), so apt would pick the base suite's version: they become the default
     * release (priority 990), as {@code apt-get -t SUITE} does.
     */
    public String defaultRelease() {
        return suite.equals("bookworm-backports") || suite.equals("experimental") ? suite : null;
    }

    public Path configFile() { return dir.resolve("apt.conf"); }

    public Path sourcesFile() { return dir.resolve("sources.list"); }

    Path stateDir() { return dir.resolve("state"); }

    Path cacheDir() { return dir.resolve("cache"); }

    /** When the lists were last refreshed successfully (its mtime). */
    Path updatedStamp() { return stateDir().resolve("updated"); }

    /** sources.list(5) one-line entries: the suite (and the suites it builds on), main only, signed by Debian's keyring. */
    public String sourcesList() {
        StringBuilder b = new StringBuilder("# Polyvisor's private sources for " + suite + " (dev.polyvisor.guest.PrivateApt)\n");
        for (String s : ARCHIVES.get(suite)) b.append(line(mirror, s));
        String sec = SECURITY.get(suite);
        if (sec != null) b.append(line(securityMirror, sec));
        return b.toString();
    }

    private static String line(String uri, String suite) {
        return "deb [signed-by=" + KEYRING + "] " + uri + " " + suite + " main\n";
    }

    /**
     * The configuration passed with {@code -c}: every directory apt writes to or reads sources and
     * pins from is private. The binary package cache is kept (the host may disable it, as Debian's
     * docker images do, which makes every query re-parse the lists: 2.4 s instead of 0.7 s for sid);
     * the source cache, as large again, is not.
     */
    public String aptConf() {
        String state = stateDir().toString(), cache = cacheDir().toString();
        StringBuilder b = new StringBuilder();
        b.append("// Polyvisor's private apt configuration for ").append(suite).append(" (dev.polyvisor.guest.PrivateApt).\n");
        b.append("// Used as: apt-get -c ").append(configFile()).append(" update|download ...\n");
        b.append(kv("Dir::State", state));
        b.append(kv("Dir::State::lists", state + "/lists/"));
        b.append(kv("Dir::State::status", state + "/status"));
        b.append(kv("Dir::State::extended_states", state + "/extended_states"));
        b.append(kv("Dir::Cache", cache));
        b.append(kv("Dir::Cache::archives", cache + "/archives/"));
        b.append(kv("Dir::Cache::pkgcache", cache + "/pkgcache.bin"));
        b.append(kv("Dir::Cache::srcpkgcache", ""));
        b.append(kv("Dir::Etc::sourcelist", sourcesFile().toString()));
        b.append(kv("Dir::Etc::sourceparts", dir.resolve("sources.list.d").toString()));
        b.append(kv("Dir::Etc::preferences", dir.resolve("preferences").toString()));
        b.append(kv("Dir::Etc::preferencesparts", dir.resolve("preferences.d").toString()));
        b.append(kv("Acquire::Languages", "none"));
        // The download directory belongs to the user; apt's _apt sandbox user could not write there.
        b.append(kv("APT::Sandbox::User", "root"));
        if (defaultRelease() != null) b.append(kv("APT::Default-Release", defaultRelease()));
        return b.toString();
    }

    private static String kv(String key, String value) {
        return key + " \"" + value.replace("\\", "\\\\").replace("\"", "\\\"") + "\";\n";
    }

    /** Creates the directory tree and (re)writes the configuration files when they differ. */
    public void write() throws GuestImageException {
        try {
            for (Path d : new Path[] {dir.resolve("sources.list.d"), dir.resolve("preferences.d"), stateDir().resolve("lists/partial"),
                    cacheDir().resolve("archives/partial")})
                Files.createDirectories(d);
            writeIfChanged(configFile(), aptConf());
            writeIfChanged(sourcesFile(), sourcesList());
            Path status = stateDir().resolve("status");
            if (!Files.exists(status)) Files.createFile(status); // nothing is installed in this private root
            Path prefs = dir.resolve("preferences");
            if (!Files.exists(prefs)) Files.createFile(prefs);
        } catch (IOException e) {
            throw new GuestImageException("cannot write the private apt configuration in " + dir + ": " + e.getMessage(), e);
        }
    }

    private static void writeIfChanged(Path p, String text) throws IOException {
        if (Files.isRegularFile(p) && Files.readString(p, StandardCharsets.UTF_8).equals(text)) return;
        Path tmp = p.resolveSibling(p.getFileName() + ".tmp");
        Files.writeString(tmp, text, StandardCharsets.UTF_8);
        Files.move(tmp, p, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    /** {@code tool -c <conf> args...}: an apt command under this configuration. */
    public List<String> command(String tool, String... args) {
        List<String> cmd = new ArrayList<>(List.of(tool, "-c", configFile().toString()));
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** True when package lists have been fetched for every configured archive at least once. */
    public boolean hasLists() {
        return Files.isRegularFile(updatedStamp());
    }

    /** Age of the lists in milliseconds, or Long.MAX_VALUE without lists. */
    public long listsAgeMillis() {
        try {
            return hasLists() ? System.currentTimeMillis() - Files.getLastModifiedTime(updatedStamp()).toMillis() : Long.MAX_VALUE;
        } catch (IOException e) {
            return Long.MAX_VALUE;
        }
    }

    void markUpdated() throws IOException {
        Path stamp = updatedStamp();
        Files.writeString(stamp, suite + "\n", StandardCharsets.UTF_8);
        Files.setLastModifiedTime(stamp, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis()));
    }

    /** An exclusive lock on this configuration across processes (two test JVMs updating the same lists). */
    Lock lock() throws IOException {
        Files.createDirectories(dir);
        FileChannel ch = FileChannel.open(dir.resolve(".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        try {
            ch.lock();
            return new Lock(ch);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** Held until closed; closing the channel releases the lock. */
    record Lock(FileChannel channel) implements AutoCloseable {
        @Override public void close() throws IOException { channel.close(); }
    }
}
