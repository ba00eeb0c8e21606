package dev.polyvisor.kernel;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The ELF64 reader on files written by {@link ElfBuilder}. */
class Elf64Test {
    static final long TEXT = 0xFFFF_FFFF_8100_0000L, RODATA = 0xFFFF_FFFF_8200_0000L;

    static byte[] sample() {
        ElfBuilder b = new ElfBuilder();
        byte[] text = new byte[64];
        Arrays.fill(text, (byte) 0x90);
        int t = b.section(".text", Elf64.SHT_PROGBITS, Elf64.SHF_ALLOC | Elf64.SHF_EXECINSTR, TEXT, text);
        int r = b.section(".rodata", Elf64.SHT_PROGBITS, Elf64.SHF_ALLOC, RODATA, "Linux version 6.1.0-test\0padding".getBytes(StandardCharsets.US_ASCII));
        b.section(".bss", Elf64.SHT_NOBITS, Elf64.SHF_ALLOC | Elf64.SHF_WRITE, RODATA + 0x1000, new byte[0x200]);
        b.section(".BTF", Elf64.SHT_PROGBITS, Elf64.SHF_ALLOC, RODATA + 0x2000, new BtfBuilder().build());
        b.phdr(new ElfBuilder.Phdr(Elf64.PT_LOAD, 5, 0x1000, TEXT, 0x100_0000, 0x40, 0x40));
        b.symtab(List.of(new ElfBuilder.Sym("_text", TEXT, 0, 0, 1, t), new ElfBuilder.Sym("native_io_delay", TEXT + 0x10, 16, 2, 1, t),
                new ElfBuilder.Sym("local_fn", TEXT + 0x20, 8, 2, 0, t), new ElfBuilder.Sym("linux_banner", RODATA, 25, 1, 1, r)));
        return b.build();
    }

    @Test
    void sectionsProgramHeadersContentsAndSymbolsParse() throws Exception {
        Elf64 elf = Elf64.parse(sample());
        assertEquals(62, elf.machine);
        assertEquals(List.of("", ".text", ".rodata", ".bss", ".BTF", ".strtab", ".symtab", ".shstrtab"),
                elf.sections().stream().map(Elf64.Section::name).toList());
        Elf64.Section text = elf.requireSection(".text");
        assertEquals(TEXT, text.addr());
        assertEquals(64, text.size());
        assertTrue(text.alloc());
        assertEquals((byte) 0x90, elf.contents(text)[63]);
        assertEquals(0, elf.contents(elf.requireSection(".bss")).length);
        assertEquals("Linux version 6.1.0-test", new String(elf.bytesAt(RODATA, 24), StandardCharsets.US_ASCII));
        assertEquals(".rodata", elf.sectionAt(RODATA + 3).orElseThrow().name());
        assertTrue(elf.sectionAt(RODATA + 0x1000).isEmpty(), ".bss has no file data");
        assertEquals(new Elf64.ProgramHeader(Elf64.PT_LOAD, 5, 0x1000, TEXT, 0x100_0000, 0x40, 0x40, 0x1000), elf.programHeaders().getFirst());
        List<Elf64.Symbol> syms = elf.symbols();
        assertEquals(4, syms.size());
        assertEquals(new Elf64.Symbol("native_io_delay", TEXT + 0x10, 16, Elf64.Symbol.STT_FUNC, Elf64.Symbol.STB_GLOBAL, 1), syms.get(1));
        KernelSymbols ks = KernelSymbols.fromElf(elf);
        assertEquals(TEXT + 0x10, ks.require("native_io_delay"));
        assertEquals('T', ks.symbol("native_io_delay").orElseThrow().type());
        assertEquals('t', ks.symbol("local_fn").orElseThrow().type());
        assertEquals('D', ks.symbol("linux_banner").orElseThrow().type());
        assertTrue(elf.section(".symtab").isPresent());
        assertThrows(KernelFormatException.class, () -> elf.requireSection(".nope"));
        assertThrows(KernelFormatException.class, () -> elf.bytesAt(RODATA + 30, 8), "runs past the section");
        assertThrows(KernelFormatException.class, () -> elf.bytesAt(0x1234, 1));
    }

