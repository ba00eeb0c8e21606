package dev.polyvisor.kernel;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.junit.jupiter.api.Assertions.*;

/**
 * kallsyms recovered from a synthetic {@code .rodata} laid out the way scripts/kallsyms.c writes it,
 * in each of the orders the kernel has used.
 */
class KallsymsTest {
    static final long TEXT = 0xFFFF_FFFF_8100_0000L;
    /** Where {@link #image} puts .rodata. */
    static final long RODATA = TEXT + 0x100_0000;

    enum Layout {
        /** 6.1: offsets, relative_base, num_syms, names, markers, token_table, token_index. */
        V6_1,
        /** Debian 6.1 stable (and 6.2/6.3): as V6_1 with kallsyms_seqs_of_names between markers and token table. */
        V6_1_WITH_SEQS,
        /** 6.4+: num_syms, names, markers, token_table, token_index, offsets, relative_base, seqs. */
        V6_4,
        /** No CONFIG_KALLSYMS_BASE_RELATIVE: addresses (u64), num_syms, names, markers, token_table, token_index. */
        ABSOLUTE,
        /**
         * Debian's 7.2: as V6_4 but every table only 4-aligned (names right after num_syms) and the offsets
         * place-relative (symbol address minus the entry's own), with no relative_base; no absolute per-CPU symbols.
         */
        V7_2
    }

    /** Tokens for the codes no symbol character uses; they compress the names. */
    static final String[] MULTI = {"native_", "kvm_", "flush_", "tlb_", "__", "_t", "init", "clock", "sched", "read"};

    /** A scripts/kallsyms.c-style encoder: used characters map to themselves, spare codes to substrings. */
    static final class Encoder {
        final String[] tokens = new String[256];

        Encoder(List<KernelSymbols.Symbol> syms) {
            boolean[] used = new boolean[256];
            for (KernelSymbols.Symbol s : syms) for (char c : (s.type() + s.name()).toCharArray()) used[c] = true;
            int m = 0;
            for (int c = 0; c < 256; c++) {
                if (used[c] || (c >= '0' && c <= '9')) tokens[c] = String.valueOf((char) c);
                else if (m < MULTI.length) tokens[c] = MULTI[m++];
                else tokens[c] = "~" + Integer.toHexString(c); // never matched: names contain no '~'
            }
        }

