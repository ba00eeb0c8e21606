package dev.polyvisor.cli;

import java.io.ByteArrayOutputStream;

/**
 * QEMU's serial-console escape: Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A to the guest; any other
 * byte after Ctrl-A is passed on with it. The state survives across reads, so an escape split over two
 * reads still works.
 */
final class ConsoleEscape {
    static final int CTRL_A = 0x01;
    private boolean pendingEscape;
    private boolean quit;

    /** Filters host input; returns the bytes for the guest. After a quit, everything is dropped. */
    byte[] filter(byte[] in, int len) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(len);
        for (int i = 0; i < len && !quit; i++) {
            int b = in[i] & 0xFF;
            if (pendingEscape) {
                pendingEscape = false;
                if (b == 'x' || b == 'X') { quit = true; break; }
                out.write(CTRL_A);
                if (b != CTRL_A) out.write(b);
            } else if (b == CTRL_A) {
                pendingEscape = true;
            } else {
                out.write(b);
            }
        }
        return out.toByteArray();
    }

    boolean quitRequested() { return quit; }
}
