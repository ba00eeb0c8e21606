package dev.polyvisor.devices;

import dev.polyvisor.clock.TimerQueue;
import dev.polyvisor.clock.VirtualClock;

/**
 * Intel 8254 programmable interval timer (Intel 8254 datasheet, order 231164): three 16-bit
 * down-counters clocked at 1.193182 MHz, at ports 0x40-0x42, control word at 0x43. Channel 0 drives
 * IRQ0, channel 1 is the legacy DRAM refresh timer, channel 2 is gated by port 0x61 bit 0 and its
 * OUT is visible at port 0x61 bit 5 ({@link SystemControlPort}).
 *
 * <p>Counters are not ticked: a channel remembers the virtual time its count was loaded, and the
 * count and OUT are computed from the {@link VirtualClock} when read. So Linux's PIT calibration of
 * the TSC (arch/x86/kernel/tsc.c pit_calibrate_tsc: channel 2 in mode 0, polling port 0x61 bit 5;
 * quick_pit_calibrate: polling the MSB of the channel 2 count) agrees with the TSC by construction.
 */
public final class Pit8254 implements PortIoDevice {
    public static final long FREQUENCY_HZ = 1_193_182L;
    /** Do not raise IRQ0 more often than this, however small a count the guest writes. */
    static final long MIN_IRQ_PERIOD_NS = 20_000;

    private final VirtualClock clock;
    private final Channel[] channels = {new Channel(0), new Channel(1), new Channel(2)};
    private final IrqLine irq0;
    private final TimerQueue.Timer irqTimer;
    private long lastIrqNs = Long.MIN_VALUE / 2;
    /**
     * Lost-tick reinjection (KVM's default PIT policy, "delay"): rising edges of OUT0 that passed while
     * the VMM was late are counted and delivered one at a time, each once the previous IRQ0 has been
     * taken, so that a guest counting ticks (jiffies in periodic mode) keeps pace with the TSC.
     */
    private long backlog;
    /** Elapsed ticks of channel 0 up to which edges have been accounted. */
    private long accountedD;
    private volatile java.util.function.BooleanSupplier irq0Pending = () -> false;
    static final long MAX_BACKLOG = 1000;
    static final long CATCH_UP_POLL_NS = 100_000;

    public Pit8254(VirtualClock clock, IrqLine irq0) {
        this.clock = clock;
        this.irq0 = irq0;
        this.irqTimer = clock.timers().newTimer(this::irqTimerFired);
        channels[0].gate = true;
        channels[1].gate = true;
    }

    public void register(IoBus bus) { bus.register(0x40, 4, this); }

    /** Tells the PIT whether its last IRQ0 is still waiting to be taken (so a reinjected tick would merge into it). */
    public void setIrq0PendingProbe(java.util.function.BooleanSupplier probe) {
        irq0Pending = probe == null ? () -> false : probe;
    }

    /** Ticks waiting to be reinjected (inspection). */
    public synchronized long lostTicks() { return backlog; }

    /** PIT input clock ticks elapsed at virtual time {@code ns}. */
    static long ticksAt(long ns) { return VirtualClock.scale(Math.max(0, ns), FREQUENCY_HZ, 1_000_000_000L); }

    /** The earliest virtual time at which {@code ticks} input clocks have elapsed. */
    static long nanosAtTicks(long ticks) { return VirtualClock.ceilScale(ticks, 1_000_000_000L, FREQUENCY_HZ); }

    /** One counter (datasheet "Counter Description" and "Modes of Operation"). */
    final class Channel {
        final int index;
        int mode;            // 0-5
        int rw = 3;          // 1 = LSB, 2 = MSB, 3 = LSB then MSB
        boolean bcd;
        boolean gate;
        int count = 0x10000; // the loaded count (0 means 65536, or 10000 in BCD)
        boolean loaded;      // a count has been written since the control word (else OUT holds its mode-set level)
        boolean nullCount = true;
        long loadTicks;      // input-clock tick at which counting started
        long frozenD = -1;   // modes 0/4 with gate low: the elapsed ticks at which counting stopped
        // write state
        boolean writeMsbNext;
        int writeLsb;
        // read state
        boolean readMsbNext;
        int latchedCount = -1;  // -1 = not latched
        boolean latchedMsbNext;
        int latchedStatus = -1;

        Channel(int index) { this.index = index; }

        /** Input clocks elapsed since counting started (frozen while a mode 0/4 gate is low). */
        long elapsed(long nowTicks) {
            if (!loaded) return 0;
            if (frozenD >= 0) return frozenD;
            // Modes 1 and 5 count only after a rising gate edge (datasheet "Gate" table).
            if ((mode == 1 || mode == 5) && !gateTriggered) return 0;
            return Math.max(0, nowTicks - loadTicks);
        }

