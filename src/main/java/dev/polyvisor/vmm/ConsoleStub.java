package dev.polyvisor.vmm;

import dev.polyvisor.devices.PortIoDevice;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;

/**
 * The smallest COM1 that test kernels need (ports 0x3F8-0x3FF): a write to THR (offset 0, DLAB=0)
 * goes to the console, LSR (offset 5) always reads THRE|TEMT (0x60: the transmitter is empty), and the
 * other registers read zero and ignore writes, except LCR (offset 3) whose DLAB bit is kept so divisor
 * writes at offset 0 are not printed. The full 16550A lives in {@code devices}; this stands in until
 * it is wired. Register map from the PC16550D datasheet, table II.
 */
public final class ConsoleStub implements PortIoDevice {
    public static final int COM1 = 0x3F8;
    private static final int THR = 0, LCR = 3, LSR = 5, LCR_DLAB = 0x80, LSR_THRE_TEMT = 0x60;

    private final OutputStream out;
    private int lcr;

    public ConsoleStub(OutputStream out) { this.out = out; }

    @Override
    public long in(int port, int size) {
        return switch (port - COM1) {
            case LSR -> LSR_THRE_TEMT;
            case LCR -> lcr;
            default -> 0;
        };
    }

    @Override
    public void out(int port, int size, long value) {
        switch (port - COM1) {
            case THR -> {
                if ((lcr & LCR_DLAB) != 0) return; // divisor latch low byte
                try {
                    out.write((int) value & 0xFF);
                    if ((value & 0xFF) == '\n') out.flush();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
            case LCR -> lcr = (int) value & 0xFF;
            default -> { }
        }
    }
}
