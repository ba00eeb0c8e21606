package dev.polyvisor.devices;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * QEMU's firmware configuration device, its legacy port-I/O interface as on the {@code pc} machine
 * (QEMU docs/specs/fw_cfg.rst; hw/nvram/fw_cfg.c): a 16-bit write to the selector port (0x510) selects
 * an item and rewinds it, each 8-bit read of the data port (0x511) returns the item's next byte, and 0
 * past its end or for an item that does not exist. Data-port writes are ignored (QEMU 2.4 and later).
 * As in QEMU's combined I/O region, an 8-bit read of either port reads data and only a 16-bit write to
 * the selector port selects; other accesses read all-ones and are dropped.
 *
 * <p>Items are byte strings; the numbers QEMU's {@code pc} machine stores (signature "QEMU", the
 * interface ID, RAM size, CPU counts) are little-endian. Named files ({@link #addFile}) get selectors
 * from {@link #FILE_FIRST} on and are listed in the file directory (selector 0x19): a big-endian count,
 * then per file a big-endian 32-bit size, a 16-bit selector, 16 reserved bits and a 56-byte
 * NUL-padded name, sorted by name. The DMA interface (0x514) is not offered: ID bit 1 is clear.
 */
public final class FwCfg implements PortIoDevice {
    public static final int PORT = 0x510, PORT_COUNT = 2;
    /** Well-known selectors (docs/specs/fw_cfg.rst "Selector Register"). */
    public static final int SIGNATURE = 0x00, ID = 0x01, UUID = 0x02, RAM_SIZE = 0x03, NOGRAPHIC = 0x04, NB_CPUS = 0x05,
            BOOT_MENU = 0x0E, MAX_CPUS = 0x0F, FILE_DIR = 0x19, FILE_FIRST = 0x20;
    /** ID bit 0: the traditional (port) interface. */
    public static final int ID_TRADITIONAL = 1;
    private static final int ENTRY_MASK = 0x3FFF;

    private final Map<Integer, byte[]> items = new TreeMap<>();
    private final TreeMap<String, Integer> files = new TreeMap<>();
    private byte[] current = new byte[0];
    private int offset;
    private int nextFile = FILE_FIRST;

    /** The items QEMU's pc machine always has: signature, ID, UUID, RAM size, no-graphic, CPU counts, boot menu, file directory. */
    public static FwCfg pc(long ramBytes, int bootCpus, int maxCpus) {
        FwCfg f = new FwCfg();
        f.put(SIGNATURE, "QEMU".getBytes(StandardCharsets.US_ASCII));
        f.put(ID, le(ID_TRADITIONAL, 4));
        f.put(UUID, new byte[16]);
        f.put(RAM_SIZE, le(ramBytes, 8));
        f.put(NOGRAPHIC, le(0, 2));
        f.put(NB_CPUS, le(bootCpus, 2));
        f.put(MAX_CPUS, le(maxCpus, 2));
        f.put(BOOT_MENU, le(0, 2));
        f.rebuildDirectory();
        return f;
    }

    public void register(IoBus io) { io.register(PORT, PORT_COUNT, this); }

    /** Sets item {@code selector} (without the write/arch-local bits' meaning: the full 16-bit key). */
    public void put(int selector, byte[] data) { items.put(selector & 0xFFFF, data.clone()); }

    /** Adds a named file (e.g. "etc/e820") and lists it in the directory; returns its selector. */
    public int addFile(String name, byte[] data) {
        if (name.getBytes(StandardCharsets.US_ASCII).length > 55) throw new IllegalArgumentException("fw_cfg file name too long: " + name);
        Integer sel = files.get(name);
        if (sel == null) { sel = nextFile++; files.put(name, sel); }
        put(sel, data);
        rebuildDirectory();
        return sel;
    }

    private void rebuildDirectory() {
        ByteBuffer b = ByteBuffer.allocate(4 + 64 * files.size()).order(ByteOrder.BIG_ENDIAN);
        b.putInt(files.size());
        for (var e : files.entrySet()) {
            byte[] name = new byte[56];
            byte[] n = e.getKey().getBytes(StandardCharsets.US_ASCII);
            System.arraycopy(n, 0, name, 0, n.length);
            b.putInt(items.get(e.getValue()).length).putShort((short) (int) e.getValue()).putShort((short) 0).put(name);
        }
        items.put(FILE_DIR, b.array());
    }

    /** Selects an item and rewinds its read offset; an unknown key selects nothing (reads return 0). */
    public void select(int key) {
        byte[] d = items.get(key & ENTRY_MASK);
        if (d == null) d = items.get(key & 0xFFFF);
        current = d == null ? new byte[0] : d;
        offset = 0;
    }

    @Override
    public long in(int port, int size) {
        if (size != 1) return size == 4 ? 0xFFFF_FFFFL : (1L << (8 * size)) - 1;
        return offset < current.length ? current[offset++] & 0xFF : 0;
    }

    @Override
    public void out(int port, int size, long value) {
        if (size == 2 && port == PORT) select((int) value & 0xFFFF);
    }

    /** The E820 map as QEMU's "etc/e820" file: per range a little-endian u64 address, u64 length, u32 type. */
    public static byte[] e820File(List<long[]> ranges) {
        ByteBuffer b = ByteBuffer.allocate(20 * ranges.size()).order(ByteOrder.LITTLE_ENDIAN);
        for (long[] r : ranges) b.putLong(r[0]).putLong(r[1]).putInt((int) r[2]);
        return b.array();
    }

    private static byte[] le(long v, int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte) (v >>> (8 * i));
        return b;
    }

    /** The names in the file directory, in directory order. */
    public List<String> fileNames() { return new ArrayList<>(files.keySet()); }
}
