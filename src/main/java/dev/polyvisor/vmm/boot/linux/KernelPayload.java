package dev.polyvisor.vmm.boot.linux;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import dev.polyvisor.vmm.boot.LoadException;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.zip.GZIPInputStream;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4SafeDecompressor;
import org.apache.commons.compress.compressors.bzip2.BZip2CompressorInputStream;
import org.tukaani.xz.LZMAInputStream;
import org.tukaani.xz.SingleXZInputStream;

/**
 * Decompresses a bzImage payload (the compressed vmlinux, arch/x86/boot/compressed/Makefile) into
 * the ELF image, choosing the format by magic number. Debian 12's kernels use LZ4
 * (CONFIG_KERNEL_LZ4), written by {@code lz4 -l}: the legacy frame of
 * programs/lz4io.c, a le32 magic 0x184C2102 followed by blocks of [le32 compressed size][LZ4 block]
 * each decompressing to at most 8 MiB; the kernel's "_with_size" rule then appends the le32
 * uncompressed size. gzip, xz, lzma, bzip2 and zstd payloads are decoded too (Debian's kernels are
 * zstd from 6.12 on, CONFIG_KERNEL_ZSTD); LZO is reported as unsupported.
 */
public final class KernelPayload {
    static final int LZ4_LEGACY_MAGIC = 0x184C2102;
    static final int LZ4_LEGACY_BLOCK = 8 << 20;
    /** vmlinux images are tens of MiB; anything claiming more is corrupt. */
    static final long MAX_OUTPUT = 1L << 30;
    static final int ZSTD_MAGIC = 0xFD2FB528;
    /**
     * The largest zstd window the decoder accepts, as log2. The kernel compresses with
     * {@code zstd -22 --ultra} (scripts/Makefile.lib, cmd_zstd22), whose window is larger than
     * the reference decoder's default streaming limit of 2^27 (ZSTD_WINDOWLOG_LIMIT_DEFAULT,
     * lib/zstd.h) allows; the arch/x86/boot/compressed decompressor has the whole output buffer
     * and no limit. 31 is ZSTD_WINDOWLOG_MAX_64; the window is bounded by the output anyway.
     */
    static final int ZSTD_WINDOW_LOG_MAX = 31;

    public enum Format { LZ4_LEGACY, GZIP, XZ, LZMA, BZIP2, ZSTD, LZO, ELF, UNKNOWN }

    private KernelPayload() {}

    public static Format detect(byte[] p) { return detect(new Slice(MemorySegment.ofArray(p))); }

    public static Format detect(MemorySegment p) { return detect(new Slice(p)); }

    static Format detect(Slice p) {
        int n = p.len();
        if (n >= 4 && p.le32(0) == LZ4_LEGACY_MAGIC) return Format.LZ4_LEGACY;
        if (n >= 2 && p.u8(0) == 0x1F && p.u8(1) == 0x8B) return Format.GZIP;
        if (n >= 6 && p.u8(0) == 0xFD && p.u8(1) == '7' && p.u8(2) == 'z' && p.u8(3) == 'X' && p.u8(4) == 'Z' && p.u8(5) == 0) return Format.XZ;
        if (n >= 4 && p.le32(0) == ZSTD_MAGIC) return Format.ZSTD;
        if (n >= 3 && p.u8(0) == 'B' && p.u8(1) == 'Z' && p.u8(2) == 'h') return Format.BZIP2;
        if (n >= 4 && p.u8(0) == 0x89 && p.u8(1) == 'L' && p.u8(2) == 'Z' && p.u8(3) == 'O') return Format.LZO;
        if (n >= 4 && p.u8(0) == 0x7F && p.u8(1) == 'E' && p.u8(2) == 'L' && p.u8(3) == 'F') return Format.ELF;
        // The kernel's lzma rule writes the .lzma "alone" header: properties byte 0x5D, dictionary size.
        if (n >= 13 && p.u8(0) == 0x5D && p.u8(1) == 0) return Format.LZMA;
        return Format.UNKNOWN;
    }

