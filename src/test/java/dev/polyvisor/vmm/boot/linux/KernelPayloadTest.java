package dev.polyvisor.vmm.boot.linux;

import com.github.luben.zstd.ZstdInputStream;
import com.github.luben.zstd.ZstdOutputStream;
import dev.polyvisor.vmm.boot.LoadException;
import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Factory;
import org.junit.jupiter.api.Test;
import org.tukaani.xz.LZMA2Options;
import org.tukaani.xz.XZOutputStream;

class KernelPayloadTest {
    /** Compressible test data larger than one 8 MiB legacy block. */
    private static byte[] sample(int size) {
        byte[] d = new byte[size];
        Random r = new Random(42);
        for (int i = 0; i < size; i++) d[i] = (byte) (i % 251 < 200 ? i % 13 : r.nextInt());
        return d;
    }

    /** What `lz4 -l` followed by the kernel's size_append produces. */
    static byte[] lz4Legacy(byte[] data, boolean appendSize) {
        LZ4Compressor c = LZ4Factory.fastestJavaInstance().fastCompressor();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(le32(KernelPayload.LZ4_LEGACY_MAGIC));
        for (int off = 0; off < data.length; off += KernelPayload.LZ4_LEGACY_BLOCK) {
            int len = Math.min(KernelPayload.LZ4_LEGACY_BLOCK, data.length - off);
            byte[] block = c.compress(Arrays.copyOfRange(data, off, off + len));
            out.writeBytes(le32(block.length));
            out.writeBytes(block);
        }
        if (appendSize) out.writeBytes(le32(data.length));
        return out.toByteArray();
    }

    private static byte[] le32(int v) { return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array(); }

    @Test
    void decodesTheKernelsLz4LegacyFrameWithAppendedSize() throws LoadException {
        byte[] data = sample(9 << 20);
        byte[] packed = lz4Legacy(data, true);
        assertEquals(KernelPayload.Format.LZ4_LEGACY, KernelPayload.detect(packed));
        assertArrayEquals(data, KernelPayload.decompress(packed));
    }

    @Test
    void vmlinuxIsTheBzImagesDecompressedPayloadOrTheElfItself() throws LoadException {
        byte[] elf = SyntheticKernels.vmlinux(false);
        assertArrayEquals(elf, KernelPayload.vmlinux(SyntheticKernels.bzImageWithPayload(lz4Legacy(elf, true))));
        assertSame(elf, KernelPayload.vmlinux(elf));
        assertThrows(LoadException.class, () -> KernelPayload.vmlinux(new byte[100]));
    }

    @Test
    void decodesLz4LegacyWithoutTrailer() throws LoadException {
        byte[] data = sample(100_000);
        assertArrayEquals(data, KernelPayload.decompress(lz4Legacy(data, false)));
    }

    @Test
    void reportsAWrongAppendedSize() {
        byte[] packed = lz4Legacy(sample(1000), true);
        packed[packed.length - 4] ^= 1;
        String m = assertThrows(LoadException.class, () -> KernelPayload.decompress(packed)).getMessage();
        assertTrue(m.startsWith("corrupt lz4 kernel payload: decompressed 0x3e8 bytes but the trailer says"), m);
    }

    @Test
    void reportsATruncatedLz4Block() {
        byte[] packed = lz4Legacy(sample(100_000), true);
        byte[] cut = Arrays.copyOf(packed, packed.length / 2);
        String m = assertThrows(LoadException.class, () -> KernelPayload.decompress(cut)).getMessage();
        assertTrue(m.startsWith("kernel payload truncated: lz4 block of"), m);
    }

    @Test
    void reportsACorruptLz4Block() {
        byte[] packed = lz4Legacy(sample(100_000), false);
        for (int i = 8; i < 40; i++) packed[i] = (byte) 0xFF;
        String m = assertThrows(LoadException.class, () -> KernelPayload.decompress(packed)).getMessage();
        assertTrue(m.startsWith("corrupt lz4 kernel payload: bad block at 0x4"), m);
    }

    @Test
    void decodesGzipAndXzWithTheAppendedSize() throws Exception {
        byte[] data = sample(300_000);
        byte[] gz = SyntheticKernels.gzip(data);
        assertArrayEquals(data, KernelPayload.decompress(concat(gz, le32(data.length))));
        ByteArrayOutputStream xz = new ByteArrayOutputStream();
        try (XZOutputStream o = new XZOutputStream(xz, new LZMA2Options())) { o.write(data); }
        assertEquals(KernelPayload.Format.XZ, KernelPayload.detect(xz.toByteArray()));
        assertArrayEquals(data, KernelPayload.decompress(concat(xz.toByteArray(), le32(data.length))));
    }

    /**
     * A zstd frame as the kernel's cmd_zstd22 writes it (streamed, so no content size in the
     * header, a content checksum, and the given window), then size_append's le32 size.
     */
    static byte[] kernelZstd(byte[] data, int windowLog) throws IOException {
        ByteArrayOutputStream z = new ByteArrayOutputStream();
        try (ZstdOutputStream o = new ZstdOutputStream(z, 19)) {
            o.setWindowLog(windowLog);
            o.setChecksum(true); // the zstd program writes the content checksum unless told not to
            o.write(data);
        }
        return concat(z.toByteArray(), le32(data.length));
    }

