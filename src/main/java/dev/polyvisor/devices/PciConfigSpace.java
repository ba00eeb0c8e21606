package dev.polyvisor.devices;

/**
 * A type-0 configuration header (PCI Local Bus Specification 3.0, 6.1) held as bytes with a per-byte
 * write mask: read-only identification, writable command, latency timer, interrupt line. A device
 * model builds one and adds its own writable bits (BARs etc.).
 */
public class PciConfigSpace implements PciFunction {
    protected final byte[] data = new byte[256];
    protected final byte[] writable = new byte[256];

    public PciConfigSpace(int vendor, int device, int revision, int classCode, int headerType) {
        set16(0x00, vendor);
        set16(0x02, device);
        data[0x08] = (byte) revision;
        data[0x09] = (byte) classCode;         // programming interface
        data[0x0A] = (byte) (classCode >> 8);  // sub-class
        data[0x0B] = (byte) (classCode >> 16); // base class
        data[0x0E] = (byte) headerType;
        setWritable(0x04, 2, 0x0147); // command: I/O, memory, bus master, parity, SERR enables
        setWritable(0x0C, 1, 0xFF);   // cache line size
        setWritable(0x0D, 1, 0xFF);   // latency timer
        setWritable(0x3C, 1, 0xFF);   // interrupt line (scratch for the OS)
    }

    public final void set8(int off, int v) { data[off] = (byte) v; }

    public final void set16(int off, int v) { data[off] = (byte) v; data[off + 1] = (byte) (v >> 8); }

    public final void set32(int off, int v) { set16(off, v); set16(off + 2, v >>> 16); }

    /** Marks bits writable by the guest: {@code mask} spans {@code len} bytes starting at {@code off}. */
    public final void setWritable(int off, int len, long mask) {
        for (int i = 0; i < len; i++) writable[off + i] = (byte) (mask >>> (8 * i));
    }

    @Override
    public int configRead(int offset, int size) {
        int v = 0;
        for (int i = 0; i < size && offset + i < 256; i++) v |= (data[offset + i] & 0xFF) << (8 * i);
        return v;
    }

    @Override
    public void configWrite(int offset, int size, int value) {
        for (int i = 0; i < size && offset + i < 256; i++) {
            int o = offset + i, m = writable[o] & 0xFF, b = value >>> (8 * i) & 0xFF;
            data[o] = (byte) (data[o] & ~m | b & m);
            // Status register high byte: the error bits 15:11 and 8 are write-one-to-clear.
            if (o == 0x07) data[o] = (byte) (data[o] & ~(b & 0xF9));
        }
    }
}
