package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.vmm.boot.LoadException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;

/**
 * An x86-64 vmlinux as an ELF64 executable (System V gABI, ch. 4-5): its loadable segments at
 * their physical addresses and its notes. Trailing data after the ELF (the relocation table the
 * bzImage build appends for KASLR) is ignored.
 */
public final class ElfKernel {
    static final int PT_LOAD = 1, PT_NOTE = 4, EM_X86_64 = 62;
    /** include/xen/interface/elfnote.h: the 32-bit PVH entry point's physical address. */
    public static final int XEN_ELFNOTE_PHYS32_ENTRY = 18;

    public record Segment(long paddr, long fileOffset, long fileSize, long memSize) {}

    public record Note(String name, int type, byte[] desc) {}

    public final byte[] image;
    public final List<Segment> loads;
    public final List<Note> notes;
    /** e_entry: for an x86-64 vmlinux the physical address of startup_64 (vmlinux.lds.S, ENTRY(phys_startup_64)). */
    public final long entry;

    private ElfKernel(byte[] image, List<Segment> loads, List<Note> notes, long entry) {
        this.image = image;
        this.loads = loads;
        this.notes = notes;
        this.entry = entry;
    }

    /** One PT_LOAD or PT_NOTE program header (gABI 5, "Program Header"): where its bytes are in the file and go in memory. */
    record ProgramHeader(int index, int type, long offset, long paddr, long fileSize, long memSize) {}

    /**
     * The ELF header's facts this loader needs, and the PT_LOAD and PT_NOTE program headers in table order;
     * {@code sectionHeadersEnd} is where the section header table ends (e_shoff + e_shnum * e_shentsize, gABI 4,
     * "ELF Header"), the end of the ELF file proper: what a build appends (the relocation table) follows it.
     */
    record Headers(long entry, List<ProgramHeader> programHeaders, long sectionHeadersEnd) {}

    /** Bytes from the start of the file that hold the ELF header and the program header table (0: not an x86-64 ELF64). */
    static long headersEnd(byte[] elf) throws LoadException {
        checkIdent(elf);
        ByteBuffer b = ByteBuffer.wrap(elf).order(ByteOrder.LITTLE_ENDIAN);
        long phoff = b.getLong(0x20);
        int phentsize = Short.toUnsignedInt(b.getShort(0x36)), phnum = Short.toUnsignedInt(b.getShort(0x38));
        if (phentsize < 56 || phnum == 0 || phoff < 0 || phoff > Integer.MAX_VALUE)
            throw new LoadException("corrupt vmlinux: no usable program header table");
        return phoff + (long) phentsize * phnum;
    }

    private static void checkIdent(byte[] elf) throws LoadException {
        if (elf.length < 64 || elf[0] != 0x7F || elf[1] != 'E' || elf[2] != 'L' || elf[3] != 'F')
            throw new LoadException("vmlinux is not an ELF image");
        if (elf[4] != 2 || elf[5] != 1) throw new LoadException("vmlinux is not a 64-bit little-endian ELF image");
        if (Short.toUnsignedInt(ByteBuffer.wrap(elf).order(ByteOrder.LITTLE_ENDIAN).getShort(0x12)) != EM_X86_64)
            throw new LoadException("vmlinux is not an x86-64 ELF image");
    }

