package dev.polyvisor.vmm;

import java.io.IOException;
import java.io.OutputStream;

/** Writes to two streams: a console and its log. */
public final class TeeOutputStream extends OutputStream {
    private final OutputStream a, b;

    public TeeOutputStream(OutputStream a, OutputStream b) {
        this.a = a;
        this.b = b;
    }

    @Override public void write(int x) throws IOException { a.write(x); b.write(x); }

    @Override public void write(byte[] buf, int off, int len) throws IOException { a.write(buf, off, len); b.write(buf, off, len); }

    @Override public void flush() throws IOException { a.flush(); b.flush(); }
}