    /**
     * A payload in place (a bzImage's payload is read where it lies in the image, an array or native memory, not
     * copied). Offsets in messages are relative to its start.
     */
    record Slice(MemorySegment s) {
        private static final ValueLayout.OfInt LE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

        Slice {
            if (s.byteSize() > Integer.MAX_VALUE) throw new IllegalArgumentException("payload of " + s.byteSize() + " bytes");
        }

        int len() { return (int) s.byteSize(); }

        int u8(int i) { return s.get(ValueLayout.JAVA_BYTE, i) & 0xFF; }

        int le32(int i) { return s.get(LE32, i); }

        InputStream stream() { return stream(0, len()); }

        /** {@code n} bytes from {@code at}, as a stream. */
        InputStream stream(int at, int n) { return new SegmentStream(s.asSlice(at, n)); }
    }

    /** A segment's bytes as a stream (ByteArrayInputStream's behaviour, for a segment). */
    static final class SegmentStream extends InputStream {
        private final MemorySegment s;
        private long pos;

        SegmentStream(MemorySegment s) { this.s = s; }

        @Override public int read() { return pos < s.byteSize() ? s.get(ValueLayout.JAVA_BYTE, pos++) & 0xFF : -1; }

        @Override public int read(byte[] b, int off, int len) {
            java.util.Objects.checkFromIndexSize(off, len, b.length);
            if (len == 0) return 0;
            if (pos >= s.byteSize()) return -1;
            int n = (int) Math.min(len, s.byteSize() - pos);
            MemorySegment.copy(s, ValueLayout.JAVA_BYTE, pos, b, off, n);
            pos += n;
            return n;
        }

        @Override public long skip(long n) {
            long k = Math.clamp(n, 0, s.byteSize() - pos);
            pos += k;
            return k;
        }

        @Override public int available() { return (int) Math.min(Integer.MAX_VALUE, s.byteSize() - pos); }
    }

    /**
     * The vmlinux ELF of a kernel file: a bzImage's decompressed payload, or the file itself if it
     * already is an ELF (what {@code dev.polyvisor.kernel} reads BTF and kallsyms from).
     */
    public static byte[] vmlinux(byte[] kernel) throws LoadException {
        if (detect(kernel) == Format.ELF) return kernel;
        return decompress(BzImage.parse(kernel).payloadInPlace());
    }

    public static byte[] decompress(byte[] payload) throws LoadException { return decompress(MemorySegment.ofArray(payload)); }

    /** The whole decompressed payload in one array. */
    public static byte[] decompress(MemorySegment payload) throws LoadException {
        Slice p = new Slice(payload);
        Format f = detect(p);
        InputStream in = open(p);
        try (in) {
            return readAll(in, sizeHint(p));
        } catch (IOException | RuntimeException e) {
            throw corrupt(f, e);
        }
    }

    /**
     * The decompressed payload as a stream, for a loader that consumes the vmlinux once from front to back
     * ({@link VmlinuxStream}) and so never holds the tens of MiB of the whole image on the heap. Read failures
     * are IOExceptions; {@link #corrupt} turns them into the loader's one-line message.
     */
    static InputStream open(Slice payload) throws LoadException {
        Format f = detect(payload);
        try {
            return switch (f) {
                case LZ4_LEGACY -> new Lz4LegacyStream(payload);
                case GZIP -> new GZIPInputStream(payload.stream());
                case XZ -> new SingleXZInputStream(payload.stream());
                case LZMA -> new LZMAInputStream(payload.stream());
                case BZIP2 -> new BZip2CompressorInputStream(payload.stream());
                case ELF -> payload.stream();
                case ZSTD -> zstd(payload);
                case LZO -> throw new LoadException("kernel payload is LZO-compressed, which this loader cannot decompress");
                case UNKNOWN -> throw new LoadException(String.format("kernel payload has an unknown compression format (first bytes %s)",
                        hex(payload, 8)));
            };
        } catch (IOException | RuntimeException e) {
            throw corrupt(f, e);
        }
    }

