package dev.polyvisor.devices;

import java.util.ArrayDeque;

/**
 * Intel 8042 keyboard controller as found on a PC/AT with PS/2 ports (IBM PS/2 Hardware Interface
 * Technical Reference, "Keyboard/Auxiliary Device Controller"): data port 0x60, status (read) and
 * command (write) port 0x64.
 *
 * <p>A keyboard with no keys pressed is attached: it acknowledges (0xFA) every command, answers
 * reset (0xFF) with 0xFA 0xAA, identify (0xF2) with 0xFA 0xAB 0x83 and echo (0xEE) with 0xEE. The
 * auxiliary (mouse) port exists but nothing is plugged in: bytes sent to it (0xD4) are answered
 * with 0xFE (resend) and the timeout bit, so Linux's psmouse probe fails at once. Every controller
 * command Linux's i8042 driver issues (drivers/input/serio/i8042.c: 0x20/0x60 command byte,
 * 0xAA self-test, 0xAB/0xA9 interface tests, 0xD3 aux loopback, 0xA7/0xA8/0xAD/0xAE) gets its answer,
 * so no probe waits for a timeout. Command 0xFE (pulse output port bit 0) and a write of output port
 * bit 0 = 0 (0xD1) reset the machine through the reset callback.
 */
public final class I8042 implements PortIoDevice {
    static final int STS_OBF = 0x01, STS_IBF = 0x02, STS_SYS = 0x04, STS_CMD = 0x08, STS_UNLOCKED = 0x10,
            STS_AUX = 0x20, STS_TIMEOUT = 0x40;
    static final int CTR_KBDINT = 0x01, CTR_AUXINT = 0x02, CTR_SYS = 0x04, CTR_KBDDIS = 0x10, CTR_AUXDIS = 0x20, CTR_XLATE = 0x40;

    private record Out(int value, boolean aux, boolean timeout) {}

    private final IrqLine irq1, irq12;
    private final Runnable reset;
    private final ArrayDeque<Out> output = new ArrayDeque<>();
    private int ctr = CTR_KBDINT | CTR_SYS | CTR_XLATE; // as a BIOS leaves it
    private int outputPort = 0x03; // bit 0 = !reset, bit 1 = A20 gate
    private int pendingCommand = -1; // controller command waiting for its data byte
    private int pendingKbdCommand = -1; // keyboard command waiting for its argument
    private boolean lastWasCommand;
    private boolean irq1Level, irq12Level;

    public I8042(IrqLine irq1, IrqLine irq12, Runnable reset) {
        this.irq1 = irq1;
        this.irq12 = irq12;
        this.reset = reset == null ? () -> {} : reset;
    }

    public void register(IoBus bus) {
        bus.register(0x60, 1, this);
        bus.register(0x64, 1, this);
    }

    /** The A20 gate (output port bit 1); this VMM always has A20 enabled, but the guest can read it back. */
    public synchronized boolean a20() { return (outputPort & 2) != 0; }

    @Override
    public long in(int port, int size) {
        int v;
        boolean dataRead = port != 0x64;
        synchronized (this) {
            if (!dataRead) {
                Out head = output.peek();
                v = STS_UNLOCKED | (ctr & CTR_SYS) | (lastWasCommand ? STS_CMD : 0);
                if (head != null) v |= STS_OBF | (head.aux ? STS_AUX : 0) | (head.timeout ? STS_TIMEOUT : 0);
            } else {
                Out head = output.poll();
                v = head == null ? 0 : head.value; // reading an empty buffer returns stale data; 0 here
            }
        }
        // Reading the data port empties the buffer, dropping IRQ1/IRQ12; the next queued byte raises a
        // fresh edge, so the edge-triggered PIC sees one interrupt per byte, as Linux's handler expects.
        if (dataRead) lowerIrqs();
        updateIrqs();
        return v;
    }

    @Override
    public void out(int port, int size, long value) {
        int v = (int) value & 0xFF;
        boolean doReset;
        synchronized (this) {
            doReset = port == 0x64 ? command(v) : data(v);
        }
        updateIrqs();
        if (doReset) reset.run();
    }

    private void kbd(int v) { output.add(new Out(v, false, false)); }

