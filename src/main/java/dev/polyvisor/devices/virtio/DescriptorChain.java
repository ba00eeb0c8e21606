package dev.polyvisor.devices.virtio;

import java.util.Arrays;

/**
 * One request taken from a virtqueue: the descriptor chain's buffers in order, indirect tables
 * flattened, the device-readable ones first and the device-writable ones after (the order the driver
 * must use, virtio 1.2 2.7.4.2). The device reads its request from the readable bytes as one stream
 * and writes its answer into the writable bytes as another.
 */
public final class DescriptorChain {
    private final GuestDma dma;
    /** What goes back in the used ring: the head descriptor's index (split), the buffer ID (packed). */
    private int head;
    /** Packed rings: how many ring slots the request took (1 for an indirect table). */
    private int ringSlots = 1;
    private long[] addr = new long[8];
    private int[] len = new int[8];
    private int count, readable;
    private long readableBytes, writableBytes;

    DescriptorChain(GuestDma dma, int head) { this.dma = dma; this.head = head; }

    /** What goes back in the used ring: the head descriptor's index (split), the buffer ID (packed). */
    public int head() { return head; }

    /** Packed rings: how many ring slots the request took (1 for an indirect table). */
    int ringSlots() { return ringSlots; }

    /** A packed request, once read whole: its buffer ID (the last descriptor's, virtio 1.2 2.8.6) and the slots it took. */
    void packed(int id, int slots) {
        head = id;
        ringSlots = slots;
    }

    void add(long a, int l, boolean write) {
        if (count == addr.length) { addr = Arrays.copyOf(addr, count * 2); len = Arrays.copyOf(len, count * 2); }
        addr[count] = a;
        len[count] = l;
        count++;
        if (write) writableBytes += Integer.toUnsignedLong(l);
        else { readable++; readableBytes += Integer.toUnsignedLong(l); }
    }

    /** Number of buffers (descriptors after flattening). */
    public int segments() { return count; }

    /** True once a device-writable buffer is in the chain (readable ones may no longer follow). */
    boolean hasWritable() { return count > readable; }

    public long readableBytes() { return readableBytes; }

    public long writableBytes() { return writableBytes; }

    /** Visits the pieces of guest RAM behind a byte range of the readable (or writable) stream. */
    @FunctionalInterface
    public interface Piece { void accept(long pa, int len) throws java.io.IOException; }

    /**
     * The longest piece handed to a {@link Piece}: a descriptor's le32 length goes up to 4 GiB - 1 (virtio 1.2,
     * 2.7.5), which a guest with more than 2 GiB of RAM can back, but a piece's length is an int (a ByteBuffer's).
     */
    static final int MAX_PIECE = 1 << 30;

    /** Calls {@code p} for each RAM piece of [off, off + n) in the readable (write=false) or writable stream. */
    public void pieces(boolean write, long off, long n, Piece p) throws java.io.IOException {
        int from = write ? readable : 0, to = write ? count : readable;
        for (int i = from; i < to && n > 0; i++) {
            long l = Integer.toUnsignedLong(len[i]);
            if (off >= l) { off -= l; continue; }
            while (off < l && n > 0) {
                int take = (int) Math.min(Math.min(l - off, n), MAX_PIECE);
                p.accept(addr[i] + off, take);
                n -= take;
                off += take;
            }
            off = 0;
        }
    }

    /** Copies up to {@code n} bytes of the readable stream from {@code off}; returns how many. */
    public int read(long off, byte[] dst, int dOff, int n) {
        int[] done = {0};
        try {
            pieces(false, off, n, (pa, l) -> { dma.read(pa, dst, dOff + done[0], l); done[0] += l; });
        } catch (java.io.IOException e) { throw new AssertionError(e); }
        return done[0];
    }

    /** Copies up to {@code n} bytes into the writable stream at {@code off}; returns how many. */
    public int write(long off, byte[] src, int sOff, int n) {
        int[] done = {0};
        try {
            pieces(true, off, n, (pa, l) -> { dma.write(pa, src, sOff + done[0], l); done[0] += l; });
        } catch (java.io.IOException e) { throw new AssertionError(e); }
        return done[0];
    }
}