    /** The loader's message for a failure while decoding a payload of format {@code f}. */
    public static LoadException corrupt(Format f, Exception e) {
        if (e instanceof PayloadException) return new LoadException(e.getMessage(), e);
        return new LoadException("corrupt " + f.name().toLowerCase(java.util.Locale.ROOT) + " kernel payload: "
                + String.valueOf(e.getMessage()).replace('\n', ' '), e);
    }

    /** A decoding failure whose message is already the loader's whole one-line message. */
    static final class PayloadException extends IOException {
        PayloadException(String message) { super(message); }
    }

    /**
     * Every kernel compression rule appends the le32 size of the output (scripts/Makefile.lib, size_append):
     * the output array's first size when plausible, else four times the input.
     */
    private static int sizeHint(Slice p) {
        long trailer = p.len() >= 8 ? Integer.toUnsignedLong(p.le32(p.len() - 4)) : 0;
        return (int) Math.min(trailer > 0 && trailer <= MAX_OUTPUT ? trailer : (long) p.len() * 4, MAX_OUTPUT);
    }

    /**
     * The decoded streams' common shape: reads come in arrays ({@link #readSome}, never asked for 0 bytes), and
     * the one-byte read is one of them.
     */
    abstract static class ArrayStream extends InputStream {
        @Override public final int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xFF;
        }

        @Override public final int read(byte[] b, int off, int len) throws IOException {
            java.util.Objects.checkFromIndexSize(off, len, b.length);
            return len == 0 ? 0 : readSome(b, off, len);
        }