    @Test
    void theKernelImageReadsItsBannerAndBtf() throws Exception {
        KernelImage k = KernelImage.of(sample());
        assertEquals("Linux version 6.1.0-test", k.banner());
        assertEquals(1, k.btf().count());
    }

    private static String fails(byte[] image) {
        return assertThrows(KernelFormatException.class, () -> Elf64.parse(image)).getMessage();
    }

    private static byte[] with(byte[] image, int off, int size, long value) {
        byte[] b = image.clone();
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        switch (size) {
            case 1 -> bb.put(off, (byte) value);
            case 2 -> bb.putShort(off, (short) value);
            case 4 -> bb.putInt(off, (int) value);
            default -> bb.putLong(off, value);
        }
        return b;
    }

    @Test
    void malformedFilesAreRefusedWithAReason() throws Exception {
        byte[] ok = sample();
        long shoff = ByteBuffer.wrap(ok).order(ByteOrder.LITTLE_ENDIAN).getLong(0x28);
        assertTrue(fails(new byte[10]).contains("not an ELF"));
        assertTrue(fails(with(ok, 0, 1, 0)).contains("magic"));
        assertTrue(fails(with(ok, 4, 1, 1)).contains("64-bit"));
        assertTrue(fails(with(ok, 5, 1, 2)).contains("little-endian"));
        assertTrue(fails(with(ok, 0x28, 8, ok.length + 100L)).contains("outside"));
        assertTrue(fails(with(ok, 0x3C, 2, 5000)).contains("run past"));
        assertTrue(fails(with(ok, 0x3E, 2, 400)).contains("e_shstrndx"));
        assertTrue(fails(with(ok, 0x3A, 2, 10)).contains("e_shentsize"));
        assertTrue(fails(with(ok, 0x38, 2, 3000)).contains("program header table"));
        // Section 1's offset far past the end; then its name offset past the name table.
        assertTrue(fails(with(ok, (int) shoff + 64 + 24, 8, 1L << 40)).contains("section 1's contents"));
        assertTrue(fails(with(ok, (int) shoff + 64, 4, 0x7FFF_0000)).contains("name of section 1"));
        // e_shnum 0: the count is section 0's sh_size (gABI extended numbering) — here absurd.
        assertTrue(fails(with(with(ok, 0x3C, 2, 0), (int) shoff + 0x20, 8, -1)).contains("section headers"));
        // A .symtab with the wrong entry size, or a string table link past the end.
        Elf64 elf = Elf64.parse(ok);
        Elf64.Section st = elf.requireSection(".symtab");
        byte[] entsize = with(ok, (int) shoff + 64 * st.index() + 56, 8, 16);
        assertTrue(assertThrows(KernelFormatException.class, () -> Elf64.parse(entsize).symbols()).getMessage().contains("entsize"));
        byte[] link = with(ok, (int) shoff + 64 * st.index() + 40, 4, 99);
        assertTrue(assertThrows(KernelFormatException.class, () -> Elf64.parse(link).symbols()).getMessage().contains("links to section 99"));
    }

    @Test
    void truncatedAndCorruptedFilesFailCleanly() {
        byte[] ok = sample();
        for (int len = 0; len < ok.length; len += 7) {
            try {
                Elf64 e = Elf64.parse(Arrays.copyOf(ok, len));
                e.symbols();
            } catch (KernelFormatException expected) {
                // nothing else may escape
            }
        }
        Random r = new Random(64);
        for (int round = 0; round < 3000; round++) {
            byte[] bad = ok.clone();
            for (int k = 0; k < 1 + r.nextInt(3); k++) bad[r.nextInt(bad.length)] = (byte) r.nextInt(256);
            try {
                Elf64 e = Elf64.parse(bad);
                e.symbols();
                for (Elf64.Section s : e.sections()) e.contents(s);
            } catch (KernelFormatException expected) {
                // fine
            }
        }
    }
}
