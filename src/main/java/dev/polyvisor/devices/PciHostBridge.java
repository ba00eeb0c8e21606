package dev.polyvisor.devices;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * PCI configuration mechanism #1 (PCI Local Bus Specification 3.0, 3.2.2.3.2): CONFIG_ADDRESS at
 * 0xCF8 (dword access only: enable bit 31, bus 23:16, device 15:11, function 10:8, register 7:2) and
 * CONFIG_DATA at 0xCFC-0xCFF (byte, word or dword at offset port&3). Bus 0 device 0 is an Intel
 * 82441FX (i440FX) host bridge, vendor 0x8086 device 0x1237; absent functions read all-ones, which is
 * how an OS's bus scan sees an empty slot. Other devices join through {@link #register}.
 *
 * <p>Byte and word accesses to 0xCF8-0xCFB do not reach CONFIG_ADDRESS (the 0xCF9 reset control
 * register of the PIIX is not modelled): Linux's pci_check_type1() writes a byte to 0xCFB and then
 * expects the dword at 0xCF8 to round-trip 0x80000000.
 */
public final class PciHostBridge implements PortIoDevice {
    /**
     * The root bridge's 32-bit memory window: the PC's PCI hole from 3 GiB to the IOAPIC, the range the
     * DSDT's PCI0 _CRS gives Linux for BARs ({@code vmm.acpi.Dsdt}).
     */
    public static final long MEM_WINDOW_BASE = 0xC000_0000L, MEM_WINDOW_END = 0xFEC0_0000L;
    private final Map<Integer, PciFunction> functions = new ConcurrentHashMap<>();
    private final PciMmioWindow window = new PciMmioWindow(MEM_WINDOW_BASE, MEM_WINDOW_END - MEM_WINDOW_BASE);
    private int address;

    public PciHostBridge() {
        // i440FX PMC: class 06/00/00 host bridge, revision 02 (Intel 82441FX datasheet, register VID/DID/RID).
        register(0, 0, 0, new PciConfigSpace(0x8086, 0x1237, 0x02, 0x060000, 0x00));
    }

    public void register(IoBus bus) { bus.register(0xCF8, 8, this); }

    /** Maps the memory window: BARs inside it decode wherever the guest has placed them. */
    public void register(dev.polyvisor.memory.GuestMemory mem) {
        mem.addMmio(new dev.polyvisor.memory.MmioRegion("pci-window", window.base(), window.length(), window));
    }

    /** Attaches a function with memory BARs: its config space at bus/device/function, its BARs in the window. */
    public <F extends PciFunction & PciMemoryDecoder> void registerWithBars(int bus, int device, int function, F f) {
        register(bus, device, function, f);
        window.add(f);
    }

    /** Attaches a function at bus/device/function; a slot can have only one. */
    public void register(int bus, int device, int function, PciFunction f) {
        if (bus < 0 || bus > 255 || device < 0 || device > 31 || function < 0 || function > 7)
            throw new IllegalArgumentException("bad PCI address " + bus + ":" + device + "." + function);
        if (functions.putIfAbsent(bdf(bus, device, function), f) != null)
            throw new IllegalStateException(String.format("PCI slot %02x:%02x.%x is taken", bus, device, function));
    }

    private static int bdf(int bus, int device, int function) { return bus << 8 | device << 3 | function; }

    @Override
    public long in(int port, int size) {
        if (port >= 0xCF8 && port < 0xCFC) {
            if (port == 0xCF8 && size == 4) synchronized (this) { return address & 0xFFFF_FFFFL; }
            return mask(size);
        }
        int addr;
        synchronized (this) { addr = address; }
        if (addr >= 0) return mask(size); // enable bit clear: no configuration cycle
        PciFunction f = functions.get(addr >> 8 & 0xFFFF);
        if (f == null) return mask(size);
        int off = (addr & 0xFC) + (port & 3);
        if (off + size > 256) return mask(size);
        return f.configRead(off, size) & mask(size);
    }

    @Override
    public void out(int port, int size, long value) {
        if (port >= 0xCF8 && port < 0xCFC) {
            if (port == 0xCF8 && size == 4) synchronized (this) { address = (int) value & 0x80FF_FFFC; }
            return;
        }
        int addr;
        synchronized (this) { addr = address; }
        if (addr >= 0) return;
        PciFunction f = functions.get(addr >> 8 & 0xFFFF);
        int off = (addr & 0xFC) + (port & 3);
        if (f == null || off + size > 256) return;
        f.configWrite(off, size, (int) value);
    }

    private static long mask(int size) { return size == 4 ? 0xFFFF_FFFFL : (1L << (8 * size)) - 1; }
}
