package dev.polyvisor.devices;

import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.memory.MmioHandler;
import dev.polyvisor.memory.MmioRegion;

/**
 * Intel 82093AA I/O APIC (82093AA datasheet, order 290566) at 0xFEC00000: IOREGSEL at +0x00, IOWIN at
 * +0x10, and the EOI register at +0x40 that version 0x20 parts add. Indirect registers: 0x00 IOAPICID
 * (bits 27:24), 0x01 IOAPICVER (0x00170020: 24 entries, version 0x20), 0x02 IOAPICARB, 0x10+2n the
 * 64-bit redirection entries (vector 7:0, delivery mode 10:8, destination mode 11, delivery status 12,
 * polarity 13, remote IRR 14, trigger mode 15, mask 16, destination 63:56).
 *
 * <p>Inputs carry the device's logical "asserted" level; the polarity bit is stored but not applied
 * (every source here is active-high, like QEMU's model). Edge-triggered pins deliver on the rising
 * edge. Level-triggered pins deliver while asserted and set remote IRR until the LAPIC broadcasts the
 * EOI for that vector ({@link #eoi}), then deliver again if still asserted.
 */
public final class IoApic implements MmioHandler {
    public static final long BASE = 0xFEC0_0000L;
    public static final int PINS = 24;
    public static final int VERSION = 0x0017_0020;

    static final long MASKED = 1L << 16, LEVEL = 1L << 15, REMOTE_IRR = 1L << 14, DELIVERY_STATUS = 1L << 12;
    private static final long WRITABLE = 0xFF00_0000_0001_AFFFL; // everything but delivery status and remote IRR

    private final ApicBus bus;
    private final long[] redirection = new long[PINS];
    private int pinLevels;
    private int select;
    private int id;

    public IoApic(ApicBus bus, int id) {
        this.bus = bus;
        this.id = id & 0xF;
        java.util.Arrays.fill(redirection, MASKED);
        bus.setEoiListener(this::eoi);
    }

    public void register(GuestMemory mem) { mem.addMmio(new MmioRegion("ioapic", BASE, 0x1000, this)); }

    public synchronized int id() { return id; }

    /** Drives input pin {@code pin} (a GSI below 24). */
    public void setIrq(int pin, boolean asserted) {
        if (pin < 0 || pin >= PINS) return;
        ApicMessage m = null;
        synchronized (this) {
            int mask = 1 << pin;
            boolean rising = asserted && (pinLevels & mask) == 0;
            if (asserted) pinLevels |= mask; else pinLevels &= ~mask;
            long e = redirection[pin];
            if ((e & LEVEL) != 0) {
                if (asserted) m = serviceLevel(pin);
            } else if (rising && (e & MASKED) == 0) {
                m = ApicMessage.fromRedirection(e);
            }
        }
        if (m != null) bus.deliver(m);
    }

    public IrqLine line(int pin) { return level -> setIrq(pin, level); }

    /** A level-triggered asserted pin sends its message unless masked or awaiting EOI (remote IRR). */
    private ApicMessage serviceLevel(int pin) {
        long e = redirection[pin];
        if ((e & (MASKED | REMOTE_IRR)) != 0 || (pinLevels & (1 << pin)) == 0) return null;
        redirection[pin] = e | REMOTE_IRR;
        return ApicMessage.fromRedirection(e);
    }

    /** EOI for {@code vector} (broadcast from a LAPIC, or written to the EOI register): clears remote IRR. */
    public void eoi(int vector) {
        java.util.List<ApicMessage> again = new java.util.ArrayList<>();
        synchronized (this) {
            for (int pin = 0; pin < PINS; pin++) {
                long e = redirection[pin];
                if ((e & LEVEL) != 0 && (e & REMOTE_IRR) != 0 && (e & 0xFF) == (vector & 0xFF)) {
                    redirection[pin] = e & ~REMOTE_IRR;
                    ApicMessage m = serviceLevel(pin);
                    if (m != null) again.add(m);
                }
            }
        }
        for (ApicMessage m : again) bus.deliver(m);
    }

    public synchronized long redirectionEntry(int pin) { return redirection[pin]; }

    /** True while pin {@code pin}'s last message still sits in a destination LAPIC's IRR (not yet taken). */
    public boolean deliveryPending(int pin) {
        if (pin < 0 || pin >= PINS) return false;
        long e;
        synchronized (this) { e = redirection[pin]; }
        if ((e & MASKED) != 0) return false;
        ApicMessage m = ApicMessage.fromRedirection(e);
        for (Lapic l : bus.targets(m)) if (l.requested(m.vector())) return true;
        return false;
    }

    @Override
    public long read(long offset, int size) {
        long v;
        synchronized (this) {
            v = switch ((int) (offset & 0xFF) & ~3) {
                case 0x00 -> select;
                case 0x10 -> readRegister(select) & 0xFFFF_FFFFL;
                default -> 0;
            };
        }
        int sh = (int) (offset & 3) * 8;
        v >>>= sh;
        return size >= 4 ? v : v & ((1L << (8 * size)) - 1);
    }

    private int readRegister(int reg) {
        return switch (reg) {
            case 0x00 -> id << 24;
            case 0x01 -> VERSION;
            case 0x02 -> id << 24; // arbitration ID follows the APIC ID after reset
            default -> {
                int i = reg - 0x10;
                if (i < 0 || i >= 2 * PINS) yield 0;
                long e = redirection[i >> 1];
                yield (i & 1) == 0 ? (int) e : (int) (e >>> 32);
            }
        };
    }

    @Override
    public void write(long offset, int size, long value) {
        int v = (int) value;
        ApicMessage m = null;
        int eoiVector = -1;
        synchronized (this) {
            switch ((int) (offset & 0xFF)) {
                case 0x00 -> select = v & 0xFF;
                case 0x10 -> m = writeRegister(select, v);
                case 0x40 -> eoiVector = v & 0xFF;
                default -> {}
            }
        }
        if (m != null) bus.deliver(m);
        if (eoiVector >= 0) eoi(eoiVector);
    }

    private ApicMessage writeRegister(int reg, int v) {
        if (reg == 0x00) { id = v >>> 24 & 0xF; return null; }
        int i = reg - 0x10;
        if (i < 0 || i >= 2 * PINS) return null; // version, arbitration and reserved registers are read-only
        int pin = i >> 1;
        long e = redirection[pin];
        long nv = (i & 1) == 0 ? e & ~0xFFFF_FFFFL | v & 0xFFFF_FFFFL : e & 0xFFFF_FFFFL | (long) v << 32;
        redirection[pin] = e & ~WRITABLE | nv & WRITABLE;
        if ((redirection[pin] & LEVEL) == 0) redirection[pin] &= ~REMOTE_IRR;
        // Unmasking an asserted level-triggered pin delivers it now.
        return (redirection[pin] & LEVEL) != 0 ? serviceLevel(pin) : null;
    }
}
