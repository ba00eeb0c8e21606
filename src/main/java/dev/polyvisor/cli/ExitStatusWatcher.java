package dev.polyvisor.cli;

import dev.polyvisor.guest.GuestInit;

import java.io.ByteArrayOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Passes the console through and watches for the line the default guest's /init prints after an
 * {@code --exec} command, {@code polyvisor: exit status N} ({@link GuestInit#EXIT_MARKER_PREFIX}).
 */
final class ExitStatusWatcher extends FilterOutputStream {
    private static final int MAX_LINE = 512;
    private final ByteArrayOutputStream line = new ByteArrayOutputStream();
    private volatile int status = -1;

    ExitStatusWatcher(OutputStream out) { super(out); }

    /** The status the guest reported, or -1 if it has not printed the line. */
    int status() { return status; }

    @Override
    public void write(int b) throws IOException {
        out.write(b);
        see(b);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        out.write(b, off, len);
        for (int i = 0; i < len; i++) see(b[off + i]);
    }

    private void see(int b) {
        b &= 0xFF;
        if (b == '\n') {
            String l = line.toString(StandardCharsets.ISO_8859_1).strip();
            line.reset();
            int at = l.indexOf(GuestInit.EXIT_MARKER_PREFIX);
            if (at >= 0) {
                String n = l.substring(at + GuestInit.EXIT_MARKER_PREFIX.length()).strip();
                if (n.matches("\\d{1,3}")) status = Integer.parseInt(n);
            }
        } else if (line.size() < MAX_LINE) {
            line.write(b);
        }
    }
}
