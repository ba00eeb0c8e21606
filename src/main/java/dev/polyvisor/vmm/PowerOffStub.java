package dev.polyvisor.vmm;

import dev.polyvisor.devices.PortIoDevice;

/**
 * The one register of the ACPI PM block that a guest needs to power off: PM1a_CNT at port 0x604, as
 * QEMU's i440fx/PIIX4 and q35/ICH9 place it (PM base 0x600). Writing SLP_EN (bit 13) with SLP_TYP 0
 * (the S5 value in QEMU's DSDT \_S5) powers the machine off (ACPI 6.4, 4.8.3.2.1). The full ACPI PM
 * device in {@code devices} replaces this when it is wired.
 */
public final class PowerOffStub implements PortIoDevice {
    public static final int PM1A_CNT = 0x604;
    private static final int SLP_EN = 1 << 13, SLP_TYP_MASK = 7 << 10, SLP_TYP_S5 = 0;

    private final Runnable powerOff;
    private int value;

    public PowerOffStub(Runnable powerOff) { this.powerOff = powerOff; }

    @Override public long in(int port, int size) { return port == PM1A_CNT ? value & ~SLP_EN : (1L << (8 * size)) - 1; }

    @Override
    public void out(int port, int size, long v) {
        if (port != PM1A_CNT) return;
        value = (int) v & 0xFFFF;
        if ((value & SLP_EN) != 0 && (value & SLP_TYP_MASK) == SLP_TYP_S5) powerOff.run();
    }
}