    @Test
    void decodesAZstdFrameWhoseWindowExceedsTheDefaultLimit() throws Exception {
        byte[] data = sample(300_000);
        byte[] packed = kernelZstd(data, 28); // the reference decoder streams at most 2^27 by default
        assertEquals(KernelPayload.Format.ZSTD, KernelPayload.detect(packed));
        // Precondition: the frame header really declares the large window (RFC 8878 3.1.1.1.2:
        // Window_Descriptor, exponent in the high 5 bits, plus 10), so the raised limit is exercised.
        assertEquals(28 - 10, (packed[5] & 0xFF) >>> 3, "window descriptor");
        assertThrows(IOException.class, () -> {
            try (var in = new ZstdInputStream(new ByteArrayInputStream(packed, 0, packed.length - 4))) { in.readAllBytes(); }
        }, "a decoder with the default window limit refuses the frame");
        assertArrayEquals(data, KernelPayload.decompress(packed));
        assertArrayEquals(data, KernelPayload.vmlinux(SyntheticKernels.bzImageWithPayload(packed)));
    }

    @Test
    void decodesConcatenatedZstdFrames() throws Exception {
        byte[] a = sample(50_000), b = Arrays.copyOfRange(sample(90_000), 10, 90_000);
        byte[] fa = kernelZstd(a, 20), fb = kernelZstd(b, 20);
        byte[] packed = concat(concat(Arrays.copyOf(fa, fa.length - 4), Arrays.copyOf(fb, fb.length - 4)), le32(a.length + b.length));
        assertArrayEquals(concat(a, b), KernelPayload.decompress(packed));
    }

    /** A stream that hands out its bytes in small pieces with a 0-byte read between every two, as zstd-jni may. */
    private static java.io.InputStream stuttering(byte[] data) {
        return new java.io.InputStream() {
            int pos;
            boolean nothingThisTime;
            @Override public int read() { throw new UnsupportedOperationException(); }
            @Override public int read(byte[] b, int off, int len) {
                if (pos == data.length) return -1;
                if (nothingThisTime = !nothingThisTime) return 0;
                int n = Math.min(Math.min(len, 7), data.length - pos);
                System.arraycopy(data, pos, b, off, n);
                pos += n;
                return n;
            }
        };
    }

    @Test
    void framesAreConcatenatedWholeThoughADecoderReturnsNothingSometimes() throws IOException {
        byte[] a = sample(1000), b = Arrays.copyOfRange(sample(2000), 3, 2000);
        var frames = new KernelPayload.FrameSequence(java.util.List.of(() -> stuttering(a), () -> stuttering(b)));
        assertArrayEquals(concat(a, b), frames.readAllBytes(), "a 0-byte read is not the end of a frame");
        var stuck = new KernelPayload.FrameSequence(java.util.List.of(() -> new java.io.InputStream() {
            @Override public int read() { return 0; }
            @Override public int read(byte[] buf, int off, int len) { return 0; }
        }));
        assertEquals("corrupt zstd kernel payload: the decoder stopped producing output",
                assertThrows(IOException.class, () -> stuck.read(new byte[16])).getMessage());
    }

    @Test
    void reportsACorruptOrMismatchedZstdPayload() throws Exception {
        byte[] data = sample(100_000);
        byte[] packed = kernelZstd(data, 20);
        byte[] wrongSize = packed.clone();
        wrongSize[wrongSize.length - 1] ^= 1;
        String m = assertThrows(LoadException.class, () -> KernelPayload.decompress(wrongSize)).getMessage();
        assertTrue(m.startsWith("corrupt zstd kernel payload"), m);
        byte[] cut = Arrays.copyOf(packed, packed.length / 2);
        m = assertThrows(LoadException.class, () -> KernelPayload.decompress(cut)).getMessage();
        assertTrue(m.startsWith("corrupt zstd kernel payload"), m);
        byte[] flipped = packed.clone();
        for (int i = 40; i < 200; i++) flipped[i] = (byte) ~flipped[i];
        m = assertThrows(LoadException.class, () -> KernelPayload.decompress(flipped)).getMessage();
        assertTrue(m.startsWith("corrupt zstd kernel payload"), m);
        byte[] header = {0x28, (byte) 0xB5, 0x2F, (byte) 0xFD, 0, 0, 0, 0};
        m = assertThrows(LoadException.class, () -> KernelPayload.decompress(header)).getMessage();
        assertTrue(m.startsWith("corrupt zstd kernel payload"), m);
    }

    @Test
    void refusesUnknownFormatsWithAReason() {
        byte[] junk = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        assertEquals("kernel payload has an unknown compression format (first bytes 0102030405060708)",
                assertThrows(LoadException.class, () -> KernelPayload.decompress(junk)).getMessage());
    }

    @Test
    void reportsCorruptGzip() throws IOException {
        byte[] gz = SyntheticKernels.gzip(sample(10_000));
        byte[] bad = Arrays.copyOf(gz, 30);
        assertTrue(assertThrows(LoadException.class, () -> KernelPayload.decompress(bad)).getMessage().startsWith("corrupt gzip kernel payload"));
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
