package dev.polyvisor.devices;

import java.util.ArrayDeque;
import java.util.function.Consumer;

/**
 * National Semiconductor NS16550A UART (PC16550D datasheet) at 8 consecutive ports (COM1: 0x3F8, IRQ4).
 *
 * <p>Offsets: 0 RBR (read) / THR (write) / DLL (DLAB=1); 1 IER / DLM (DLAB=1); 2 IIR (read) / FCR
 * (write); 3 LCR; 4 MCR; 5 LSR; 6 MSR; 7 SCR. Transmission is instantaneous: a byte written to THR goes
 * to the sink at once and THR and the shift register are empty again, so LSR.THRE and LSR.TEMT read 1
 * (Linux's console waits on them). Received bytes come from the host through {@link #feed(byte[])} into
 * a host-side queue that refills the 16-byte receive FIFO (or the 1-byte holding register in 16450 mode).
 *
 * <p>The host side behaves like a terminal server on a line with RTS/CTS hardware flow control: it
 * sends only while the UART asserts RTS (MCR bit 1) outside loopback, and only as fast as the receiver
 * has room (QEMU's serial backend likewise hands a byte over only when {@code serial_can_receive}
 * allows). Linux raises RTS when the port is opened (tty_port_block_til_ready → uart_dtr_rts) after
 * serial8250_do_startup has cleared the FIFOs, so input that arrives during boot waits on the host side
 * instead of being thrown away by the driver's FIFO reset.
 *
 * <p>Interrupts, by priority (datasheet Table "Interrupt Control Functions"): receiver line status
 * (IIR 0x6) &gt; received data available or character timeout (0x4 / 0xC) &gt; THR empty (0x2) &gt; modem
 * status (0x0). The THRE interrupt is pending after THR empties or when IER.ETBEI goes from 0 to 1
 * while THR is empty, and is cleared by reading IIR (when it is the source reported) or by writing THR;
 * Linux's 8250 driver (serial8250_do_startup, the UART_BUG_THRE test) relies on exactly that.
 * The character-timeout indication is reported as soon as data below the trigger level is waiting
 * (no four-character delay is modelled). The IRQ pin is gated by MCR.OUT2, as on every PC serial card.
 */
public final class Uart16550 implements PortIoDevice {
    static final int IER_RDI = 0x01, IER_THRI = 0x02, IER_RLSI = 0x04, IER_MSI = 0x08;
    static final int IIR_NONE = 0x01, IIR_MSR = 0x00, IIR_THRE = 0x02, IIR_RDA = 0x04, IIR_RLS = 0x06, IIR_TIMEOUT = 0x0C;
    static final int LSR_DR = 0x01, LSR_OE = 0x02, LSR_PE = 0x04, LSR_FE = 0x08, LSR_BI = 0x10, LSR_THRE = 0x20, LSR_TEMT = 0x40;
    static final int MCR_DTR = 0x01, MCR_RTS = 0x02, MCR_OUT1 = 0x04, MCR_OUT2 = 0x08, MCR_LOOP = 0x10;
    static final int LCR_DLAB = 0x80;
    private static final int FIFO_SIZE = 16;

    private final int base;
    private final IrqLine irq;
    private volatile Consumer<byte[]> sink;

    private final ArrayDeque<Byte> hostQueue = new ArrayDeque<>();
    private final ArrayDeque<Byte> rxFifo = new ArrayDeque<>();
    private int ier, lcr, mcr, lsr = LSR_THRE | LSR_TEMT, scr, fcr;
    private int msrDeltas;
    private int lastModemLines;
    private int divisor = 12; // 9600 baud until the guest programs it
    private boolean thrInterrupt;
    private boolean irqLevel;

    public Uart16550(int base, IrqLine irq, Consumer<byte[]> sink) {
        this.base = base;
        this.irq = irq;
        this.sink = sink == null ? b -> {} : sink;
        lastModemLines = modemLines();
    }

    public void register(IoBus bus) { bus.register(base, 8, this); }

    public void setSink(Consumer<byte[]> s) { sink = s == null ? b -> {} : s; }