        /** The counting element's value now (datasheet: "CE"). */
        int countNow(long nowTicks) {
            if (!loaded) return count & 0xFFFF;
            long d = elapsed(nowTicks);
            long c = count;
            return switch (mode) {
                case 2 -> (int) (c - d % c);
                // mode 3 decrements by two, twice per period (datasheet "Mode 3: Square Wave Mode")
                case 3 -> (int) (c - (2 * d) % c);
                default -> (int) ((c - d) & 0xFFFF);
            } & 0xFFFF;
        }

        /** The OUT pin now. */
        boolean out(long nowTicks) {
            if (!loaded) return mode != 0; // mode 0: OUT goes low on the control word; others: high
            long d = elapsed(nowTicks);
            long c = count;
            return switch (mode) {
                case 0 -> d >= c;                       // high at terminal count, stays high
                case 1 -> gateTriggered ? d >= c : true; // low from trigger to terminal count
                case 2 -> !gate || d % c != c - 1;       // low for one clock when the count reaches 1
                case 3 -> !gate || d % c < (c + 1) / 2;  // high for the first half of each period
                default -> !(d == c && (mode == 4 || gateTriggered)); // modes 4/5: one-clock low strobe
            };
        }

        boolean gateTriggered;

        /** Rising edges of OUT in the elapsed interval (a, b]. */
        long edgesBetween(long a, long b) {
            if (!loaded || b <= a) return 0;
            long c = count;
            return switch (mode) {
                case 0 -> a < c && c <= b ? 1 : 0;
                case 1 -> gateTriggered && a < c && c <= b ? 1 : 0;
                case 2, 3 -> gate ? b / c - a / c : 0;
                default -> (mode == 4 || gateTriggered) && a < c + 1 && c + 1 <= b ? 1 : 0;
            };
        }

        /** Ticks (from the load) of the next rising edge of OUT after elapsed {@code d}, or -1 if none. */
        long nextRisingEdge(long d) {
            if (!loaded) return -1;
            long c = count;
            return switch (mode) {
                case 0 -> d < c ? c : -1;
                case 1 -> gateTriggered && d < c ? c : -1;
                case 2, 3 -> gate ? (d / c + 1) * c : -1;
                default -> (mode == 4 || gateTriggered) && d < c + 1 ? c + 1 : -1;
            };
        }

        void loadCount(int raw, long nowTicks) {
            int c = bcd ? fromBcd(raw) : raw;
            if (c == 0) c = bcd ? 10000 : 0x10000;
            count = c;
            loaded = true;
            nullCount = false;
            // The count is loaded into the counting element on the next CLK pulse.
            loadTicks = nowTicks + 1;
            frozenD = (mode == 0 || mode == 4) && !gate ? 0 : -1;
            gateTriggered = false;
        }

        void setGate(boolean g, long nowTicks) {
            if (g == gate) return;
            gate = g;
            if (!loaded) return;
            switch (mode) {
                case 0, 4 -> {
                    if (!g) frozenD = Math.max(0, nowTicks - loadTicks);
                    else if (frozenD >= 0) { loadTicks = nowTicks - frozenD; frozenD = -1; }
                }
                default -> {
                    // modes 1, 2, 3, 5: a rising gate edge (re)starts the count on the next clock
                    if (g) { loadTicks = nowTicks + 1; gateTriggered = true; }
                }
            }
        }

        int readByte(long nowTicks) {
            if (latchedStatus >= 0) {
                int s = latchedStatus;
                latchedStatus = -1;
                return s;
            }
            if (latchedCount >= 0) {
                int v = bcd ? toBcd(latchedCount) : latchedCount;
                int b;
                if (rw == 1) { b = v & 0xFF; latchedCount = -1; }
                else if (rw == 2) { b = v >> 8 & 0xFF; latchedCount = -1; }
                else if (!latchedMsbNext) { b = v & 0xFF; latchedMsbNext = true; }
                else { b = v >> 8 & 0xFF; latchedCount = -1; latchedMsbNext = false; }
                return b;
            }
            int v = countNow(nowTicks);
            if (bcd) v = toBcd(v);
            return switch (rw) {
                case 1 -> v & 0xFF;
                case 2 -> v >> 8 & 0xFF;
                default -> {
                    boolean msb = readMsbNext;
                    readMsbNext = !readMsbNext;
                    yield msb ? v >> 8 & 0xFF : v & 0xFF;
                }
            };
        }

        void writeByte(int b, long nowTicks) {
            switch (rw) {
                case 1 -> loadCount(b, nowTicks);
                case 2 -> loadCount(b << 8, nowTicks);
                default -> {
                    if (!writeMsbNext) {
                        writeLsb = b;
                        writeMsbNext = true;
                        // Mode 0: writing the first byte stops the count (datasheet "Mode 0").
                        if (mode == 0 && loaded) { frozenD = elapsed(nowTicks); }
                    } else {
                        writeMsbNext = false;
                        loadCount(writeLsb | b << 8, nowTicks);
                    }
                }
            }
        }

