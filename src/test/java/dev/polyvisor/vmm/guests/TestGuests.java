package dev.polyvisor.vmm.guests;

import dev.polyvisor.vmm.Outcome;
import dev.polyvisor.vmm.Vm;
import dev.polyvisor.vmm.VmConfig;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Builds the freestanding guests in src/test/guests with the host toolchain (make, gcc, ld, objcopy)
 * into target/guests, once per test JVM, and runs them in a {@link Vm}.
 */
public final class TestGuests {
    public static final Path SOURCES = Path.of("src/test/guests").toAbsolutePath();
    public static final Path OUT = Path.of("target/guests").toAbsolutePath();
    private static boolean built;

    private TestGuests() {}

    /** A finished guest run: what it printed and how the VM ended. */
    public record Run(String console, Outcome outcome) {
        public int status() { return outcome.status(); }

        /** The console followed by how the VM ended, for assertion messages. */
        public String describe() { return console + "\n[" + outcome.kind() + " " + outcome.status() + ": " + outcome.message() + "]"; }
    }

    public static synchronized Path guest(String name) {
        if (!built) {
            make("all");
            built = true;
        }
        Path p = OUT.resolve(name + ".elf");
        if (!Files.isRegularFile(p)) throw new IllegalStateException("guest " + name + " was not built: " + p);
        return p;
    }

    /** Builds and runs the host version of a helper (e.g. bench-host) and returns its stdout. */
    public static String host(String program, String... args) throws IOException, InterruptedException {
        Path exe = OUT.resolve(program);
        run(new ProcessBuilder("gcc", "-O2", "-o", exe.toString(), SOURCES.resolve(program.replace('-', '_') + ".c").toString()));
        String[] cmd = new String[args.length + 1];
        cmd[0] = exe.toString();
        System.arraycopy(args, 0, cmd, 1, args.length);
        return run(new ProcessBuilder(cmd));
    }

    private static void make(String target) {
        try {
            run(new ProcessBuilder("make", "-s", "-C", SOURCES.toString(), "OUT=" + OUT, target));
        } catch (IOException | InterruptedException e) {
            throw new IllegalStateException("building the test guests failed: " + e.getMessage(), e);
        }
    }

    private static String run(ProcessBuilder pb) throws IOException, InterruptedException {
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0)
            throw new IOException(String.join(" ", pb.command()) + " failed:\n" + out);
        return out;
    }

    /** Boots a guest with the multiboot loader and runs it to the end (or the timeout). */
    public static Run boot(String name, String append, Duration timeout) throws Exception {
        return boot(VmConfig.of(guest(name), VmConfig.BootKind.MULTIBOOT).withMemory(64).withAppend(append).withTimeout(timeout));
    }

    public static Run boot(VmConfig cfg) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (Vm vm = new Vm(cfg, out)) {
            Outcome o = vm.run();
            return new Run(out.toString(StandardCharsets.ISO_8859_1).replace("\r", ""), o);
        }
    }

    public static Run boot(String name) throws Exception { return boot(name, "", Duration.ofSeconds(30)); }
}
