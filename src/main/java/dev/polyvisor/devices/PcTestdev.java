package dev.polyvisor.devices;

import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.memory.MmioHandler;
import dev.polyvisor.memory.MmioRegion;

import java.util.function.IntFunction;

/**
 * QEMU's {@code pc-testdev} (hw/misc/pc-testdev.c), a device for test kernels, present only when asked
 * for ({@code --device pc-testdev}):
 * <pre>
 *   0xE0-0xE3      a 32-bit scratch register, any width at any offset (little-endian lanes)
 *   0xE4-0xE7      "flush page": a write names a guest-physical page that QEMU re-protects on the host so
 *                  that KVM refaults it; reads return 0
 *   0xE8-0xEB      the same scratch register, accessed one byte per lane
 *   0x2000-0x2017  ISA IRQ line N (0x2000 + N): an 8-bit write sets the line to {@code value != 0} (level)
 *   0xFF000000     64 KiB of memory behind the MMIO path (reads return what was written)
 * </pre>
 * The flush-page write has no guest-visible effect here: translations are re-walked from guest memory,
 * nothing is cached per host page. IRQ lines above 15 do not exist on the ISA bus (QEMU asserts).
 */
public final class PcTestdev implements PortIoDevice {
    public static final int IOPORT = 0xE0, FLUSH = 0xE4, IOPORT_BYTE = 0xE8, IRQ_BASE = 0x2000, IRQ_COUNT = 24;
    public static final long IOMEM_BASE = 0xFF00_0000L;
    public static final int IOMEM_LEN = 0x10000;

    private final IntFunction<IrqLine> isaIrq;
    private int scratch;
    private final byte[] iomem = new byte[IOMEM_LEN];

    /** {@code isaIrq}: the board's ISA interrupt line N (PIC input and IOAPIC pin). */
    public PcTestdev(IntFunction<IrqLine> isaIrq) { this.isaIrq = isaIrq; }

    public void register(IoBus io, GuestMemory mem) {
        io.register(IOPORT, 4, this);
        io.register(FLUSH, 4, this);
        io.register(IOPORT_BYTE, 4, this);
        io.register(IRQ_BASE, IRQ_COUNT, this);
        mem.addMmio(new MmioRegion("pc-testdev-iomem", IOMEM_BASE, IOMEM_LEN, new MmioHandler() {
            @Override public long read(long offset, int size) {
                long v = 0;
                for (int i = 0; i < size && offset + i < IOMEM_LEN; i++) v |= (iomem[(int) offset + i] & 0xFFL) << (8 * i);
                return v;
            }

            @Override public void write(long offset, int size, long value) {
                for (int i = 0; i < size && offset + i < IOMEM_LEN; i++) iomem[(int) offset + i] = (byte) (value >>> (8 * i));
            }
        }));
    }

    @Override
    public long in(int port, int size) {
        if (port >= IOPORT && port < IOPORT + 4) return lanes(port - IOPORT, size);
        if (port >= IOPORT_BYTE && port < IOPORT_BYTE + 4) {
            long v = 0; // impl.max_access_size = 1: QEMU splits the access into byte lanes
            for (int i = 0; i < size; i++) v |= lanes((port - IOPORT_BYTE + i) & 3, 1) << (8 * i);
            return v;
        }
        if (port >= FLUSH && port < FLUSH + 4) return 0;
        return size == 4 ? 0xFFFF_FFFFL : (1L << (8 * size)) - 1; // the IRQ ports are write-only
    }

    @Override
    public void out(int port, int size, long value) {
        if (port >= IOPORT && port < IOPORT + 4) setLanes(port - IOPORT, size, value);
        else if (port >= IOPORT_BYTE && port < IOPORT_BYTE + 4) {
            for (int i = 0; i < size; i++) setLanes((port - IOPORT_BYTE + i) & 3, 1, value >>> (8 * i));
        } else if (port >= IRQ_BASE && port < IRQ_BASE + IRQ_COUNT && size == 1) {
            int irq = port - IRQ_BASE;
            if (irq < 16) isaIrq.apply(irq).set((value & 0xFF) != 0);
        }
    }

    /** test_ioport_read: the {@code size}-byte lane group at byte offset {@code off} (bits beyond 32 are 0). */
    private long lanes(int off, int size) {
        long mask = size >= 4 ? 0xFFFF_FFFFL : (1L << (8 * size)) - 1;
        return ((scratch & 0xFFFF_FFFFL) >>> (8 * off)) & mask;
    }

    private void setLanes(int off, int size, long value) {
        long mask = (size >= 4 ? 0xFFFF_FFFFL : (1L << (8 * size)) - 1) << (8 * off);
        long v = ((scratch & 0xFFFF_FFFFL) & ~mask) | ((value << (8 * off)) & mask);
        scratch = (int) v;
    }

    /** The scratch register (for tests). */
    public int scratch() { return scratch; }
}
