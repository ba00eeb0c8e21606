package dev.polyvisor.personality.xen;

import dev.polyvisor.cpu.GuestContext;
import dev.polyvisor.personality.core.GuestPortIo;

/**
 * The fixed I/O ports of Xen's emulated-device unplug protocol (xen docs/misc/hvm-emulated-unplug.pandoc;
 * include/xen/platform_pci.h; QEMU hw/i386/xen/xen_platform.c), which Linux probes in
 * arch/x86/xen/platform-pci-unplug.c check_platform_magic:
 * <ul>
 * <li>0x10: 16-bit read = magic 0x49D2; 8-bit read/write = platform flags; 16-bit write = the mask of
 * emulated devices to unplug; 32-bit write = the driver build number;</li>
 * <li>0x12: 8-bit read = protocol version 1; 16-bit write = the driver product number; 8-bit write = a
 * log character.</li>
 * </ul>
 * This machine has no emulated disks or NICs to unplug and never blacklists a driver, so writes are
 * recorded and have no further effect. Other sizes read as all-ones, like an unclaimed port.
 */
public final class XenPlatformPorts implements GuestPortIo {
    public static final int PORT_MAGIC = 0x10, PORT_PROTOVER = 0x12;
    public static final int MAGIC = 0x49D2, PROTOCOL_VERSION = 1;

    private int platformFlags;
    private int unplugMask;
    private int productNumber;
    private long driverVersion;

    @Override public boolean claims(int port) { return port >= PORT_MAGIC && port <= PORT_PROTOVER + 1; }

    @Override
    public synchronized long in(GuestContext ctx, int port, int size) {
        if (port == PORT_MAGIC && size == 2) return MAGIC;
        if (port == PORT_MAGIC && size == 1) return platformFlags;
        if (port == PORT_PROTOVER && size == 1) return PROTOCOL_VERSION;
        return size == 4 ? 0xFFFF_FFFFL : (1L << (8 * size)) - 1;
    }

    @Override
    public synchronized void out(GuestContext ctx, int port, int size, long value) {
        switch (port << 4 | size) {
            case PORT_MAGIC << 4 | 1 -> platformFlags = (int) value & 0xFF;
            case PORT_MAGIC << 4 | 2 -> unplugMask |= (int) value & 0xFFFF;
            case PORT_MAGIC << 4 | 4 -> driverVersion = value & 0xFFFF_FFFFL;
            case PORT_PROTOVER << 4 | 2 -> productNumber = (int) value & 0xFFFF;
            default -> { } // 0x12 byte writes are log characters; anything else is ignored
        }
    }

    /** What the guest driver reported: product number, build number and the devices it asked to unplug. */
    public synchronized String driverReport() {
        return String.format("product %d, build %d, unplug mask 0x%x", productNumber, driverVersion, unplugMask);
    }
}
