package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.vmm.boot.LoadException;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The vmlinux inside a bzImage, read once from front to back out of its decompressing stream, its PT_LOAD
 * segments copied straight to their physical addresses in guest RAM (what the bzImage's own decompressor
 * does in arch/x86/boot/compressed/misc.c, __decompress then parse_elf). The whole image (tens of MiB) is
 * never on the heap: at most one decoder block and one copy buffer are, so the VMM's peak memory is the
 * guest's own pages (the boot benchmark measures peak RSS). Segments must appear in the file in ascending
 * order without overlap, as every linker lays them out; a file that needs seeking back is refused.
 */
final class VmlinuxStream implements AutoCloseable {
    /** A program header table further into the file than this is corrupt (a vmlinux has it at offset 64). */
    static final int MAX_HEADERS = 1 << 20;
    private static final int COPY = 1 << 20;
    /** More bytes than this after the last segment is a corrupt image (6.1's relocation table is about 200 KiB). */
    static final int MAX_TAIL = 64 << 20;

    private final KernelPayload.Format format;
    private final InputStream in;
    /** The bytes read for the headers, file offsets [0, head.length). */
    private final byte[] head;
    private long position;
    final List<ElfKernel.Segment> loads;
    /** e_entry: the physical address of startup_64. */
    final long entry;
    /** Where the ELF file proper ends ({@link ElfKernel.Headers#sectionHeadersEnd}). */
    private final long sectionHeadersEnd;
    /** The bytes after the last segment, read by {@link #loadInto}: they end with the relocation table. */
    private byte[] tail = new byte[0];

    private VmlinuxStream(KernelPayload.Format format, InputStream in) throws LoadException {
        this.format = format;
        this.in = in;
        try {
            byte[] first = in.readNBytes(64);
            long end = ElfKernel.headersEnd(first);
            if (end > MAX_HEADERS) throw new LoadException(String.format("corrupt vmlinux: program header table ends at 0x%x", end));
            head = java.util.Arrays.copyOf(first, (int) Math.max(end, first.length));
            if (in.readNBytes(head, first.length, head.length - first.length) != head.length - first.length)
                throw new LoadException("vmlinux truncated: program headers lie outside the file");
            position = head.length;
        } catch (IOException | RuntimeException e) {
            throw KernelPayload.corrupt(format, e);
        }
        ElfKernel.Headers h = ElfKernel.headers(head);
        List<ElfKernel.Segment> l = new ArrayList<>();
        for (ElfKernel.ProgramHeader p : h.programHeaders())
            if (p.type() == ElfKernel.PT_LOAD) l.add(new ElfKernel.Segment(p.paddr(), p.offset(), p.fileSize(), p.memSize()));
        l.sort(Comparator.comparingLong(ElfKernel.Segment::fileOffset));
        for (int i = 1; i < l.size(); i++) {
            ElfKernel.Segment a = l.get(i - 1), b = l.get(i);
            if (a.fileOffset() + a.fileSize() > b.fileOffset())
                throw new LoadException(String.format("corrupt vmlinux: segments at file offsets 0x%x and 0x%x overlap", a.fileOffset(), b.fileOffset()));
        }
        loads = List.copyOf(l);
        entry = h.entry();
        sectionHeadersEnd = h.sectionHeadersEnd();
    }

    /** Opens the vmlinux of a bzImage (its payload, decompressed as it is read). */
    static VmlinuxStream of(byte[] bzImage) throws LoadException { return of(MemorySegment.ofArray(bzImage)); }

