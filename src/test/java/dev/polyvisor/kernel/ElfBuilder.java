package dev.polyvisor.kernel;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** Writes a little-endian ELF64 x86-64 executable with the given sections and program headers (gABI layout). */
final class ElfBuilder {
    record Sec(String name, int type, long flags, long addr, byte[] data, int link, int info, long entsize) {}

    record Phdr(int type, int flags, long offset, long vaddr, long paddr, long filesz, long memsz) {}

    record Sym(String name, long value, long size, int type, int bind, int shndx) {}

    private final List<Sec> sections = new ArrayList<>();
    private final List<Phdr> phdrs = new ArrayList<>();

    ElfBuilder() { sections.add(new Sec("", 0, 0, 0, new byte[0], 0, 0, 0)); }

    /** Adds a section and returns its index. */
    int section(String name, int type, long flags, long addr, byte[] data) { return section(new Sec(name, type, flags, addr, data, 0, 0, 0)); }

    int section(Sec s) {
        sections.add(s);
        return sections.size() - 1;
    }

    ElfBuilder phdr(Phdr p) {
        phdrs.add(p);
        return this;
    }

    /** Adds .strtab and .symtab for these symbols. */
    ElfBuilder symtab(List<Sym> syms) {
        ByteArrayOutputStream strs = new ByteArrayOutputStream();
        strs.write(0);
        ByteBuffer st = ByteBuffer.allocate(24 * (syms.size() + 1)).order(ByteOrder.LITTLE_ENDIAN);
        st.position(24);
        for (Sym s : syms) {
            int off = strs.size();
            strs.writeBytes(s.name().getBytes(StandardCharsets.UTF_8));
            strs.write(0);
            st.putInt(off).put((byte) (s.bind() << 4 | s.type())).put((byte) 0).putShort((short) s.shndx()).putLong(s.value()).putLong(s.size());
        }
        int strtab = section(".strtab", Elf64.SHT_STRTAB, 0, 0, strs.toByteArray());
        section(new Sec(".symtab", Elf64.SHT_SYMTAB, 0, 0, st.array(), strtab, 1, 24));
        return this;
    }

    /** The file: header, program headers, section contents (8-aligned), .shstrtab, section headers. */
    byte[] build() {
        ByteArrayOutputStream names = new ByteArrayOutputStream();
        names.write(0);
        List<Integer> nameOffs = new ArrayList<>();
        List<Sec> all = new ArrayList<>(sections);
        all.add(new Sec(".shstrtab", Elf64.SHT_STRTAB, 0, 0, null, 0, 0, 0));
        for (Sec s : all) {
            if (s.name().isEmpty()) { nameOffs.add(0); continue; }
            nameOffs.add(names.size());
            names.writeBytes(s.name().getBytes(StandardCharsets.UTF_8));
            names.write(0);
        }
        byte[] shstr = names.toByteArray();
        long at = 64 + 56L * phdrs.size();
        long[] offs = new long[all.size()];
        for (int i = 0; i < all.size(); i++) {
            byte[] d = i == all.size() - 1 ? shstr : all.get(i).data();
            at = (at + 7) & ~7L;
            offs[i] = at;
            if (all.get(i).type() != Elf64.SHT_NOBITS) at += d.length;
        }
        long shoff = (at + 7) & ~7L;
        ByteBuffer b = ByteBuffer.allocate((int) (shoff + 64L * all.size())).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {0x7F, 'E', 'L', 'F', 2, 1, 1, 0});
        b.putShort(0x10, (short) 2).putShort(0x12, (short) 62).putInt(0x14, 1).putLong(0x18, 0x1000000)
                .putLong(0x20, phdrs.isEmpty() ? 0 : 64).putLong(0x28, shoff).putShort(0x34, (short) 64)
                .putShort(0x36, (short) 56).putShort(0x38, (short) phdrs.size()).putShort(0x3A, (short) 64)
                .putShort(0x3C, (short) all.size()).putShort(0x3E, (short) (all.size() - 1));
        for (int i = 0; i < phdrs.size(); i++) {
            Phdr p = phdrs.get(i);
            int o = 64 + 56 * i;
            b.putInt(o, p.type()).putInt(o + 4, p.flags()).putLong(o + 8, p.offset()).putLong(o + 16, p.vaddr())
                    .putLong(o + 24, p.paddr()).putLong(o + 32, p.filesz()).putLong(o + 40, p.memsz()).putLong(o + 48, 0x1000);
        }
        for (int i = 0; i < all.size(); i++) {
            Sec s = all.get(i);
            byte[] d = i == all.size() - 1 ? shstr : s.data();
            if (s.type() != Elf64.SHT_NOBITS) b.put((int) offs[i], d);
            int o = (int) shoff + 64 * i;
            b.putInt(o, nameOffs.get(i)).putInt(o + 4, s.type()).putLong(o + 8, s.flags()).putLong(o + 16, s.addr())
                    .putLong(o + 24, i == 0 ? 0 : offs[i]).putLong(o + 32, d.length).putInt(o + 40, s.link()).putInt(o + 44, s.info())
                    .putLong(o + 48, 8).putLong(o + 56, s.entsize());
        }
        return b.array();
    }
}