    /**
     * A sink writing to {@code out}, flushed per byte so that a console stays interactive. A failing
     * stream (closed terminal) drops output, as a serial line with nothing attached does.
     */
    public static Consumer<byte[]> sinkTo(java.io.OutputStream out) {
        return b -> {
            try {
                out.write(b);
                out.flush();
            } catch (java.io.IOException e) {
                // nothing listens on the line any more; the guest keeps running
            }
        };
    }

    /** Bytes the host has queued that the guest has not received yet (waiting for RTS or FIFO room). */
    public synchronized int pendingInput() { return hostQueue.size(); }

    /** Removes and returns the host bytes the guest has not received (for a machine that replaces this one). */
    public synchronized byte[] takePendingInput() {
        byte[] b = new byte[hostQueue.size()];
        for (int i = 0; i < b.length; i++) b[i] = hostQueue.poll();
        return b;
    }

    /** Bytes typed on the host console: queued, then delivered to the guest as the FIFO drains. */
    public void feed(byte[] data) {
        boolean level;
        synchronized (this) {
            for (byte b : data) hostQueue.add(b);
            refillRx();
            level = updateIrq();
        }
        irq.set(level);
    }

    /** The divisor latch (baud = 115200 / divisor). */
    public synchronized int divisor() { return divisor; }

    private boolean fifoEnabled() { return (fcr & 0x01) != 0; }

    private int rxCapacity() { return fifoEnabled() ? FIFO_SIZE : 1; }

    /** The far end may send: the guest asserts RTS and the line is not looped back (datasheet "Loopback"). */
    private boolean clearToSend() { return (mcr & (MCR_RTS | MCR_LOOP)) == MCR_RTS; }

    private void refillRx() {
        if (clearToSend())
            while (!hostQueue.isEmpty() && rxFifo.size() < rxCapacity()) rxFifo.add(hostQueue.poll());
        if (!rxFifo.isEmpty()) lsr |= LSR_DR; else lsr &= ~LSR_DR;
    }

    private int triggerLevel() {
        return switch (fcr >> 6 & 3) { case 0 -> 1; case 1 -> 4; case 2 -> 8; default -> 14; };
    }

    /** The highest-priority pending interrupt identification (IIR bits 3:0). */
    private int interruptId() {
        if ((ier & IER_RLSI) != 0 && (lsr & (LSR_OE | LSR_PE | LSR_FE | LSR_BI)) != 0) return IIR_RLS;
        if ((ier & IER_RDI) != 0 && !rxFifo.isEmpty()) {
            if (!fifoEnabled() || rxFifo.size() >= triggerLevel()) return IIR_RDA;
            return IIR_TIMEOUT;
        }
        if ((ier & IER_THRI) != 0 && thrInterrupt) return IIR_THRE;
        if ((ier & IER_MSI) != 0 && msrDeltas != 0) return IIR_MSR;
        return IIR_NONE;
    }

    /** The INTR output as the PC sees it: gated by OUT2, and disconnected in loopback mode. */
    private boolean updateIrq() {
        irqLevel = interruptId() != IIR_NONE && (mcr & MCR_OUT2) != 0 && (mcr & MCR_LOOP) == 0;
        return irqLevel;
    }

    /** Modem input lines as MSR bits 7:4 (DCD, RI, DSR, CTS); in loopback they mirror MCR (datasheet "Loopback"). */
    private int modemLines() {
        if ((mcr & MCR_LOOP) != 0) {
            return ((mcr & MCR_RTS) != 0 ? 0x10 : 0) | ((mcr & MCR_DTR) != 0 ? 0x20 : 0)
                    | ((mcr & MCR_OUT1) != 0 ? 0x40 : 0) | ((mcr & MCR_OUT2) != 0 ? 0x80 : 0);
        }
        return 0xB0; // a connected host console: DCD, DSR, CTS asserted
    }

    private void modemLinesChanged() {
        int now = modemLines();
        int changed = now ^ lastModemLines;
        if ((changed & 0x10) != 0) msrDeltas |= 0x01; // DCTS
        if ((changed & 0x20) != 0) msrDeltas |= 0x02; // DDSR
        if ((lastModemLines & 0x40) != 0 && (now & 0x40) == 0) msrDeltas |= 0x04; // TERI: trailing edge
        if ((changed & 0x80) != 0) msrDeltas |= 0x08; // DDCD
        lastModemLines = now;
    }