    /** As {@link #of(byte[])}, for an image in a segment (an image file read off the heap, ImageFile.readOffHeap), which must stay alive until the stream is closed. */
    static VmlinuxStream of(MemorySegment bzImage) throws LoadException {
        var payload = new KernelPayload.Slice(BzImage.parse(bzImage).payloadInPlace());
        InputStream in = KernelPayload.open(payload);
        try {
            return new VmlinuxStream(KernelPayload.detect(payload), in);
        } catch (LoadException | RuntimeException e) {
            try {
                in.close(); // the decoder's off-heap block or native context
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    long lowestAddress() { return loads.stream().mapToLong(ElfKernel.Segment::paddr).min().orElseThrow(); }

    long highestAddress() { return loads.stream().mapToLong(s -> s.paddr() + s.memSize()).max().orElseThrow(); }

    /**
     * Copies every segment to its physical address and zeroes its tail beyond the file bytes (.bss). The
     * caller has checked that [lowestAddress, highestAddress) is RAM. Reads the stream to its end, so that a
     * corrupt tail or a wrong size trailer is still reported.
     */
    void loadInto(GuestMemory mem) throws LoadException {
        byte[] buf = new byte[COPY];
        try {
            for (ElfKernel.Segment s : loads) {
                long off = s.fileOffset(), left = s.fileSize(), to = s.paddr();
                mem.adviseHugePages(to, left);
                if (off < head.length) { // a segment that starts within the header bytes already read
                    int n = (int) Math.min(left, head.length - off);
                    mem.load(to, head, (int) off, n);
                    off += n;
                    to += n;
                    left -= n;
                }
                if (left > 0) {
                    skipTo(off);
                    while (left > 0) {
                        int n = in.readNBytes(buf, 0, (int) Math.min(buf.length, left));
                        if (n == 0) throw new EOFException(String.format("vmlinux truncated: segment at file offset 0x%x (0x%x bytes) runs past the end at 0x%x",
                                s.fileOffset(), s.fileSize(), position));
                        MemorySegment.copy(buf, 0, mem.ram, ValueLayout.JAVA_BYTE, to, n);
                        position += n;
                        to += n;
                        left -= n;
                    }
                }
                mem.zero(s.paddr() + s.fileSize(), s.memSize() - s.fileSize());
            }
            // The rest: section headers, then the relocation table that KASLR needs (KernelRelocations).
            java.io.ByteArrayOutputStream rest = new java.io.ByteArrayOutputStream();
            for (int n; (n = in.read(buf)) >= 0; ) {
                if (rest.size() + (long) n > MAX_TAIL)
                    throw new LoadException(String.format("corrupt vmlinux: more than 0x%x bytes follow its last segment", MAX_TAIL));
                rest.write(buf, 0, n);
            }
            tail = rest.toByteArray();
            position += tail.length;
        } catch (EOFException e) {
            throw new LoadException(e.getMessage(), e);
        } catch (IOException | RuntimeException e) {
            throw KernelPayload.corrupt(format, e);
        }
    }

    /**
     * The relocation table the build appends to the vmlinux for KASLR (after {@link #loadInto}): the decompressed bytes
     * past the end of the ELF file, which ends with its section header table (e_shoff + e_shnum * e_shentsize) or its
     * last segment. Empty for a kernel without one (CONFIG_X86_NEED_RELOCS needs CONFIG_RANDOMIZE_BASE on x86-64).
     */
    byte[] relocationTable() {
        long tailStart = position - tail.length;
        long elfEnd = Math.max(tailStart, sectionHeadersEnd);
        if (elfEnd > position) return new byte[0]; // section headers past the end: no table
        return java.util.Arrays.copyOfRange(tail, (int) (elfEnd - tailStart), tail.length);
    }

    /** The decompressed image's length (after {@link #loadInto}): output_len in the decompressor. */
    long length() { return position; }

    private void skipTo(long offset) throws IOException {
        if (offset < position) throw new IOException(String.format("segment at file offset 0x%x lies in bytes already read", offset));
        try {
            in.skipNBytes(offset - position);
        } catch (EOFException e) {
            throw new EOFException(String.format("vmlinux truncated: a segment at file offset 0x%x lies past the end", offset));
        }
        position = offset;
    }

    @Override public void close() throws LoadException {
        try {
            in.close();
        } catch (IOException e) {
            throw KernelPayload.corrupt(format, e);
        }
    }
}
