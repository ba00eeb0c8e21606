package dev.polyvisor.devices.virtio;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * virtio block device (virtio 1.2, 5.2) backed by a host file or block device opened by the VMM.
 * One request queue; requests are a 16-byte header (type, reserved, sector), data buffers, and a
 * status byte in the last device-writable byte:
 * <ul>
 * <li>IN/OUT read or write 512-byte sectors at the file offset sector * 512; a range past the end of
 *     the disk, or any write to a read-only disk (VIRTIO_BLK_F_RO offered), completes with IOERR;</li>
 * <li>FLUSH forces the file's data to stable storage ({@link FileChannel#force}) before it completes,
 *     so a guest's sync is durable on the host (VIRTIO_BLK_F_FLUSH, write-back cache semantics);</li>
 * <li>GET_ID answers the disk's serial, at most 20 bytes (5.2.6; {@code --disk FILE,serial=ID}, the file's name by
 *     default);</li>
 * <li>WRITE_ZEROES writes zeros; DISCARD checks its range and leaves the data (a discard is a hint:
 *     the device does not promise zeros, and write_zeroes_may_unmap is 0);</li>
 * <li>anything else completes with UNSUPP.</li>
 * </ul>
 * A request without a header or without room for its status byte breaks the device (NEEDS_RESET).
 */
public final class VirtioBlk implements VirtioDevice {
    public static final int TYPE = 2;
    public static final int T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_GET_LIFETIME = 10, T_DISCARD = 11,
            T_WRITE_ZEROES = 13;
    public static final int S_OK = 0, S_IOERR = 1, S_UNSUPP = 2;
    public static final long F_SEG_MAX = 1L << 2, F_RO = 1L << 5, F_BLK_SIZE = 1L << 6, F_FLUSH = 1L << 9,
            F_DISCARD = 1L << 13, F_WRITE_ZEROES = 1L << 14;
    public static final int QUEUE_SIZE = 256, SEG_MAX = QUEUE_SIZE - 2, ID_BYTES = 20;
    /** Largest discard/write-zeroes range and segment count the config space advertises. */
    public static final int MAX_ZERO_SECTORS = 0x3F_FFFF, MAX_ZERO_SEGMENTS = 1, DISCARD_ALIGNMENT = 8;
    static final int CONFIG_SIZE = 0x3C;

    private final FileChannel file;
    private final boolean readOnly;
    private final long sectors;
    private final byte[] id;
    private final GuestDma dma;
    private final byte[] config = new byte[CONFIG_SIZE];

    /**
     * @param file     the disk, open for reading (and writing unless {@code readOnly})
     * @param serial   the GET_ID answer, truncated to 20 bytes
     */
    public VirtioBlk(GuestDma dma, FileChannel file, boolean readOnly, String serial) throws IOException {
        this.dma = dma;
        this.file = file;
        this.readOnly = readOnly;
        this.sectors = file.size() / 512;
        this.id = Arrays.copyOf(serial.getBytes(StandardCharsets.UTF_8), Math.min(ID_BYTES, serial.getBytes(StandardCharsets.UTF_8).length));
        ByteBuffer c = ByteBuffer.wrap(config).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        c.putLong(0x00, sectors);          // capacity in 512-byte sectors
        c.putInt(0x0C, SEG_MAX);           // seg_max
        c.putInt(0x14, 512);               // blk_size
        c.putShort(0x22, (short) 1);       // num_queues
        c.putInt(0x24, MAX_ZERO_SECTORS);  // max_discard_sectors
        c.putInt(0x28, MAX_ZERO_SEGMENTS); // max_discard_seg
        c.putInt(0x2C, DISCARD_ALIGNMENT); // discard_sector_alignment
        c.putInt(0x30, MAX_ZERO_SECTORS);  // max_write_zeroes_sectors
        c.putInt(0x34, MAX_ZERO_SEGMENTS); // max_write_zeroes_seg
    }

    public long sectors() { return sectors; }

    public boolean readOnly() { return readOnly; }

    @Override public int deviceType() { return TYPE; }
    @Override public String name() { return "virtio-blk"; }
    @Override public int pciClass() { return 0x010000; } // mass storage, SCSI (what QEMU's virtio-blk-pci reports)
    @Override public long features() { return F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_DISCARD | F_WRITE_ZEROES | (readOnly ? F_RO : 0); }
    @Override public int queueCount() { return 1; }
    @Override public int queueMaxSize(int queue) { return QUEUE_SIZE; }
    @Override public int configSize() { return CONFIG_SIZE; }

    @Override
    public long configRead(int offset, int size) {
        long v = 0;
        for (int i = 0; i < size; i++) v |= (long) (config[offset + i] & 0xFF) << 8 * i;
        return v;
    }