        byte[] encode(String text) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            int i = 0;
            while (i < text.length()) {
                int best = -1;
                for (int c = 0; c < 256; c++)
                    if (tokens[c].length() > 1 && text.startsWith(tokens[c], i) && (best < 0 || tokens[c].length() > tokens[best].length())) best = c;
                if (best < 0) best = text.charAt(i);
                out.write(best);
                i += tokens[best].length();
            }
            return out.toByteArray();
        }
    }

    static final class Rodata {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        int alignment = 8;

        void align() { while (out.size() % alignment != 0) out.write(0); }

        void u16(int v) { out.write(v); out.write(v >>> 8); }

        void u32(long v) { for (int i = 0; i < 4; i++) out.write((int) (v >>> 8 * i)); }

        void u64(long v) { for (int i = 0; i < 8; i++) out.write((int) (v >>> 8 * i)); }

        void junk(Random r, int n) { for (int i = 0; i < n; i++) out.write(r.nextInt(256)); }
    }

    /** Writes the kallsyms tables for {@code syms} (sorted by address) in {@code layout}, with junk around them. */
    static byte[] kallsyms(List<KernelSymbols.Symbol> syms, Layout layout, long relativeBase, boolean absolutePercpu) {
        Encoder enc = new Encoder(syms);
        Random r = new Random(7);
        Rodata ro = new Rodata();
        ro.junk(r, 333);
        ro.align();
        if (layout == Layout.V7_2) {
            ro.alignment = 4;
            ro.junk(r, 4); // 4- but not 8-aligned from here on
        }
        int n = syms.size();
        Runnable offsets = () -> {
            ro.align();
            for (KernelSymbols.Symbol s : syms) {
                long off = !absolutePercpu ? s.address() - relativeBase
                        : s.type() == 'A' ? s.address() : relativeBase - s.address() - 1;
                ro.u32(off);
            }
            ro.align();
            ro.u64(relativeBase);
        };
        if (layout == Layout.V6_1 || layout == Layout.V6_1_WITH_SEQS) offsets.run();
        if (layout == Layout.ABSOLUTE) for (KernelSymbols.Symbol s : syms) ro.u64(s.address());
        ro.align();
        ro.u32(n);
        ro.align();
        int namesStart = ro.out.size();
        List<Integer> markers = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            if (i % 256 == 0) markers.add(ro.out.size() - namesStart);
            byte[] e = enc.encode(syms.get(i).type() + syms.get(i).name());
            if (e.length > 127) { ro.out.write(0x80 | (e.length & 0x7F)); ro.out.write(e.length >>> 7); }
            else ro.out.write(e.length);
            ro.out.writeBytes(e);
        }
        ro.align();
        for (int m : markers) ro.u32(m);
        if (layout == Layout.V6_1_WITH_SEQS) {
            ro.align();
            ro.junk(r, 3 * n);
        }
        ro.align();
        int[] idx = new int[256];
        int tokStart = ro.out.size();
        for (int c = 0; c < 256; c++) {
            idx[c] = ro.out.size() - tokStart;
            ro.out.writeBytes(enc.tokens[c].getBytes(StandardCharsets.ISO_8859_1));
            ro.out.write(0);
        }
        ro.align();
        for (int c = 0; c < 256; c++) ro.u16(idx[c]);
        if (layout == Layout.V6_4) {
            offsets.run();
            ro.align();
            ro.junk(r, 3 * n);
        }
        if (layout == Layout.V7_2) {
            ro.align();
            for (KernelSymbols.Symbol s : syms) ro.u32(s.address() - (RODATA + ro.out.size()));
            ro.junk(r, 3 * n);
        }
        ro.junk(r, 100);
        return ro.out.toByteArray();
    }

    /** ~700 symbols: per-CPU ones first (absolute, small), then text and data, one name longer than 127 bytes. */
    static List<KernelSymbols.Symbol> symbols() {
        List<KernelSymbols.Symbol> s = new ArrayList<>();
        s.add(new KernelSymbols.Symbol(0, 'A', "fixed_percpu_data"));
        s.add(new KernelSymbols.Symbol(0x1b6c0, 'A', "tick_cpu_device"));
        s.add(new KernelSymbols.Symbol(TEXT, 'T', "_text"));
        s.add(new KernelSymbols.Symbol(TEXT + 0x1000, 'T', "native_flush_tlb_multi"));
        s.add(new KernelSymbols.Symbol(TEXT + 0x1100, 't', "kvm_flush_tlb_multi"));
        s.add(new KernelSymbols.Symbol(TEXT + 0x1200, 't', "kvm_sched_clock_read"));
        s.add(new KernelSymbols.Symbol(TEXT + 0x1300, 'T', "native_sched_clock"));
        s.add(new KernelSymbols.Symbol(TEXT + 0x1400, 'T', "x".repeat(130) + "_long_rust_symbol"));
        for (int i = 0; i < 700; i++) s.add(new KernelSymbols.Symbol(TEXT + 0x2000 + 0x40L * i, i % 3 == 0 ? 'd' : 'T', "sym_" + i + "_init_clock"));
        s.add(new KernelSymbols.Symbol(TEXT + 0x100_0000, 'D', "pv_ops"));
        s.sort(Comparator.comparing(KernelSymbols.Symbol::address, Long::compareUnsigned));
        return s;
    }

    static Elf64 image(byte[] rodata) throws KernelFormatException {
        ElfBuilder b = new ElfBuilder();
        b.section(".text", Elf64.SHT_PROGBITS, Elf64.SHF_ALLOC | Elf64.SHF_EXECINSTR, TEXT, new byte[16]);
        b.section(".rodata", Elf64.SHT_PROGBITS, Elf64.SHF_ALLOC, RODATA, rodata);
        return Elf64.parse(b.build());
    }

    @ParameterizedTest
    @EnumSource(Layout.class)
    void everySymbolComesBackWithItsAddressAndType(Layout layout) throws Exception {
        List<KernelSymbols.Symbol> syms = symbols();
        boolean percpuAbsolute = layout != Layout.ABSOLUTE && layout != Layout.V7_2;
        List<KernelSymbols.Symbol> input = percpuAbsolute ? syms : syms.stream().filter(s -> s.type() != 'A').toList();
        byte[] rodata = kallsyms(input, layout, TEXT, percpuAbsolute);
        KernelSymbols ks = KernelSymbols.fromKallsyms(image(rodata));
        assertEquals(input.size(), ks.size());
        for (KernelSymbols.Symbol s : input) assertEquals(s, ks.symbol(s.name()).orElseThrow(), s.name());
        assertEquals(TEXT + 0x1100, ks.require("kvm_flush_tlb_multi"));
        if (percpuAbsolute) assertEquals(0x1b6c0, ks.require("tick_cpu_device"));
    }

    @Test
    void unsignedRelativeOffsetsWithoutAbsolutePercpu() throws Exception {
        List<KernelSymbols.Symbol> syms = symbols().stream().filter(s -> s.type() != 'A').toList();
        KernelSymbols ks = KernelSymbols.fromKallsyms(image(kallsyms(syms, Layout.V6_1, TEXT, false)));
        assertEquals(syms, ks.all());
    }

    @Test
    void anImageWithoutKallsymsSaysSo() throws Exception {
        byte[] plain = new byte[4096];
        new Random(1).nextBytes(plain);
        String m = assertThrows(KernelFormatException.class, () -> KernelSymbols.fromKallsyms(image(plain))).getMessage();
        assertTrue(m.contains("no kallsyms token table"), m);
    }

    @Test
    void corruptNamesOrAddressesAreRefused() throws Exception {
        List<KernelSymbols.Symbol> syms = symbols();
        byte[] ok = kallsyms(syms, Layout.V6_1_WITH_SEQS, TEXT, true);
        // A zero-length first name: kallsyms_num_syms can no longer be confirmed.
        byte[] names = ok.clone();
        int numSyms = indexOfU32(ok, syms.size());
        names[numSyms + 8] = 0; // the first name's length
        String m = assertThrows(KernelFormatException.class, () -> KernelSymbols.fromKallsyms(image(names))).getMessage();
        assertTrue(m.contains("no kallsyms_num_syms"), m);
        // Unsort the offsets: no address table fits.
        byte[] offs = ok.clone();
        int firstOffset = numSyms - 8 - ((4 * syms.size() + 7) & ~7);
        for (int i = 0; i < 4; i++) offs[firstOffset + 4 * 5 + i] = (byte) 0x80;
        m = assertThrows(KernelFormatException.class, () -> KernelSymbols.fromKallsyms(image(offs))).getMessage();
        assertTrue(m.contains("no address table"), m);
    }

    @Test
    void randomDamageNeverEscapesAsAnotherException() throws Exception {
        byte[] ok = kallsyms(symbols(), Layout.V6_1, TEXT, true);
        Random r = new Random(3);
        for (int round = 0; round < 200; round++) {
            byte[] bad = ok.clone();
            for (int k = 0; k < 1 + r.nextInt(8); k++) bad[r.nextInt(bad.length)] = (byte) r.nextInt(256);
            try {
                KernelSymbols.fromKallsyms(image(bad));
            } catch (KernelFormatException expected) {
                // fine
            }
        }
        for (int len = 0; len < ok.length; len += 97) {
            try {
                KernelSymbols.fromKallsyms(image(Arrays.copyOf(ok, len)));
            } catch (KernelFormatException expected) {
                // fine
            }
        }
    }

    private static int indexOfU32(byte[] b, int v) {
        for (int i = 0; i + 8 <= b.length; i += 8)
            if ((b[i] & 0xFF | (b[i + 1] & 0xFF) << 8 | (b[i + 2] & 0xFF) << 16 | (b[i + 3] & 0xFF) << 24) == v
                    && b[i + 4] == 0 && b[i + 5] == 0 && b[i + 6] == 0 && b[i + 7] == 0) return i;
        throw new AssertionError("num_syms not found");
    }
}