    /**
     * Parses the ELF header and program header table from {@code head}, the first bytes of the file (at least
     * {@link #headersEnd}): shared by {@link #parse}, which has the whole file, and {@link VmlinuxStream},
     * which reads the file once from a decompressing stream.
     */
    static Headers headers(byte[] head) throws LoadException {
        long end = headersEnd(head);
        if (end > head.length) throw new LoadException("vmlinux truncated: program headers lie outside the file");
        ByteBuffer b = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN);
        long phoff = b.getLong(0x20);
        int phentsize = Short.toUnsignedInt(b.getShort(0x36)), phnum = Short.toUnsignedInt(b.getShort(0x38));
        List<ProgramHeader> out = new ArrayList<>();
        for (int i = 0; i < phnum; i++) {
            int ph = (int) (phoff + (long) i * phentsize);
            int type = b.getInt(ph);
            if (type != PT_LOAD && type != PT_NOTE) continue;
            long offset = b.getLong(ph + 8), paddr = b.getLong(ph + 24), filesz = b.getLong(ph + 32), memsz = b.getLong(ph + 40);
            if (offset < 0 || filesz < 0 || offset + filesz < offset)
                throw new LoadException(String.format("corrupt vmlinux: segment %d has offset 0x%x and size 0x%x", i, offset, filesz));
            if (type == PT_LOAD && memsz < filesz)
                throw new LoadException(String.format("corrupt vmlinux: segment %d has memsz 0x%x < filesz 0x%x", i, memsz, filesz));
            if (type == PT_LOAD && (paddr < 0 || paddr + memsz < paddr)) // the loaders' RAM checks need a real range
                throw new LoadException(String.format("corrupt vmlinux: segment %d at 0x%x+0x%x is outside the physical address space", i, paddr, memsz));
            out.add(new ProgramHeader(i, type, offset, paddr, filesz, memsz));
        }
        if (out.stream().noneMatch(p -> p.type() == PT_LOAD)) throw new LoadException("vmlinux has no loadable segments");
        long sectionHeadersEnd = b.getLong(0x28) + (long) Short.toUnsignedInt(b.getShort(0x3A)) * Short.toUnsignedInt(b.getShort(0x3C));
        return new Headers(b.getLong(0x18), out, sectionHeadersEnd);
    }

    public static ElfKernel parse(byte[] elf) throws LoadException {
        Headers h = headers(elf);
        ByteBuffer b = ByteBuffer.wrap(elf).order(ByteOrder.LITTLE_ENDIAN);
        List<Segment> loads = new ArrayList<>();
        List<Note> notes = new ArrayList<>();
        for (ProgramHeader p : h.programHeaders()) {
            if (p.offset() + p.fileSize() > elf.length)
                throw new LoadException(String.format("vmlinux truncated: segment %d (0x%x+0x%x) lies outside the 0x%x-byte file",
                        p.index(), p.offset(), p.fileSize(), elf.length));
            if (p.type() == PT_LOAD) loads.add(new Segment(p.paddr(), p.offset(), p.fileSize(), p.memSize()));
            else parseNotes(b, (int) p.offset(), (int) (p.offset() + p.fileSize()), notes);
        }
        return new ElfKernel(elf, loads, notes, h.entry());
    }

    /** Note entries: namesz, descsz, type, name and desc each padded to 4 bytes (gABI 5, "Note Section"). */
    private static void parseNotes(ByteBuffer b, int at, int end, List<Note> out) throws LoadException {
        while (at + 12 <= end) {
            long namesz = Integer.toUnsignedLong(b.getInt(at)), descsz = Integer.toUnsignedLong(b.getInt(at + 4));
            int type = b.getInt(at + 8);
            long nameAt = at + 12L, descAt = nameAt + ((namesz + 3) & ~3L), next = descAt + ((descsz + 3) & ~3L);
            if (descAt + descsz > end || next < 0) throw new LoadException(String.format("corrupt vmlinux: note at 0x%x runs past its segment", at));
            byte[] name = new byte[(int) namesz];
            b.get((int) nameAt, name);
            byte[] desc = new byte[(int) descsz];
            b.get((int) descAt, desc);
            int len = 0;
            while (len < name.length && name[len] != 0) len++;
            out.add(new Note(new String(name, 0, len, StandardCharsets.US_ASCII), type, desc));
            at = (int) Math.min(next, end);
        }
    }

    /** XEN_ELFNOTE_PHYS32_ENTRY, if the kernel was built with CONFIG_PVH. */
    public OptionalLong pvhEntry() {
        for (Note n : notes) {
            if (!n.name().equals("Xen") || n.type() != XEN_ELFNOTE_PHYS32_ENTRY) continue;
            ByteBuffer d = ByteBuffer.wrap(n.desc()).order(ByteOrder.LITTLE_ENDIAN);
            // head.S emits it with _ASM_PTR: 8 bytes on x86-64, 4 on i386.
            if (n.desc().length >= 8) return OptionalLong.of(d.getLong(0) & 0xFFFF_FFFFL);
            if (n.desc().length >= 4) return OptionalLong.of(Integer.toUnsignedLong(d.getInt(0)));
        }
        return OptionalLong.empty();
    }

    public long lowestAddress() { return loads.stream().mapToLong(Segment::paddr).min().orElseThrow(); }

    public long highestAddress() { return loads.stream().mapToLong(s -> s.paddr() + s.memSize()).max().orElseThrow(); }
}
