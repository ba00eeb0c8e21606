package dev.polyvisor.devices.virtio;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

import static dev.polyvisor.devices.virtio.VirtioBlk.*;
import static dev.polyvisor.devices.virtio.Virtqueue.*;
import static org.junit.jupiter.api.Assertions.*;

/** virtio-blk requests (virtio 1.2 5.2.6) against a temporary file. */
class VirtioBlkTest {
    static final long HDR = 0x10000, BUF = 0x20000, ST = 0x30000;
    @TempDir Path dir;
    private final TestRing r = new TestRing(16);
    private FileChannel ch;
    private Path img;

    private VirtioBlk open(boolean ro, int sectors) throws Exception {
        img = dir.resolve("disk.img");
        byte[] init = new byte[sectors * 512];
        for (int i = 0; i < init.length; i++) init[i] = (byte) (i / 512);
        Files.write(img, init);
        ch = ro ? FileChannel.open(img, StandardOpenOption.READ) : FileChannel.open(img, StandardOpenOption.READ, StandardOpenOption.WRITE);
        return new VirtioBlk(r.dma, ch, ro, "a-serial-longer-than-twenty-bytes");
    }

    @AfterEach
    void close() throws Exception { if (ch != null) ch.close(); }

    private void header(int type, long sector) {
        r.mem.st32(HDR, type);
        r.mem.st32(HDR + 4, 0);
        r.mem.st64(HDR + 8, sector);
    }

    /** header → data (readable or writable) → status; returns the chain. */
    private DescriptorChain request(int type, long sector, int dataLen, boolean dataWritable) throws Exception {
        Virtqueue q = r.queue(false, false);
        header(type, sector);
        r.mem.st8(ST, 0xEE);
        r.desc(0, HDR, 16, DESC_F_NEXT, dataLen > 0 ? 1 : 2);
        if (dataLen > 0) r.desc(1, BUF, dataLen, DESC_F_NEXT | (dataWritable ? DESC_F_WRITE : 0), 2);
        r.desc(2, ST, 1, DESC_F_WRITE, 0);
        r.post(0);
        return q.pop();
    }

    private int status() { return r.mem.ld8(ST); }

    @Test
    void configSpaceAndFeatures() throws Exception {
        VirtioBlk b = open(false, 64);
        assertEquals(64, b.configRead(0, 8));
        assertEquals(512, b.configRead(0x14, 4));
        assertEquals(SEG_MAX, b.configRead(0x0C, 4));
        assertEquals(1, b.configRead(0x22, 2));
        assertEquals(0, b.features() & F_RO);
        assertNotEquals(0, b.features() & F_FLUSH);
        assertEquals(F_RO, open(true, 8).features() & F_RO);
    }

    @Test
    void readsSectors() throws Exception {
        VirtioBlk b = open(false, 64);
        long n = b.handle(0, request(T_IN, 3, 1024, true));
        assertEquals(1025, n);
        assertEquals(S_OK, status());
        assertEquals(3, r.mem.ld8(BUF));
        assertEquals(4, r.mem.ld8(BUF + 1023));
        assertTrue(r.writtenPages.contains(BUF), "DMA into guest pages is reported");
    }

    @Test
    void writesSectors() throws Exception {
        VirtioBlk b = open(false, 64);
        byte[] data = new byte[1024];
        Arrays.fill(data, (byte) 0x5A);
        r.mem.load(BUF, data);
        assertEquals(1, b.handle(0, request(T_OUT, 10, 1024, false)));
        assertEquals(S_OK, status());
        byte[] file = Files.readAllBytes(img);
        assertEquals(0x5A, file[10 * 512]);
        assertEquals(0x5A, file[12 * 512 - 1]);
        assertEquals(12, file[12 * 512]);
        assertEquals(9, file[10 * 512 - 1]);
    }

    @Test
    void outOfRangeAndPartialSectorsFailWithIoerr() throws Exception {
        VirtioBlk b = open(false, 8);
        b.handle(0, request(T_IN, 7, 1024, true));
        assertEquals(S_IOERR, status());
        b.handle(0, request(T_OUT, 8, 512, false));
        assertEquals(S_IOERR, status());
        b.handle(0, request(T_IN, 0, 100, true));
        assertEquals(S_IOERR, status());
        b.handle(0, request(T_IN, -1L, 512, true));
        assertEquals(S_IOERR, status());
    }

    @Test
    void readOnlyDisksRefuseWritesButRead() throws Exception {
        VirtioBlk b = open(true, 8);
        b.handle(0, request(T_OUT, 0, 512, false));
        assertEquals(S_IOERR, status());
        assertEquals(0, Files.readAllBytes(img)[0]);
        b.handle(0, request(T_WRITE_ZEROES, 0, 0, false)); // no segment: unsupported
        b.handle(0, request(T_IN, 1, 512, true));
        assertEquals(S_OK, status());
        b.handle(0, request(T_FLUSH, 0, 0, false));
        assertEquals(S_OK, status());
    }

    @Test
    void flushAndGetId() throws Exception {
        VirtioBlk b = open(false, 8);
        assertEquals(1, b.handle(0, request(T_FLUSH, 0, 0, false)));
        assertEquals(S_OK, status());
        assertEquals(21, b.handle(0, request(T_GET_ID, 0, 20, true)));
        assertEquals("a-serial-longer-than", new String(r.mem.readBytes(BUF, 20)));
        b.handle(0, request(T_GET_LIFETIME, 0, 0, false));
        assertEquals(S_UNSUPP, status());
        b.handle(0, request(99, 0, 0, false));
        assertEquals(S_UNSUPP, status());
    }

