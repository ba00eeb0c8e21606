package dev.polyvisor.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The guest {@code polyvisor run} boots when no {@code --kernel} is given: a freestanding multiboot
 * kernel whose sources ship inside the jar (src/main/guests/default). It is built with the host gcc
 * and ld on first use and cached under {@code $XDG_CACHE_HOME/polyvisor} (default ~/.cache/polyvisor),
 * keyed by a hash of its sources.
 */
public final class DefaultGuest {
    static final List<String> SOURCES = List.of("entry.S", "main.c", "link.ld");
    static final String RESOURCE_DIR = "/guests/default/";

    private DefaultGuest() {}

    /** A failure to build the guest, reported as one line. */
    public static final class BuildException extends Exception {
        BuildException(String m) { super(m); }
    }

    public static Path cacheRoot() {
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("polyvisor");
    }

    /** The built kernel, building it first if the cache lacks it. */
    public static Path kernel() throws BuildException {
        byte[][] src = new byte[SOURCES.size()][];
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new BuildException("SHA-256 is unavailable: " + e.getMessage());
        }
        for (int i = 0; i < src.length; i++) {
            try (InputStream in = DefaultGuest.class.getResourceAsStream(RESOURCE_DIR + SOURCES.get(i))) {
                if (in == null) throw new BuildException("the default guest's source " + SOURCES.get(i) + " is missing from the jar");
                src[i] = in.readAllBytes();
            } catch (IOException e) {
                throw new BuildException("cannot read the default guest's sources: " + e.getMessage());
            }
            sha.update(SOURCES.get(i).getBytes(StandardCharsets.UTF_8));
            sha.update(src[i]);
        }
        String key = HexFormat.of().formatHex(sha.digest()).substring(0, 16);
        Path dir = cacheRoot().resolve("default-guest-" + key);
        Path elf = dir.resolve("default-guest.elf");
        if (Files.isRegularFile(elf)) return elf;
        try {
            Files.createDirectories(dir);
            for (int i = 0; i < src.length; i++) Files.write(dir.resolve(SOURCES.get(i)), src[i]);
            String cflags = "-m32 -ffreestanding -fno-pic -fno-pie -nostdlib -fno-stack-protector -O2 -mgeneral-regs-only"
                    + " -fno-asynchronous-unwind-tables -fcf-protection=none";
            List<String> cc = new java.util.ArrayList<>(List.of("gcc"));
            cc.addAll(List.of(cflags.split(" ")));
            cc.addAll(List.of("-c", "main.c", "-o", "main.o"));
            run(dir, cc);
            run(dir, List.of("gcc", "-m32", "-c", "entry.S", "-o", "entry.o"));
            Path tmp = dir.resolve("default-guest.elf.tmp");
            run(dir, List.of("ld", "-m", "elf_i386", "-z", "noexecstack", "--no-warn-rwx-segments", "-T", "link.ld",
                    "-o", tmp.getFileName().toString(), "entry.o", "main.o"));
            Files.move(tmp, elf, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            dev.polyvisor.guest.GuestCache.pruneSuperseded(dir, "default-guest-", "default guest build");
            return elf;
        } catch (IOException e) {
            throw new BuildException("cannot build the default guest in " + dir + ": " + e.getMessage());
        }
    }

    private static void run(Path dir, List<String> cmd) throws BuildException, IOException {
        Process p;
        try {
            p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new BuildException("cannot build the default guest: " + cmd.getFirst() + " not found (install gcc and binutils)");
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        try {
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new BuildException("building the default guest timed out: " + String.join(" ", cmd));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BuildException("interrupted while building the default guest");
        }
        if (p.exitValue() != 0) {
            String first = out.lines().filter(l -> !l.isBlank()).findFirst().orElse("exit status " + p.exitValue());
            throw new BuildException("building the default guest failed: " + cmd.getFirst() + ": " + first);
        }
    }
}
