package dev.polyvisor.devices;

import dev.polyvisor.clock.VirtualClock;

/**
 * Port 0x61, "NMI status and control" / system control port B of the PC/AT (IBM AT technical
 * reference; Intel PIIX4 datasheet NMI_SC register):
 * bit 0 timer-2 gate (RW), bit 1 speaker data enable (RW), bits 2-3 parity/IOCHK check enables (RW),
 * bit 4 refresh cycle toggle (RO, flips every 15.085 us), bit 5 timer-2 OUT (RO), bits 6-7 IOCHK/SERR
 * NMI sources (RO, never set here).
 */
public final class SystemControlPort implements PortIoDevice {
    private static final long REFRESH_HALF_PERIOD_NS = 15_085;
    private final VirtualClock clock;
    private final Pit8254 pit;
    private int control; // bits 0-3

    public SystemControlPort(VirtualClock clock, Pit8254 pit) {
        this.clock = clock;
        this.pit = pit;
    }

    public void register(IoBus bus) { bus.register(0x61, 1, this); }

    @Override
    public long in(int port, int size) {
        int v;
        synchronized (this) { v = control; }
        if ((clock.nanos() / REFRESH_HALF_PERIOD_NS & 1) != 0) v |= 0x10;
        if (pit.channel2Out()) v |= 0x20;
        return v;
    }

    @Override
    public void out(int port, int size, long value) {
        int v = (int) value & 0x0F;
        synchronized (this) { control = v; }
        pit.setChannel2Gate((v & 1) != 0);
    }

    /** Speaker data enable (bit 1): the speaker sounds when this and the timer-2 gate are set. */
    public synchronized boolean speakerEnabled() { return (control & 3) == 3; }
}
