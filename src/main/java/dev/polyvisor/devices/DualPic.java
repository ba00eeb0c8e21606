package dev.polyvisor.devices;

import dev.polyvisor.cpu.InterruptSource;

/**
 * The PC/AT pair of 8259A PICs (Intel 8259A datasheet): master at ports 0x20/0x21 (IR0-7), slave at
 * 0xA0/0xA1 (IR8-15) cascaded on the master's IR2, and the PIIX edge/level control registers (ELCR)
 * at 0x4D0/0x4D1. IRQ0, 1, 2, 8 and 13 are always edge-triggered, so those ELCR bits are read-only
 * zero (masks 0xF8 and 0xDE, as on the PIIX/ICH).
 *
 * <p>As an {@link InterruptSource} it is the CPU's INTR pin in PIC mode (or the LAPIC's LINT0 in
 * virtual-wire mode): {@link #acknowledge()} performs the INTA cycle and returns the vector. A
 * request that disappears between INTR and INTA yields the spurious IR7 (master) or IR15 (slave)
 * vector without setting ISR, as the datasheet describes.
 */
public final class DualPic implements InterruptSource, PortIoDevice {
    private final Pic8259 master = new Pic8259(true, 0xF8);
    private final Pic8259 slave = new Pic8259(false, 0xDE);
    private volatile Runnable intrListener = () -> {};
    /** The master's INT output, recomputed after every change so that polling it takes no lock. */
    private volatile boolean intr;

    /** Called (with no lock of the caller's held) whenever INTR rises: wake the vCPU. */
    public void setIntrListener(Runnable r) { intrListener = r == null ? () -> {} : r; }

    public void register(IoBus bus) {
        bus.register(0x20, 2, this);
        bus.register(0xA0, 2, this);
        bus.register(0x4D0, 2, this);
    }

    /** Drives ISA IRQ line {@code irq} (0-15). */
    public void setIrq(int irq, boolean level) {
        if (irq < 0 || irq > 15 || irq == 2) return; // IR2 of the master is the cascade input
        boolean rose;
        synchronized (this) {
            if (irq < 8) master.setIrq(irq, level);
            else slave.setIrq(irq - 8, level);
            rose = update();
        }
        if (rose) intrListener.run();
    }

    /** An {@link IrqLine} for ISA IRQ {@code irq}. */
    public IrqLine line(int irq) { return level -> setIrq(irq, level); }

    /** Propagates the slave's INT to master IR2 and recomputes INTR; true if INTR rose. */
    private boolean update() {
        master.setIrq(2, slave.pendingIrq() >= 0);
        boolean was = intr;
        intr = master.pendingIrq() >= 0;
        return intr && !was;
    }

    @Override
    public boolean hasPending() { return intr; }

    /** The INTA cycle (datasheet "Interrupt Sequence"): returns the vector the PIC puts on the bus. */
    @Override
    public int acknowledge() {
        synchronized (this) {
            int irq = master.pendingIrq();
            int vector;
            if (irq < 0) {
                vector = master.vectorBase + 7; // spurious IRQ7: ISR not set
            } else {
                master.acknowledge(irq);
                if (irq == 2) {
                    int sirq = slave.pendingIrq();
                    if (sirq >= 0) {
                        slave.acknowledge(sirq);
                        vector = slave.vectorBase + sirq;
                    } else {
                        vector = slave.vectorBase + 7; // spurious IRQ15
                    }
                } else {
                    vector = master.vectorBase + irq;
                }
            }
            update();
            return vector;
        }
    }

    @Override
    public long in(int port, int size) {
        int v;
        synchronized (this) {
            v = switch (port) {
                case 0x20, 0x21 -> master.read(port & 1);
                case 0xA0, 0xA1 -> slave.read(port & 1);
                case 0x4D0 -> master.elcr;
                case 0x4D1 -> slave.elcr;
                default -> 0xFF;
            };
            // A poll read is an acknowledge: the cascade state may have changed.
            update();
        }
        return size == 1 ? v : v | (size == 2 ? 0xFF00 : 0xFFFFFF00L);
    }

    @Override
    public void out(int port, int size, long value) {
        int v = (int) value & 0xFF;
        boolean rose;
        synchronized (this) {
            switch (port) {
                case 0x20, 0x21 -> master.write(port & 1, v);
                case 0xA0, 0xA1 -> slave.write(port & 1, v);
                case 0x4D0 -> master.elcr = v & master.elcrMask;
                case 0x4D1 -> slave.elcr = v & slave.elcrMask;
                default -> {}
            }
            rose = update();
        }
        if (rose) intrListener.run();
    }

    /** True while IRQ {@code irq} is latched in IRR and not masked: the CPU has not taken it yet. */
    public synchronized boolean requestPending(int irq) {
        if (irq < 0 || irq > 15) return false;
        Pic8259 p = irq < 8 ? master : slave;
        int bit = 1 << (irq & 7);
        return (p.irr & ~p.imr & bit) != 0;
    }

    // ---- inspection for tests and the monitor ----
    public synchronized int irr(boolean ofSlave) { return (ofSlave ? slave : master).irr; }
    public synchronized int isr(boolean ofSlave) { return (ofSlave ? slave : master).isr; }
    public synchronized int imr(boolean ofSlave) { return (ofSlave ? slave : master).imr; }
}
