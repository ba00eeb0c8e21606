package dev.polyvisor.cli;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;

/**
 * A serial console's line ends made Unix ones: the guest's tty sends CR LF for every newline (termios
 * ONLCR), and a CR followed by LF becomes LF. A CR not followed by LF (a progress line redrawn in place)
 * passes through; one that ends a write is held until the next byte shows which it is.
 */
final class CrlfToLf extends FilterOutputStream {
    private boolean pendingCr;

    CrlfToLf(OutputStream out) { super(out); }

    @Override
    public void write(int b) throws IOException {
        b &= 0xFF;
        if (pendingCr) {
            pendingCr = false;
            if (b != '\n') out.write('\r');
        }
        if (b == '\r') pendingCr = true;
        else out.write(b);
    }

    @Override
    public void write(byte[] buf, int off, int len) throws IOException {
        byte[] o = new byte[len + 1];
        int n = 0;
        for (int i = off; i < off + len; i++) {
            byte b = buf[i];
            if (pendingCr) {
                pendingCr = false;
                if (b != '\n') o[n++] = '\r';
            }
            if (b == '\r') pendingCr = true;
            else o[n++] = b;
        }
        out.write(o, 0, n);
    }

    @Override
    public void flush() throws IOException { out.flush(); }

    /** The console's last CR, if it ended the output, is written before closing. */
    @Override
    public void close() throws IOException {
        if (pendingCr) { pendingCr = false; out.write('\r'); }
        out.flush();
    }
}
