package dev.polyvisor.guest;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The per-user cache that holds downloaded .deb files and the guest images built from them.
 * Chosen in this order: the {@code polyvisor.cache} system property, {@code $XDG_CACHE_HOME/polyvisor}
 * (XDG Base Directory Specification), {@code ~/.cache/polyvisor}.
 */
public final class GuestCache {
    private GuestCache() {}

    public static Path directory() {
        String prop = System.getProperty("polyvisor.cache");
        if (prop != null && !prop.isBlank()) return Path.of(prop);
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank() && Path.of(xdg).isAbsolute()) return Path.of(xdg, "polyvisor");
        return Path.of(System.getProperty("user.home"), ".cache", "polyvisor");
    }

    /**
     * After {@code current}, a directory of the cache named {@code prefix} and a hash of what it was built from, has
     * been built: removes the older ones of that name, which nothing looks up again, but the newest of them and
     * any a process has open (one line each on stderr; never fails). The rule of {@link GuestImages}' entries.
     */
    public static void pruneSuperseded(Path current, String prefix, String what) {
        CacheEntries.pruneSiblings(current.getParent(), current, prefix, "", CacheEntries.KEEP, what, System.err);
    }

    /** A subdirectory of the cache, created if missing. */
    public static Path subdirectory(String name) {
        Path dir = directory().resolve(name);
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create cache directory " + dir + ": " + e.getMessage(), e);
        }
        return dir;
    }
}