    @Override
    public long in(int port, int size) {
        int v;
        boolean level;
        synchronized (this) {
            v = read(port - base);
            level = updateIrq();
        }
        irq.set(level);
        return v;
    }

    @Override
    public void out(int port, int size, long value) {
        byte[] tx;
        boolean level;
        synchronized (this) {
            tx = write(port - base, (int) value & 0xFF);
            level = updateIrq();
        }
        if (tx != null) sink.accept(tx);
        irq.set(level);
    }

    private int read(int off) {
        switch (off) {
            case 0 -> {
                if ((lcr & LCR_DLAB) != 0) return divisor & 0xFF;
                if (rxFifo.isEmpty()) return 0;
                int b = rxFifo.poll() & 0xFF;
                refillRx();
                return b;
            }
            case 1 -> { return (lcr & LCR_DLAB) != 0 ? divisor >> 8 & 0xFF : ier; }
            case 2 -> {
                int id = interruptId();
                // Reading IIR while it reports THRE clears that interrupt (datasheet Table "Interrupt Control Functions").
                if (id == IIR_THRE) thrInterrupt = false;
                return id | (fifoEnabled() ? 0xC0 : 0);
            }
            case 3 -> { return lcr; }
            case 4 -> { return mcr; }
            case 5 -> {
                int v = lsr;
                if (fifoEnabled() && (lsr & (LSR_PE | LSR_FE | LSR_BI)) != 0) v |= 0x80;
                lsr &= ~(LSR_OE | LSR_PE | LSR_FE | LSR_BI); // error bits clear on read
                return v;
            }
            case 6 -> {
                int v = modemLines() | msrDeltas;
                msrDeltas = 0;
                return v;
            }
            default -> { return scr; }
        }
    }

    /** Returns bytes to send to the sink, if any. */
    private byte[] write(int off, int v) {
        switch (off) {
            case 0 -> {
                if ((lcr & LCR_DLAB) != 0) { divisor = divisor & 0xFF00 | v; return null; }
                // THR: the byte moves through the shift register at once; THR empties again.
                thrInterrupt = false;
                byte[] out = null;
                if ((mcr & MCR_LOOP) != 0) {
                    // Loopback: the shift register feeds the receiver; a full receiver overruns.
                    if (rxFifo.size() < rxCapacity()) rxFifo.add((byte) v); else lsr |= LSR_OE;
                    lsr |= LSR_DR;
                } else {
                    out = new byte[] {(byte) v};
                }
                lsr |= LSR_THRE | LSR_TEMT;
                thrInterrupt = true;
                return out;
            }
            case 1 -> {
                if ((lcr & LCR_DLAB) != 0) { divisor = divisor & 0xFF | v << 8; return null; }
                int old = ier;
                ier = v & 0x0F;
                // Enabling ETBEI while THR is empty makes the THRE interrupt pending (16550 behaviour QEMU
                // and real parts share; Linux's UART_BUG_THRE probe depends on it).
                if ((old & IER_THRI) == 0 && (ier & IER_THRI) != 0 && (lsr & LSR_THRE) != 0) thrInterrupt = true;
                if ((ier & IER_THRI) == 0) thrInterrupt = false;
                return null;
            }
            case 2 -> {
                boolean wasFifo = fifoEnabled();
                if ((v & 0x01) != (fcr & 0x01)) { rxFifo.clear(); refillRx(); } // toggling FIFO enable resets them
                if ((v & 0x02) != 0) { rxFifo.clear(); refillRx(); }             // clear receive FIFO
                // bit 2 (clear transmit FIFO): the transmitter is always empty here
                fcr = v & 0xC9;
                if (!wasFifo && fifoEnabled()) refillRx();
                return null;
            }
            case 3 -> { lcr = v; return null; }
            case 4 -> {
                mcr = v & 0x1F;
                modemLinesChanged();
                refillRx(); // RTS rising lets waiting host input in
                return null;
            }
            case 5, 6 -> { return null; } // LSR and MSR are read-only (factory test writes ignored)
            default -> { scr = v; return null; }
        }
    }

    // ---- inspection ----
    public synchronized boolean irqAsserted() { return irqLevel; }
}
