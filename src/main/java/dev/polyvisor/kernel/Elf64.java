package dev.polyvisor.kernel;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A little-endian ELF64 file (System V gABI, "Object Files", ch. 4 and 5; field offsets as in
 * include/uapi/linux/elf.h's Elf64_Ehdr, Elf64_Shdr, Elf64_Phdr and Elf64_Sym): its section
 * headers with their names, its program headers, and the symbols of {@code .symtab} when the file
 * has one (the vmlinux inside a bzImage is {@code objcopy -S}-stripped, arch/x86/boot/compressed/Makefile,
 * so it has none; its allocated sections, {@code .BTF} and the kallsyms tables in {@code .rodata}, stay).
 *
 * <p>Every header, table and name is checked against the file's bounds before it is used; counts
 * are bounded by what the file can hold, so a malformed file is a {@link KernelFormatException},
 * never an out-of-memory or a loop.
 */
public final class Elf64 {
    public static final int SHT_NULL = 0, SHT_PROGBITS = 1, SHT_SYMTAB = 2, SHT_STRTAB = 3, SHT_NOBITS = 8;
    public static final long SHF_WRITE = 1, SHF_ALLOC = 2, SHF_EXECINSTR = 4;
    public static final int PT_LOAD = 1, PT_NOTE = 4;
    static final int EHDR_SIZE = 64, SHDR_SIZE = 64, PHDR_SIZE = 56, SYM_SIZE = 24;
    /** gABI: e_shnum 0 with sections present means "the count is in section 0's sh_size"; SHN_XINDEX likewise for e_shstrndx. */
    static final int SHN_UNDEF = 0, SHN_XINDEX = 0xFFFF;

    public record Section(int index, String name, int type, long flags, long addr, long offset, long size,
                          int link, int info, long entsize) {
        public boolean alloc() { return (flags & SHF_ALLOC) != 0; }

        /** True when the section occupies bytes in the file (everything but SHT_NOBITS and SHT_NULL). */
        public boolean hasFileData() { return type != SHT_NOBITS && type != SHT_NULL; }

        public boolean containsAddress(long va) { return alloc() && Long.compareUnsigned(va - addr, size) < 0; }
    }

    public record ProgramHeader(int type, int flags, long offset, long vaddr, long paddr, long filesz, long memsz, long align) {}

    /** One .symtab entry; {@code type} and {@code bind} are the low and high nibbles of st_info (STT_*, STB_*). */
    public record Symbol(String name, long value, long size, int type, int bind, int shndx) {
        public static final int STT_OBJECT = 1, STT_FUNC = 2, STB_LOCAL = 0, STB_GLOBAL = 1, STB_WEAK = 2;
    }

    private final Bytes file;
    public final int machine;
    public final long entry;
    private final List<Section> sections;
    private final List<ProgramHeader> programHeaders;

    private Elf64(Bytes file, int machine, long entry, List<Section> sections, List<ProgramHeader> programHeaders) {
        this.file = file;
        this.machine = machine;
        this.entry = entry;
        this.sections = sections;
        this.programHeaders = programHeaders;
    }

    public static Elf64 parse(byte[] image) throws KernelFormatException {
        Bytes f = new Bytes(image, "ELF file");
        if (image.length < EHDR_SIZE) throw KernelFormatException.of("not an ELF file: %d bytes, the ELF header alone is 64", image.length);
        if (image[0] != 0x7F || image[1] != 'E' || image[2] != 'L' || image[3] != 'F') throw new KernelFormatException("not an ELF file (no \\x7fELF magic)");
        if (image[4] != 2) throw new KernelFormatException("not a 64-bit ELF file (EI_CLASS " + image[4] + ")");
        if (image[5] != 1) throw new KernelFormatException("not a little-endian ELF file (EI_DATA " + image[5] + ")");
        int machine = f.u16(0x12);
        long entry = f.u64(0x18), phoff = f.u64(0x20), shoff = f.u64(0x28);
        int phentsize = f.u16(0x36), phnum = f.u16(0x38), shentsize = f.u16(0x3A), shnum = f.u16(0x3C), shstrndx = f.u16(0x3E);

        List<ProgramHeader> phs = new ArrayList<>();
        if (phnum > 0) {
            if (phentsize < PHDR_SIZE) throw KernelFormatException.of("corrupt ELF file: e_phentsize %d < %d", phentsize, PHDR_SIZE);
            f.check(phoff, (long) phentsize * phnum, "program header table");
            for (int i = 0; i < phnum; i++) {
                long p = phoff + (long) i * phentsize;
                phs.add(new ProgramHeader(f.s32(p), f.s32(p + 4), f.u64(p + 8), f.u64(p + 16), f.u64(p + 24), f.u64(p + 32), f.u64(p + 40), f.u64(p + 48)));
            }
        }

        List<Section> secs = new ArrayList<>();
        if (shoff != 0) {
            if (shentsize < SHDR_SIZE) throw KernelFormatException.of("corrupt ELF file: e_shentsize %d < %d", shentsize, SHDR_SIZE);
            f.check(shoff, SHDR_SIZE, "section header 0");
            long count = shnum == 0 ? f.u64(shoff + 0x20) : shnum;
            if (shstrndx == SHN_XINDEX) shstrndx = f.s32(shoff + 0x28);
            if (count < 0 || count > (image.length - shoff) / shentsize)
                throw KernelFormatException.of("corrupt ELF file: %d section headers of %d bytes at 0x%x run past the 0x%x-byte file", count, shentsize, shoff, image.length);
            record Raw(int name, int type, long flags, long addr, long offset, long size, int link, int info, long entsize) {}
            List<Raw> raw = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                long s = shoff + (long) i * shentsize;
                Raw r = new Raw(f.s32(s), f.s32(s + 4), f.u64(s + 8), f.u64(s + 16), f.u64(s + 24), f.u64(s + 32), f.s32(s + 40), f.s32(s + 44), f.u64(s + 56));
                if (r.type != SHT_NOBITS && r.type != SHT_NULL) f.check(r.offset, r.size, "section " + i + "'s contents");
                raw.add(r);
            }
            Bytes names = null;
            if (shstrndx != SHN_UNDEF) {
                if (Integer.toUnsignedLong(shstrndx) >= raw.size())
                    throw KernelFormatException.of("corrupt ELF file: e_shstrndx %d names no section (there are %d)", Integer.toUnsignedLong(shstrndx), raw.size());
                Raw r = raw.get(shstrndx);
                if (r.type == SHT_NOBITS) throw new KernelFormatException("corrupt ELF file: the section name table has no contents");
                names = f.slice(r.offset, r.size, "section name table");
            }
            for (int i = 0; i < raw.size(); i++) {
                Raw r = raw.get(i);
                String name = names == null ? "" : names.cString(Integer.toUnsignedLong(r.name), "name of section " + i);
                secs.add(new Section(i, name, r.type, r.flags, r.addr, r.offset, r.size, r.link, r.info, r.entsize));
            }
        }
        return new Elf64(f, machine, entry, List.copyOf(secs), List.copyOf(phs));
    }

    public List<Section> sections() { return sections; }

    public List<ProgramHeader> programHeaders() { return programHeaders; }

    /** The first section called {@code name}. */
    public Optional<Section> section(String name) {
        return sections.stream().filter(s -> s.name().equals(name)).findFirst();
    }

    public Section requireSection(String name) throws KernelFormatException {
        return section(name).orElseThrow(() -> new KernelFormatException("ELF file has no " + name + " section"));
    }

    /** A copy of the section's bytes (empty for SHT_NOBITS). */
    public byte[] contents(Section s) throws KernelFormatException {
        if (!s.hasFileData()) return new byte[0];
        if (s.size() > Integer.MAX_VALUE - 16) throw KernelFormatException.of("section %s is too large (0x%x bytes)", s.name(), s.size());
        return file.copy(s.offset(), (int) s.size());
    }

    /** A bounded view of the section's bytes, without copying. */
    Bytes view(Section s) throws KernelFormatException {
        if (!s.hasFileData()) return file.slice(0, 0, s.name());
        return file.slice(s.offset(), s.size(), "section " + s.name());
    }

    /** The allocated, file-backed section holding virtual address {@code va}, if any. */
    public Optional<Section> sectionAt(long va) {
        return sections.stream().filter(s -> s.hasFileData() && s.containsAddress(va)).findFirst();
    }

    /** {@code len} bytes of the loaded image at virtual address {@code va}, from the section that holds them. */
    public byte[] bytesAt(long va, int len) throws KernelFormatException {
        Section s = sectionAt(va).orElseThrow(() -> KernelFormatException.of("no section of the ELF file holds 0x%x", va));
        long off = va - s.addr();
        if (Long.compareUnsigned(off + len, s.size()) > 0)
            throw KernelFormatException.of("0x%x+0x%x runs past the end of section %s", va, len, s.name());
        return file.copy(s.offset() + off, len);
    }

    /** The symbols of {@code .symtab} (empty when the file is stripped), section index 0 (the null symbol) left out. */
    public List<Symbol> symbols() throws KernelFormatException {
        Optional<Section> symtab = sections.stream().filter(s -> s.type() == SHT_SYMTAB).findFirst();
        if (symtab.isEmpty()) return List.of();
        Section st = symtab.get();
        if (st.entsize() != SYM_SIZE) throw KernelFormatException.of("corrupt ELF file: %s has entsize %d, not %d", st.name(), st.entsize(), SYM_SIZE);
        if (Integer.toUnsignedLong(st.link()) >= sections.size())
            throw KernelFormatException.of("corrupt ELF file: %s links to section %d, which does not exist", st.name(), Integer.toUnsignedLong(st.link()));
        Bytes syms = view(st), strs = view(sections.get(st.link()));
        List<Symbol> out = new ArrayList<>();
        for (long i = 1; i < st.size() / SYM_SIZE; i++) {
            long e = i * SYM_SIZE;
            int info = syms.u8(e + 4);
            String name = strs.cString(syms.u32(e), "name of symbol " + i);
            out.add(new Symbol(name, syms.u64(e + 8), syms.u64(e + 16), info & 0xF, info >>> 4, syms.u16(e + 6)));
        }
        return out;
    }
}