    @Override
    public long handle(int queue, DescriptorChain c) throws VirtqueueException {
        if (c.readableBytes() < 16 || c.writableBytes() < 1)
            throw new VirtqueueException("request without a 16-byte header or a status byte");
        byte[] h = new byte[16];
        c.read(0, h, 0, 16);
        ByteBuffer hb = ByteBuffer.wrap(h).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int type = hb.getInt(0);
        long sector = hb.getLong(8);
        long statusAt = c.writableBytes() - 1;
        long written = 1;
        int st;
        try {
            switch (type) {
                case T_IN -> {
                    long n = statusAt;
                    st = inRange(sector, n) ? S_OK : S_IOERR;
                    if (st == S_OK) {
                        readInto(c, sector * 512, n);
                        written += n;
                    }
                }
                case T_OUT -> {
                    long n = c.readableBytes() - 16;
                    st = !readOnly && inRange(sector, n) ? S_OK : S_IOERR;
                    if (st == S_OK) writeFrom(c, sector * 512, n);
                }
                case T_FLUSH -> {
                    if (!readOnly) file.force(true);
                    st = S_OK;
                }
                case T_GET_ID -> {
                    int n = (int) Math.min(ID_BYTES, statusAt);
                    byte[] b = Arrays.copyOf(id, n);
                    c.write(0, b, 0, n);
                    written += n;
                    st = S_OK;
                }
                case T_DISCARD, T_WRITE_ZEROES -> st = zeroes(c, type == T_WRITE_ZEROES);
                default -> st = S_UNSUPP;
            }
        } catch (IOException e) {
            st = S_IOERR;
        }
        c.write(statusAt, new byte[] {(byte) st}, 0, 1);
        return written;
    }

    /** Whole sectors inside the disk. */
    private boolean inRange(long sector, long bytes) {
        return bytes % 512 == 0 && sector >= 0 && sector <= sectors && bytes / 512 <= sectors - sector;
    }

    /**
     * IN: the sectors go straight from the file into guest RAM with one scattering read (readv) over the
     * request's data buffers instead of one pread per buffer: Linux's O_DIRECT requests carry one buffer per
     * user page that is not physically contiguous with the previous one (up to seg_max; about 150 per 1 MiB
     * request in the busybox guest's dd), and a system call per 4 KiB piece added a third to the VM thread's
     * time in the device (docs/STATUS.md, issue 13).
     */
    private void readInto(DescriptorChain c, long pos, long n) throws IOException {
        ByteBuffer[] b = views(c, true, 0, n);
        synchronized (file) { // the channel's position is shared state
            file.position(pos);
            int i = 0;
            while (i < b.length) {
                if (!b[i].hasRemaining()) { i++; continue; }
                if (file.read(b, i, b.length - i) < 0) { // a file that shrank under us reads zeros
                    for (; i < b.length; i++) while (b[i].hasRemaining()) b[i].put((byte) 0);
                }
            }
        }
        c.pieces(true, 0, n, dma::written);
    }

    /** OUT: one gathering write (writev) from the request's data buffers, as {@link #readInto}. */
    private void writeFrom(DescriptorChain c, long pos, long n) throws IOException {
        ByteBuffer[] b = views(c, false, 16, n);
        synchronized (file) {
            file.position(pos);
            int i = 0;
            while (i < b.length) {
                if (!b[i].hasRemaining()) { i++; continue; }
                file.write(b, i, b.length - i);
            }
        }
    }

    /**
     * Views of guest RAM over [off, off + n) of the chain's readable or writable stream, one per physically
     * contiguous run (buffers that follow each other in RAM, as a driver's pages often do, become one).
     */
    private ByteBuffer[] views(DescriptorChain c, boolean writable, long off, long n) throws IOException {
        long[][] runs = {new long[2 * Math.max(1, c.segments())]}; // {address, length} pairs
        int[] count = {0};
        c.pieces(writable, off, n, (pa, len) -> {
            long[] r = runs[0];
            int k = count[0];
            if (k > 0 && r[2 * k - 2] + r[2 * k - 1] == pa && r[2 * k - 1] + len <= DescriptorChain.MAX_PIECE) {
                r[2 * k - 1] += len;
                return;
            }
            if (2 * k == r.length) runs[0] = r = Arrays.copyOf(r, 2 * r.length); // a buffer over 1 GiB comes in pieces
            r[2 * k] = pa;
            r[2 * k + 1] = len;
            count[0] = k + 1;
        });
        ByteBuffer[] b = new ByteBuffer[count[0]];
        for (int k = 0; k < b.length; k++) b[k] = dma.buffer(runs[0][2 * k], (int) runs[0][2 * k + 1]);
        return b;
    }

    /** DISCARD / WRITE_ZEROES: segments of {le64 sector, le32 num_sectors, le32 flags} (5.2.6). */
    private int zeroes(DescriptorChain c, boolean write) throws IOException {
        long n = c.readableBytes() - 16;
        if (n == 0 || n % 16 != 0 || n / 16 > MAX_ZERO_SEGMENTS) return S_UNSUPP;
        byte[] s = new byte[(int) n];
        c.read(16, s, 0, (int) n);
        ByteBuffer b = ByteBuffer.wrap(s).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i += 16) {
            long sector = b.getLong(i);
            long count = Integer.toUnsignedLong(b.getInt(i + 8));
            int flags = b.getInt(i + 12);
            if ((flags & ~1) != 0 || !write && flags != 0 || count > MAX_ZERO_SECTORS) return S_UNSUPP;
            if (readOnly || !inRange(sector, count * 512)) return S_IOERR;
        }
        if (!write) return S_OK;
        ByteBuffer zero = ByteBuffer.allocateDirect(64 * 1024);
        for (int i = 0; i < n; i += 16) {
            long pos = b.getLong(i) * 512, end = pos + Integer.toUnsignedLong(b.getInt(i + 8)) * 512;
            while (pos < end) {
                zero.clear().limit((int) Math.min(zero.capacity(), end - pos));
                pos += file.write(zero, pos);
            }
        }
        return S_OK;
    }
}