    private void aux(int v, boolean timeout) { output.add(new Out(v, true, timeout)); }

    /** A controller command; returns true if it resets the system. */
    private boolean command(int c) {
        lastWasCommand = true;
        pendingCommand = -1;
        switch (c) {
            case 0x20 -> kbd(ctr);                      // read command byte
            case 0x60, 0xD1, 0xD2, 0xD3, 0xD4 -> pendingCommand = c; // take a data byte
            case 0xA7 -> ctr |= CTR_AUXDIS;             // disable aux port
            case 0xA8 -> ctr &= ~CTR_AUXDIS;            // enable aux port
            case 0xA9 -> kbd(0x00);                     // aux interface test: OK
            case 0xAA -> {                              // controller self-test
                ctr |= CTR_SYS;
                kbd(0x55);
            }
            case 0xAB -> kbd(0x00);                     // keyboard interface test: OK
            case 0xAD -> ctr |= CTR_KBDDIS;             // disable keyboard
            case 0xAE -> ctr &= ~CTR_KBDDIS;            // enable keyboard
            case 0xC0 -> kbd(0xBF);                     // input port: keyboard not inhibited
            case 0xD0 -> kbd(outputPort | (output.isEmpty() ? 0 : 0x10)); // output port
            case 0xE0 -> kbd(0x00);                     // test inputs
            default -> {
                // 0xF0-0xFF pulse output port bits 3:0 low for 6 us; bit 0 is the CPU reset line.
                if (c >= 0xF0 && (c & 1) == 0) return true;
            }
        }
        return false;
    }

    /** A byte written to port 0x60: a pending command's argument, else a byte for the keyboard. */
    private boolean data(int v) {
        lastWasCommand = false;
        int cmd = pendingCommand;
        pendingCommand = -1;
        switch (cmd) {
            case 0x60 -> ctr = v;
            case 0xD1 -> {
                outputPort = v;
                if ((v & 1) == 0) return true; // output port bit 0 low asserts the CPU reset
            }
            case 0xD2 -> kbd(v);               // write keyboard output buffer (as if the keyboard sent it)
            case 0xD3 -> aux(v, false);        // write aux output buffer (Linux's AUX loopback test)
            case 0xD4 -> aux(0xFE, true);      // to the aux device: none attached, so resend + timeout
            default -> keyboardByte(v);
        }
        return false;
    }

    /** The keyboard's command set (IBM PS/2 keyboard, scan code set 2 with controller translation). */
    private void keyboardByte(int v) {
        ctr &= ~CTR_KBDDIS; // writing to the keyboard enables its interface
        if (pendingKbdCommand >= 0) {
            int c = pendingKbdCommand;
            pendingKbdCommand = -1;
            kbd(0xFA);
            if (c == 0xF0 && v == 0) kbd(0x02); // get current scan code set: 2
            return;
        }
        switch (v) {
            case 0xFF -> { kbd(0xFA); kbd(0xAA); }          // reset and basic assurance test passed
            case 0xF2 -> { kbd(0xFA); kbd(0xAB); kbd(0x83); } // identify: MF2 keyboard
            case 0xEE -> kbd(0xEE);                           // echo
            case 0xED, 0xF0, 0xF3 -> { pendingKbdCommand = v; kbd(0xFA); } // commands with an argument
            default -> kbd(0xFA);
        }
    }

    /** IRQ1/IRQ12 follow OBF for keyboard/aux data when enabled in the command byte. */
    private void updateIrqs() {
        boolean l1, l12;
        synchronized (this) {
            Out head = output.peek();
            l1 = head != null && !head.aux && (ctr & CTR_KBDINT) != 0;
            l12 = head != null && head.aux && (ctr & CTR_AUXINT) != 0;
            if (l1 == irq1Level && l12 == irq12Level) return;
            irq1Level = l1;
            irq12Level = l12;
        }
        irq1.set(l1);
        irq12.set(l12);
    }

    private void lowerIrqs() {
        boolean l1, l12;
        synchronized (this) {
            l1 = irq1Level; l12 = irq12Level;
            irq1Level = irq12Level = false;
        }
        if (l1) irq1.set(false);
        if (l12) irq12.set(false);
    }

    public synchronized int commandByte() { return ctr; }
}
