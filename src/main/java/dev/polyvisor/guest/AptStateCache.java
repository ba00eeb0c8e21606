package dev.polyvisor.guest;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;

/**
 * Remembers the answers of apt queries for as long as apt's inputs are unchanged. Choosing the default guest
 * asks apt-cache three questions (the metapackage's kernel, two candidate versions): 0.45 s of process time
 * before every default {@code run} (session 12; apt-cache's binary cache already saves it from re-parsing the
 * lists). Those answers depend only on apt's package lists, the dpkg status file and apt's configuration
 * (sources, preferences, apt.conf.d), so a digest of their names, sizes and modification times, which takes a
 * millisecond, says whether a stored answer still holds. apt validates its own binary cache the same way
 * (pkgcachegen.cc compares each list's size and mtime). Any change, an {@code apt-get update} included, makes
 * the next call ask apt again.
 */
final class AptStateCache {
    /** What decides apt's answers on a Debian host, as apt's defaults place it (Dir::State::lists, Dir::Etc, dpkg's status). */
    static final List<Path> HOST_APT_INPUTS = List.of(Path.of("/var/lib/apt/lists"), Path.of("/var/lib/dpkg/status"), Path.of("/etc/apt"));

    private final Path file;
    private final List<Path> inputs;

    AptStateCache(Path file, List<Path> inputs) {
        this.file = file;
        this.inputs = List.copyOf(inputs);
    }

    /** Answers to apt queries, as string properties. */
    interface Query { Properties ask() throws GuestImageException; }

    /**
     * The stored answer when apt's inputs are what they were when it was stored, else {@code query}'s, stored
     * for next time (a cache that cannot be read or written is asked around, never an error).
     */
    Properties get(Query query) throws GuestImageException {
        String before = digest();
        if (before != null) {
            Properties stored = read();
            if (stored != null && before.equals(stored.getProperty(KEY))) {
                stored.remove(KEY);
                return stored;
            }
        }
        Properties answer = query.ask();
        // The query may have run apt-get update: the state after it is what the answer belongs to.
        String after = digest();
        if (after != null) write(answer, after);
        return answer;
    }

    private static final String KEY = "apt-state";

    /**
     * SHA-256 over every regular file under the inputs: path, size, modification time; null when an input
     * cannot be read (no apt here: nothing is cached). A missing input is part of the state.
     */
    String digest() {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (Path in : inputs) {
                List<String> lines = new ArrayList<>();
                if (Files.isDirectory(in)) {
                    // A directory this user may not read (apt's lists/partial is _apt's, mode 0700) is named, not read:
                    // apt's answers do not depend on what is being downloaded there.
                    Files.walkFileTree(in, new SimpleFileVisitor<>() {
                        @Override public FileVisitResult visitFile(Path p, BasicFileAttributes a) {
                            if (a.isRegularFile()) lines.add(p + " " + a.size() + " " + a.lastModifiedTime().toMillis());
                            return FileVisitResult.CONTINUE;
                        }

                        @Override public FileVisitResult visitFileFailed(Path p, IOException e) {
                            lines.add(p + " unreadable");
                            return FileVisitResult.CONTINUE;
                        }
                    });
                    java.util.Collections.sort(lines);
                } else if (Files.exists(in)) {
                    BasicFileAttributes a = Files.readAttributes(in, BasicFileAttributes.class);
                    lines.add(in + " " + a.size() + " " + a.lastModifiedTime().toMillis());
                } else {
                    lines.add(in + " absent");
                }
                for (String l : lines) md.update((l + "\n").getBytes(StandardCharsets.UTF_8));
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (IOException | UncheckedIOException e) {
            return null;
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is a required JDK algorithm", e);
        }
    }

    private Properties read() {
        Properties p = new Properties();
        try (var in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            p.load(in);
            return p;
        } catch (IOException | IllegalArgumentException e) {
            return null;
        }
    }

    private void write(Properties answer, String state) {
        Properties p = new Properties();
        p.putAll(answer);
        p.setProperty(KEY, state);
        try {
            Files.createDirectories(file.getParent());
            Path tmp = Files.createTempFile(file.getParent(), file.getFileName().toString(), ".tmp");
            try (var out = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                p.store(out, "apt's answers for the apt state in " + KEY + " (AptStateCache)");
            }
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException | UncheckedIOException e) {
            // not cached: the next call asks apt again
        }
    }
}
