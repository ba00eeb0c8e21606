package dev.polyvisor.vmm.boot.linux;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import dev.polyvisor.vmm.boot.LoadException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
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

    public static Format detect(byte[] p) {
        if (p.length >= 4 && le32(p, 0) == LZ4_LEGACY_MAGIC) return Format.LZ4_LEGACY;
        if (p.length >= 2 && (p[0] & 0xFF) == 0x1F && (p[1] & 0xFF) == 0x8B) return Format.GZIP;
        if (p.length >= 6 && (p[0] & 0xFF) == 0xFD && p[1] == '7' && p[2] == 'z' && p[3] == 'X' && p[4] == 'Z' && p[5] == 0) return Format.XZ;
        if (p.length >= 4 && le32(p, 0) == ZSTD_MAGIC) return Format.ZSTD;
        if (p.length >= 3 && p[0] == 'B' && p[1] == 'Z' && p[2] == 'h') return Format.BZIP2;
        if (p.length >= 4 && (p[0] & 0xFF) == 0x89 && p[1] == 'L' && p[2] == 'Z' && p[3] == 'O') return Format.LZO;
        if (p.length >= 4 && p[0] == 0x7F && p[1] == 'E' && p[2] == 'L' && p[3] == 'F') return Format.ELF;
        // The kernel's lzma rule writes the .lzma "alone" header: properties byte 0x5D, dictionary size.
        if (p.length >= 13 && (p[0] & 0xFF) == 0x5D && p[1] == 0) return Format.LZMA;
        return Format.UNKNOWN;
    }

    /**
     * The vmlinux ELF of a kernel file: a bzImage's decompressed payload, or the file itself if it
     * already is an ELF (what {@code dev.polyvisor.kernel} reads BTF and kallsyms from).
     */
    public static byte[] vmlinux(byte[] kernel) throws LoadException {
        if (detect(kernel) == Format.ELF) return kernel;
        return decompress(BzImage.parse(kernel).payload());
    }

    public static byte[] decompress(byte[] payload) throws LoadException {
        Format f = detect(payload);
        try {
            return switch (f) {
                case LZ4_LEGACY -> lz4Legacy(payload);
                case GZIP -> readAll(new GZIPInputStream(new ByteArrayInputStream(payload)));
                case XZ -> readAll(new SingleXZInputStream(new ByteArrayInputStream(payload)));
                case LZMA -> readAll(new LZMAInputStream(new ByteArrayInputStream(payload)));
                case BZIP2 -> readAll(new BZip2CompressorInputStream(new ByteArrayInputStream(payload)));
                case ELF -> payload;
                case ZSTD -> zstd(payload);
                case LZO -> throw new LoadException("kernel payload is LZO-compressed, which this loader cannot decompress");
                case UNKNOWN -> throw new LoadException(String.format("kernel payload has an unknown compression format (first bytes %s)",
                        hex(payload, 8)));
            };
        } catch (IOException | RuntimeException e) {
            throw new LoadException("corrupt " + f.name().toLowerCase() + " kernel payload: " + String.valueOf(e.getMessage()).replace('\n', ' '), e);
        }
    }

    static byte[] lz4Legacy(byte[] p) throws LoadException {
        LZ4SafeDecompressor lz4 = LZ4Factory.fastestJavaInstance().safeDecompressor();
        long hint = p.length >= 8 ? Integer.toUnsignedLong(le32(p, p.length - 4)) : 0;
        byte[] out = new byte[(int) Math.min(hint > 0 && hint <= MAX_OUTPUT ? hint : (long) p.length * 4, MAX_OUTPUT)];
        int outLen = 0, pos = 4;
        while (pos + 4 <= p.length) {
            long csize = Integer.toUnsignedLong(le32(p, pos));
            if (csize == LZ4_LEGACY_MAGIC) { pos += 4; continue; } // concatenated frames
            if (pos + 4 == p.length) {
                // The size the kernel build appended (scripts/Makefile.lib, size_append).
                if (csize != outLen)
                    throw new LoadException(String.format("corrupt lz4 kernel payload: decompressed 0x%x bytes but the trailer says 0x%x", outLen, csize));
                return Arrays.copyOf(out, outLen);
            }
            pos += 4;
            if (csize > p.length - pos)
                throw new LoadException(String.format("kernel payload truncated: lz4 block of 0x%x bytes at 0x%x runs past the end (0x%x)", csize, pos - 4, p.length));
            if (out.length - outLen < LZ4_LEGACY_BLOCK) {
                if (out.length >= MAX_OUTPUT) throw new LoadException("corrupt lz4 kernel payload: output exceeds 1 GiB");
                out = Arrays.copyOf(out, (int) Math.min(MAX_OUTPUT, Math.max((long) out.length * 2, outLen + (long) LZ4_LEGACY_BLOCK)));
            }
            try {
                outLen += lz4.decompress(p, pos, (int) csize, out, outLen, LZ4_LEGACY_BLOCK);
            } catch (LZ4Exception e) {
                throw new LoadException(String.format("corrupt lz4 kernel payload: bad block at 0x%x (%s)", pos - 4, e.getMessage()));
            }
            pos += (int) csize;
        }
        if (pos != p.length) throw new LoadException(String.format("kernel payload truncated: %d stray bytes after the last lz4 block", p.length - pos));
        return Arrays.copyOf(out, outLen);
    }

    /**
     * A zstd payload: one or more frames (RFC 8878 3.1), then the le32 size the kernel build
     * appends (scripts/Makefile.lib, size_append), which must match the output. The frames are
     * found first so that the trailer is never taken for the start of another frame, and the
     * output is decoded straight into an array of the trailer's size.
     */
    static byte[] zstd(byte[] p) throws IOException, LoadException {
        List<int[]> frames = new ArrayList<>();
        int pos = 0;
        while (p.length - pos >= 8 && le32(p, pos) == ZSTD_MAGIC) {
            long len = Zstd.findFrameCompressedSize(p, pos, p.length - pos);
            if (Zstd.isError(len))
                throw new LoadException(String.format("corrupt zstd kernel payload: frame at 0x%x: %s", pos, Zstd.getErrorName(len)));
            frames.add(new int[] {pos, (int) len});
            pos += (int) len;
        }
        if (frames.isEmpty()) throw new LoadException("corrupt zstd kernel payload: truncated frame header");
        if (p.length - pos != 4)
            throw new LoadException(String.format("corrupt zstd kernel payload: %d bytes after the last frame, expected the 4-byte size", p.length - pos));
        long size = Integer.toUnsignedLong(le32(p, pos));
        if (size > MAX_OUTPUT) throw new LoadException(String.format("corrupt zstd kernel payload: the trailer claims 0x%x bytes", size));
        byte[] out = new byte[(int) size];
        int outLen = 0;
        for (int[] f : frames) {
            try (var in = new ZstdInputStreamNoFinalizer(new ByteArrayInputStream(p, f[0], f[1]))) {
                in.setLongMax(ZSTD_WINDOW_LOG_MAX);
                outLen += in.readNBytes(out, outLen, out.length - outLen);
                if (in.read() >= 0)
                    throw new LoadException(String.format("corrupt zstd kernel payload: more than the trailer's 0x%x bytes", size));
            }
        }
        if (outLen != size)
            throw new LoadException(String.format("corrupt zstd kernel payload: decompressed 0x%x bytes but the trailer says 0x%x", outLen, size));
        return out;
    }

    private static byte[] readAll(InputStream in) throws IOException, LoadException {
        try (in) {
            byte[] b = in.readNBytes((int) MAX_OUTPUT);
            if (in.read() >= 0) throw new LoadException("corrupt kernel payload: output exceeds 1 GiB");
            return b;
        }
    }

    static int le32(byte[] b, int off) {
        return (b[off] & 0xFF) | (b[off + 1] & 0xFF) << 8 | (b[off + 2] & 0xFF) << 16 | (b[off + 3] & 0xFF) << 24;
    }

    private static String hex(byte[] b, int n) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < Math.min(n, b.length); i++) sb.append(String.format("%02x", b[i]));
        return sb.toString();
    }
}