        void latchCount(long nowTicks) {
            if (latchedCount < 0) { latchedCount = countNow(nowTicks); latchedMsbNext = false; }
        }

        /** Read-back status byte: OUT, null count, RW1-0, M2-M0, BCD. */
        void latchStatus(long nowTicks) {
            if (latchedStatus < 0)
                latchedStatus = (out(nowTicks) ? 0x80 : 0) | (nullCount ? 0x40 : 0) | rw << 4 | mode << 1 | (bcd ? 1 : 0);
        }

        void control(int rwBits, int m, boolean isBcd) {
            rw = rwBits;
            mode = m > 5 ? m - 4 : m; // modes 6 and 7 are aliases of 2 and 3
            bcd = isBcd;
            loaded = false;
            nullCount = true;
            frozenD = -1;
            gateTriggered = false;
            writeMsbNext = readMsbNext = false;
            latchedCount = -1;
            latchedStatus = -1;
        }
    }

    static int fromBcd(int v) {
        return (v & 0xF) + (v >> 4 & 0xF) * 10 + (v >> 8 & 0xF) * 100 + (v >> 12 & 0xF) * 1000;
    }

    static int toBcd(int v) {
        v %= 10000;
        return v % 10 | (v / 10 % 10) << 4 | (v / 100 % 10) << 8 | (v / 1000) << 12;
    }

    @Override
    public long in(int port, int size) {
        if (port == 0x43) return 0xFF; // the control word register is write-only
        long now = ticksAt(clock.nanos());
        synchronized (this) { return channels[port - 0x40].readByte(now); }
    }

    @Override
    public void out(int port, int size, long value) {
        int v = (int) value & 0xFF;
        long ns = clock.nanos();
        long now = ticksAt(ns);
        synchronized (this) {
            if (port == 0x43) controlWord(v, now);
            else {
                Channel ch = channels[port - 0x40];
                ch.writeByte(v, now);
            }
            if (port == 0x40 || port == 0x43) {
                // Reprogramming channel 0 starts afresh: earlier ticks are no longer owed.
                backlog = 0;
                accountedD = channels[0].elapsed(now);
                rescheduleIrq(ns);
            }
        }
    }

    /** Control word (datasheet "Control Word Format"): SC1-0, RW1-0, M2-M0, BCD; SC=3 is read-back. */
    private void controlWord(int v, long now) {
        int sc = v >> 6;
        int rwBits = v >> 4 & 3;
        if (sc == 3) {
            // Read-back command: bit 5 = !COUNT, bit 4 = !STATUS, bits 3:1 select counters 2..0.
            for (int i = 0; i < 3; i++) {
                if ((v & (2 << i)) == 0) continue;
                if ((v & 0x20) == 0) channels[i].latchCount(now);
                if ((v & 0x10) == 0) channels[i].latchStatus(now);
            }
            return;
        }
        if (rwBits == 0) channels[sc].latchCount(now); // counter latch command
        else channels[sc].control(rwBits, v >> 1 & 7, (v & 1) != 0);
    }

    /** Port 0x61 bit 0 drives the channel 2 gate. */
    public void setChannel2Gate(boolean gate) {
        long now = ticksAt(clock.nanos());
        synchronized (this) { channels[2].setGate(gate, now); }
    }

    public synchronized boolean channel2Gate() { return channels[2].gate; }

    /** OUT2, visible at port 0x61 bit 5. */
    public boolean channel2Out() {
        long now = ticksAt(clock.nanos());
        synchronized (this) { return channels[2].out(now); }
    }

    /** Channel 0's OUT drives IRQ0: pulse it at each rising edge, scheduled on the timer queue. */
    private void rescheduleIrq(long ns) {
        Channel ch = channels[0];
        long d = ch.elapsed(ticksAt(ns));
        long edge = ch.nextRisingEdge(d);
        long at = edge < 0 ? Long.MAX_VALUE : Math.max(nanosAtTicks(ch.loadTicks + edge), lastIrqNs + MIN_IRQ_PERIOD_NS);
        if (backlog > 0) at = Math.min(at, ns + CATCH_UP_POLL_NS);
        if (at == Long.MAX_VALUE) irqTimer.cancel();
        else irqTimer.arm(at);
    }

    private void irqTimerFired() {
        long ns = clock.nanos();
        boolean busy = irq0Pending.getAsBoolean();
        boolean deliver;
        synchronized (this) {
            Channel ch = channels[0];
            long d = ch.elapsed(ticksAt(ns));
            backlog = Math.min(backlog + ch.edgesBetween(accountedD, d), MAX_BACKLOG);
            accountedD = Math.max(accountedD, d);
            deliver = backlog > 0 && !busy;
            if (deliver) {
                backlog--;
                lastIrqNs = ns;
            }
            rescheduleIrq(ns);
        }
        if (deliver) irq0.pulse();
    }

    /** Test and monitor access. */
    synchronized Channel channel(int i) { return channels[i]; }
}