        /** Reads 1 to {@code len} bytes, or -1 at the end. */
        abstract int readSome(byte[] b, int off, int len) throws IOException;
    }

    /**
     * The legacy-frame LZ4 payload decoded one block (at most 8 MiB) at a time: a le32 magic 0x184C2102, then
     * blocks of [le32 compressed size][LZ4 block], and the kernel build's le32 output size as the last word.
     */
    static final class Lz4LegacyStream extends ArrayStream {
        private final Slice p;
        /**
         * lz4-java's JNI build of liblz4 (LZ4_decompress_safe, made for untrusted input), or its Java decoder where the
         * bundled library cannot be loaded. The Java decoder runs cold at every launch, before HotSpot has compiled it:
         * Debian's 53 MB vmlinux took 160-440 ms to decode against 8 ms natively, and the whole VM set-up before the
         * guest's first instruction went from 0.63 to 0.39 s (session 10, {@code --stats} with a 1 ms timeout).
         */
        private final LZ4SafeDecompressor lz4 = LZ4Factory.fastestInstance().safeDecompressor();
        /**
         * The current block, off the Java heap and freed by {@link #close}: an 8 MiB array would grow the heap,
         * which the collector keeps for the rest of the run (the boot benchmark measures peak RSS).
         */
        private final java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined();
        private java.nio.ByteBuffer block;
        private int pos = 4;
        private long total;
        private boolean ended;

        /** The payload as lz4-java takes it: a heap buffer over the array, or a direct one over native memory. */
        private final java.nio.ByteBuffer source;

        Lz4LegacyStream(Slice payload) {
            this.p = payload;
            this.source = payload.s().asByteBuffer();
        }

        @Override int readSome(byte[] b, int off, int len) throws IOException {
            while (block == null || !block.hasRemaining()) if (!nextBlock()) return -1;
            int n = Math.min(len, block.remaining());
            block.get(b, off, n);
            return n;
        }

        private boolean nextBlock() throws PayloadException {
            while (!ended) {
                if (pos + 4 > p.len()) {
                    ended = true;
                    if (pos != p.len()) throw new PayloadException(String.format("kernel payload truncated: %d stray bytes after the last lz4 block", p.len() - pos));
                    return false;
                }
                long csize = Integer.toUnsignedLong(p.le32(pos));
                if (csize == LZ4_LEGACY_MAGIC) { pos += 4; continue; } // concatenated frames
                if (pos + 4 == p.len()) {
                    ended = true;
                    if (csize != total) // the size the kernel build appended
                        throw new PayloadException(String.format("corrupt lz4 kernel payload: decompressed 0x%x bytes but the trailer says 0x%x", total, csize));
                    return false;
                }
                pos += 4;
                if (csize > p.len() - pos)
                    throw new PayloadException(String.format("kernel payload truncated: lz4 block of 0x%x bytes at 0x%x runs past the end (0x%x)", csize, pos - 4, p.len()));
                if (block == null) block = dev.polyvisor.memory.LazyRam.allocateFilled(LZ4_LEGACY_BLOCK, arena).asByteBuffer();
                block.clear();
                int n;
                try {
                    n = lz4.decompress(source, pos, (int) csize, block, 0, LZ4_LEGACY_BLOCK);
                } catch (LZ4Exception e) {
                    throw new PayloadException(String.format("corrupt lz4 kernel payload: bad block at 0x%x (%s)", pos - 4, e.getMessage()));
                }
                block.limit(n).position(0);
                pos += (int) csize;
                if ((total += n) > MAX_OUTPUT) throw new PayloadException("corrupt lz4 kernel payload: output exceeds 1 GiB");
                if (n > 0) return true;
            }
            return false;
        }

        @Override public void close() {
            if (arena.scope().isAlive()) arena.close();
        }
    }

    /**
     * A zstd payload: one or more frames (RFC 8878 3.1), then the le32 size the kernel build
     * appends (scripts/Makefile.lib, size_append), which must match the output. The frames are
     * found first so that the trailer is never taken for the start of another frame; they are decoded
     * one after the other, each with its own decoder.
     */
    static InputStream zstd(Slice p) throws LoadException {
        List<int[]> frames = new ArrayList<>();
        int pos = 0;
        while (p.len() - pos >= 8 && p.le32(pos) == ZSTD_MAGIC) {
            long len = frameSize(p.s().asSlice(pos));
            if (Zstd.isError(len))
                throw new LoadException(String.format("corrupt zstd kernel payload: frame at 0x%x: %s", pos, Zstd.getErrorName(len)));
            frames.add(new int[] {pos, (int) len});
            pos += (int) len;
        }
        if (frames.isEmpty()) throw new LoadException("corrupt zstd kernel payload: truncated frame header");
        if (p.len() - pos != 4)
            throw new LoadException(String.format("corrupt zstd kernel payload: %d bytes after the last frame, expected the 4-byte size", p.len() - pos));
        long size = Integer.toUnsignedLong(p.le32(pos));
        if (size > MAX_OUTPUT) throw new LoadException(String.format("corrupt zstd kernel payload: the trailer claims 0x%x bytes", size));
        List<FrameSequence.Source> sources = new ArrayList<>();
        for (int[] f : frames)
            sources.add(() -> {
                var in = new ZstdInputStreamNoFinalizer(p.stream(f[0], f[1]));
                in.setLongMax(ZSTD_WINDOW_LOG_MAX);
                return in;
            });
        InputStream all = new FrameSequence(sources);
        return new SizeCheckedStream(all, size, "zstd");
    }

    /** zstd's size of the frame that starts {@code s} (an error code for a corrupt one): zstd-jni reads arrays or direct buffers. */
    private static long frameSize(MemorySegment s) {
        if (s.isNative()) return Zstd.findFrameCompressedSize(s.asByteBuffer());
        if (s.heapBase().orElse(null) instanceof byte[] a)
            return Zstd.findFrameCompressedSize(a, (int) s.address(), (int) s.byteSize());
        return Zstd.findFrameCompressedSize(s.toArray(ValueLayout.JAVA_BYTE));
    }

    /**
     * Frames decoded one after the other, each by its own decoder, opened when the one before has ended.
     * Not {@link java.io.SequenceInputStream}: it takes a read that returns 0 bytes for the end of a stream,
     * which InputStream's contract does not say, and a decoder may return 0 when a call consumed input without
     * producing output. A decoder that never produces anything again is corrupt input, not a hang.
     */
    static final class FrameSequence extends ArrayStream {
        @FunctionalInterface
        interface Source { InputStream open() throws IOException; }

        /** Reads in a row that may return nothing before the decoder is taken to be stuck (corrupt input). */
        static final int MAX_EMPTY_READS = 1 << 16;
        private final java.util.Iterator<Source> next;
        private InputStream current;

        FrameSequence(List<Source> frames) { this.next = frames.iterator(); }

        @Override int readSome(byte[] b, int off, int len) throws IOException {
            for (int empty = 0; ; ) {
                if (current == null) {
                    if (!next.hasNext()) return -1;
                    current = next.next().open();
                }
                int n = current.read(b, off, len);
                if (n > 0) return n;
                if (n < 0) {
                    current.close();
                    current = null;
                    empty = 0;
                } else if (++empty >= MAX_EMPTY_READS) {
                    throw new PayloadException("corrupt zstd kernel payload: the decoder stopped producing output");
                }
            }
        }

        @Override public void close() throws IOException {
            if (current != null) current.close();
            current = null;
        }
    }

    /** A decoded stream that must end at exactly the size the kernel build appended. */
    static final class SizeCheckedStream extends ArrayStream {
        private final InputStream in;
        private final long size;
        private final String format;
        private long count;

        SizeCheckedStream(InputStream in, long size, String format) {
            this.in = in;
            this.size = size;
            this.format = format;
        }

        /** Skipped bytes count too (a FilterInputStream would pass the skip by this stream's count). */
        @Override public long skip(long n) throws IOException {
            long k = in.skip(n);
            if (k > 0 && (count += k) > size) throw new PayloadException(String.format("corrupt %s kernel payload: more than the trailer's 0x%x bytes", format, size));
            return k;
        }

        @Override public void close() throws IOException { in.close(); }

        @Override int readSome(byte[] b, int off, int len) throws IOException {
            int n = in.read(b, off, len);
            if (n < 0) {
                if (count != size)
                    throw new PayloadException(String.format("corrupt %s kernel payload: decompressed 0x%x bytes but the trailer says 0x%x", format, count, size));
                return -1;
            }
            if ((count += n) > size) throw new PayloadException(String.format("corrupt %s kernel payload: more than the trailer's 0x%x bytes", format, size));
            return n;
        }
    }

    /** The whole stream in one array, first sized {@code hint}; more than {@link #MAX_OUTPUT} bytes is corrupt. */
    private static byte[] readAll(InputStream in, int hint) throws IOException {
        byte[] out = new byte[Math.max(hint, 1)];
        int n = 0;
        for (int r; (r = in.read(out, n, out.length - n)) >= 0; ) {
            n += r;
            if (n == out.length) {
                if (out.length >= MAX_OUTPUT) {
                    if (in.read() >= 0) throw new PayloadException("corrupt kernel payload: output exceeds 1 GiB");
                    break;
                }
                int more = in.read();
                if (more < 0) break;
                out = Arrays.copyOf(out, (int) Math.min(MAX_OUTPUT, (long) out.length * 2));
                out[n++] = (byte) more;
            }
        }
        return n == out.length ? out : Arrays.copyOf(out, n);
    }

    private static String hex(Slice b, int n) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < Math.min(n, b.len()); i++) sb.append(String.format("%02x", b.u8(i)));
        return sb.toString();
    }
}
