package dev.polyvisor.cpu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Assembles Intel-syntax snippets with the host GNU {@code as} at test time (flat binary of .text). */
public final class Asm {
    private static final Map<String, byte[]> CACHE = new ConcurrentHashMap<>();

    private Asm() {}

    public static byte[] assemble(int bits, String src) {
        return CACHE.computeIfAbsent(bits + "\n" + src, k -> build(bits, src)).clone();
    }

    private static byte[] build(int bits, String src) {
        try {
            Path dir = Files.createTempDirectory("pvasm");
            try {
                Path s = dir.resolve("a.s"), o = dir.resolve("a.o"), b = dir.resolve("a.bin");
                Files.writeString(s, ".intel_syntax noprefix\n.code" + bits + "\n" + src + "\n");
                exec(dir, List.of("as", "--64", "-o", o.toString(), s.toString()));
                exec(dir, List.of("objcopy", "-O", "binary", "-j", ".text", o.toString(), b.toString()));
                return Files.readAllBytes(b);
            } finally {
                try (var files = Files.list(dir)) { for (Path p : files.toList()) Files.deleteIfExists(p); }
                Files.deleteIfExists(dir);
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot run the host assembler: " + e.getMessage(), e);
        }
    }

    private static void exec(Path dir, List<String> cmd) throws IOException {
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        try {
            String out = new String(p.getInputStream().readAllBytes());
            if (p.waitFor() != 0) throw new IllegalArgumentException(cmd.get(0) + " failed:\n" + out);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }
}
