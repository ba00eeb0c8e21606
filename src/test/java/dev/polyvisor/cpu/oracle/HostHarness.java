package dev.polyvisor.cpu.oracle;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The host CPU, driven through src/test/native/oracle_harness.c in a child process (so a wild
 * instruction cannot take the JVM down). The harness is compiled with the host gcc into target/,
 * cached by a hash of its source. Cases go over the pipes in the harness's binary record format.
 */
final class HostHarness implements AutoCloseable {
    static final Path SOURCE = Path.of("src/test/native/oracle_harness.c");
    static final int RECORD_IN = 1616, RECORD_OUT = 1592, MAX_CODE = 32;
    /** Linear addresses shared with the emulator fixture (see the harness source). */
    static final long CODE_ADDR = 0x1000_0000L, DATA_ADDR = 0x2000_0000L;
    static final int CODE_OFF = 0x100, WIN_OFF = 0x600;
    /** Bytes after the code taken by the harness's return jump and its 8-aligned pointer (oracle_harness.c TRAILER). */
    static final int TRAILER = 21;
    /** Compatibility-mode cases: the data page's alias below 64 KiB, and the 64-bit return trampoline. */
    static final long LOW_ADDR = 0x7000L;
    static final int TRAMP_OFF = 0xF00;

    private final Process process;
    private final OutputStream out;
    private final DataInputStream in;
    private int pending;

    HostHarness(Path binary) throws IOException {
        process = new ProcessBuilder(binary.toString()).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        out = new BufferedOutputStream(process.getOutputStream(), 1 << 16);
        in = new DataInputStream(new BufferedInputStream(process.getInputStream(), 1 << 16));
    }

    /** Where the binary built from the current source lives: target/, named by a hash of the source. */
    private static Path binary() throws IOException {
        byte[] src = Files.readAllBytes(SOURCE);
        String hash;
        try {
            hash = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(src)).substring(0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        return Path.of("target", "oracle-harness", "oracle_harness-" + hash);
    }

    /**
     * Why the harness cannot be built on this host, or null when it can: a binary built from the same
     * source is already in target/, or gcc runs. A host without gcc is a reason to skip the oracle; a
     * compile error is not (it fails {@link #build}).
     */
    static String cannotBuild() throws IOException, InterruptedException {
        if (Files.isExecutable(binary())) return null;
        Process gcc;
        try {
            gcc = new ProcessBuilder("gcc", "--version").redirectErrorStream(true).start();
        } catch (IOException e) {
            return "gcc, which builds " + SOURCE + ", cannot be run (" + e.getMessage() + ")";
        }
        gcc.getInputStream().readAllBytes();
        if (!gcc.waitFor(60, TimeUnit.SECONDS)) {
            gcc.destroyForcibly();
            return "gcc --version did not finish";
        }
        return gcc.exitValue() == 0 ? null : "gcc --version exited with status " + gcc.exitValue();
    }

    /** Compiles the harness unless a binary built from the same source is already in target/. */
    static Path build() throws IOException, InterruptedException {
        Path bin = binary();
        Path dir = bin.getParent();
        Files.createDirectories(dir);
        if (Files.isExecutable(bin)) return bin;
        Path tmp = Files.createTempFile(dir, "build-", ".tmp");
        Process gcc = new ProcessBuilder("gcc", "-O2", "-Wall", "-o", tmp.toString(), SOURCE.toString())
                .redirectErrorStream(true).start();
        String log = new String(gcc.getInputStream().readAllBytes());
        if (!gcc.waitFor(120, TimeUnit.SECONDS) || gcc.exitValue() != 0)
            throw new IOException("gcc failed to build the oracle harness:\n" + log);
        Files.move(tmp, bin, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return bin;
    }

    /** Sends a batch; the harness starts running it at once. Collect the results with {@link #collect}. */
    void submit(List<OracleCase> cases) throws IOException {
        if (pending != 0) throw new IllegalStateException("previous batch not collected");
        ByteBuffer b = ByteBuffer.allocate(4 + cases.size() * RECORD_IN).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(cases.size());
        for (OracleCase c : cases) {
            if (c.code().length > MAX_CODE) throw new IllegalArgumentException("code longer than " + MAX_CODE + " bytes");
            int base = b.position();
            b.put((byte) c.code().length);
            b.put((byte) (c.input().compat ? 1 : 0)); // struct in_case.mode
            b.position(base + 24);
            MachineState s = c.input();
            for (long g : s.gpr) b.putLong(g);
            b.putLong(s.rflags);
            b.putInt(s.mxcsr);
            b.putInt(0);
            for (long x : s.xmm) b.putLong(x);
            b.put(s.mem);
            b.put(c.code());
            b.position(base + 1480);
            putX87(b, s);
            b.position(base + RECORD_IN);
        }
        out.write(b.array());
        out.flush();
        pending = cases.size();
    }

    MachineState[] collect() throws IOException {
        MachineState[] r = new MachineState[pending];
        byte[] rec = new byte[RECORD_OUT];
        for (int i = 0; i < r.length; i++) {
            try {
                in.readFully(rec);
            } catch (EOFException e) {
                throw new IOException("oracle harness died (exit status " + exitStatus() + ")", e);
            }
            ByteBuffer b = ByteBuffer.wrap(rec).order(ByteOrder.LITTLE_ENDIAN);
            MachineState s = new MachineState();
            int trap = b.getInt();
            s.trap = trap == -1 ? MachineState.NO_TRAP : trap;
            s.err = b.getInt(); // compared for #GP, #SS, #TS and #NP only (the kernel rewrites #PF error codes)
            s.faultAddr = b.getLong();
            s.rip = b.getLong();
            for (int g = 0; g < 16; g++) s.gpr[g] = b.getLong();
            s.rflags = b.getLong();
            s.mxcsr = b.getInt();
            s.dirty = b.getInt();
            for (int x = 0; x < 32; x++) s.xmm[x] = b.getLong();
            b.get(s.mem);
            getX87(b, s);
            s.pageHash = b.getLong();
            r[i] = s;
        }
        pending = 0;
        return r;
    }

    /** The harness's struct x87: FCW, FSW, abridged FTW, 3 pad bytes, ST(0..7) as 16-byte slots. */
    private static void putX87(ByteBuffer b, MachineState s) {
        b.putShort((short) s.fcw).putShort((short) s.fsw).put((byte) s.ftw).put(new byte[3]);
        for (int i = 0; i < 8; i++) b.putLong(s.stMant[i]).putShort((short) s.stExp[i]).put(new byte[6]);
    }

    private static void getX87(ByteBuffer b, MachineState s) {
        s.fcw = b.getShort() & 0xFFFF;
        s.fsw = b.getShort() & 0xFFFF;
        s.ftw = b.get() & 0xFF;
        b.position(b.position() + 3);
        for (int i = 0; i < 8; i++) {
            s.stMant[i] = b.getLong();
            s.stExp[i] = b.getShort() & 0xFFFF;
            b.position(b.position() + 6);
        }
    }

    private String exitStatus() {
        try {
            return process.waitFor(5, TimeUnit.SECONDS) ? String.valueOf(process.exitValue()) : "still running";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "unknown";
        }
    }

    @Override
    public void close() throws IOException {
        try {
            out.write(new byte[4]);
            out.flush();
            out.close();
            if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly();
        } catch (IOException | InterruptedException e) {
            process.destroyForcibly();
        } finally {
            InputStream s = process.getInputStream();
            s.close();
        }
    }
}