    private void segment(long sector, int count, int flags) {
        ByteBuffer s = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(sector).putInt(count).putInt(flags);
        r.mem.load(BUF, s.array());
    }

    @Test
    void writeZeroesAndDiscard() throws Exception {
        VirtioBlk b = open(false, 16);
        segment(2, 3, 0);
        b.handle(0, request(T_WRITE_ZEROES, 0, 16, false));
        assertEquals(S_OK, status());
        byte[] file = Files.readAllBytes(img);
        assertEquals(1, file[2 * 512 - 1]);
        for (int i = 2 * 512; i < 5 * 512; i++) assertEquals(0, file[i], "byte " + i);
        assertEquals(5, file[5 * 512]);
        segment(4, 4, 0);
        b.handle(0, request(T_DISCARD, 0, 16, false));
        assertEquals(S_OK, status());
        segment(4, 4, 1); // unmap is a write-zeroes flag only
        b.handle(0, request(T_DISCARD, 0, 16, false));
        assertEquals(S_UNSUPP, status());
        segment(14, 4, 0);
        b.handle(0, request(T_WRITE_ZEROES, 0, 16, false));
        assertEquals(S_IOERR, status());
    }

    @Test
    void aRequestWithoutHeaderOrStatusBreaksTheDevice() throws Exception {
        VirtioBlk b = open(false, 8);
        Virtqueue q = r.queue(false, false);
        r.desc(0, HDR, 8, 0, 0);
        r.post(0);
        DescriptorChain c = q.pop();
        assertThrows(VirtqueueException.class, () -> b.handle(0, c));
    }

    /** header → data buffers at {@code addrs} with {@code lens} → status, as a driver splits a request over pages. */
    private DescriptorChain scattered(int type, long sector, long[] addrs, int[] lens, boolean dataWritable) throws Exception {
        Virtqueue q = r.queue(false, false);
        header(type, sector);
        r.mem.st8(ST, 0xEE);
        r.desc(0, HDR, 16, DESC_F_NEXT, 1);
        for (int i = 0; i < addrs.length; i++)
            r.desc(1 + i, addrs[i], lens[i], DESC_F_NEXT | (dataWritable ? DESC_F_WRITE : 0), 2 + i);
        r.desc(1 + addrs.length, ST, 1, DESC_F_WRITE, 0);
        r.post(0);
        return q.pop();
    }

    @Test
    void aReadScatteredOverBuffersFillsEachInOrder() throws Exception {
        VirtioBlk b = open(false, 64);
        // two buffers apart, then one right after the second (one contiguous run for the device)
        long[] at = {BUF + 0x3000, BUF, BUF + 0x400};
        int[] len = {512, 1024, 1536};
        assertEquals(3072 + 1, b.handle(0, scattered(T_IN, 5, at, len, true)));
        assertEquals(S_OK, status());
        assertEquals(5, r.mem.ld8(at[0]));
        assertEquals(5, r.mem.ld8(at[0] + 511));
        assertEquals(6, r.mem.ld8(BUF));
        assertEquals(7, r.mem.ld8(BUF + 1023));
        assertEquals(8, r.mem.ld8(BUF + 0x400));
        assertEquals(10, r.mem.ld8(BUF + 0x400 + 1535));
        assertTrue(r.writtenPages.contains(BUF + 0x3000) && r.writtenPages.contains(BUF), "every page DMA wrote is reported");
    }

    @Test
    void aWriteGatheredFromBuffersLandsInOrder() throws Exception {
        VirtioBlk b = open(false, 64);
        long[] at = {BUF + 0x3000, BUF, BUF + 0x200};
        int[] len = {512, 512, 1024};
        for (int i = 0; i < at.length; i++) {
            byte[] d = new byte[len[i]];
            Arrays.fill(d, (byte) (0xA0 + i));
            r.mem.load(at[i], d);
        }
        assertEquals(1, b.handle(0, scattered(T_OUT, 20, at, len, false)));
        assertEquals(S_OK, status());
        byte[] file = Files.readAllBytes(img);
        assertEquals((byte) 0xA0, file[20 * 512]);
        assertEquals((byte) 0xA1, file[21 * 512]);
        assertEquals((byte) 0xA2, file[22 * 512]);
        assertEquals((byte) 0xA2, file[24 * 512 - 1]);
        assertEquals(24, file[24 * 512]);
        assertEquals(19, file[20 * 512 - 1]);
    }

    @Test
    void sectorsOfAFileThatShrankUnderTheDeviceReadAsZeros() throws Exception {
        VirtioBlk b = open(false, 64);
        ch.truncate(4 * 512);
        r.mem.load(BUF + 0x1000, filled(1024, (byte) 0x77)); // stale bytes the zeros must replace
        assertEquals(2048 + 1, b.handle(0, scattered(T_IN, 2, new long[] {BUF, BUF + 0x1000}, new int[] {1024, 1024}, true)));
        assertEquals(S_OK, status());
        assertEquals(2, r.mem.ld8(BUF));
        assertEquals(3, r.mem.ld8(BUF + 1023));
        assertEquals(0, r.mem.ld8(BUF + 0x1000));
        assertEquals(0, r.mem.ld8(BUF + 0x1000 + 1023));
    }

    private static byte[] filled(int n, byte v) {
        byte[] d = new byte[n];
        Arrays.fill(d, v);
        return d;
    }
}
