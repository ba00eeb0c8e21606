package dev.polyvisor.kernel;

import java.util.ArrayList;
import java.util.List;

/**
 * Recovers the symbol table the kernel carries for itself (CONFIG_KALLSYMS, kernel/kallsyms.c) from
 * a stripped vmlinux. scripts/kallsyms.c emits into {@code .rodata}, each table 8-byte aligned:
 * <ul>
 * <li>{@code kallsyms_num_syms}, a u32, then {@code kallsyms_names}: per symbol a length (one byte,
 * or two, little-endian base-128, when the first has bit 7 set, since 6.1's "big symbols") and that many
 * token indexes; a symbol's expanded text is its nm type letter followed by its name;</li>
 * <li>{@code kallsyms_markers}: the offset in kallsyms_names of every 256th symbol (u32);</li>
 * <li>{@code kallsyms_token_table}: 256 NUL-terminated tokens, then {@code kallsyms_token_index}: 256
 * u16 offsets of the tokens in the table;</li>
 * <li>the addresses: with CONFIG_KALLSYMS_BASE_RELATIVE, {@code kallsyms_offsets} (s32 each) and
 * {@code kallsyms_relative_base} (u64) — with --absolute-percpu a non-negative offset is an absolute
 * value (the per-CPU symbols, whose "addresses" are offsets into the per-CPU area) and a negative one
 * means relative_base - 1 - offset; without it, relative_base + (u32) offset; without
 * BASE_RELATIVE, {@code kallsyms_addresses} (u64 each); in Debian's 7.2 {@code kallsyms_offsets}
 * are place-relative (an entry holds the symbol's address minus its own) and there is no relative_base.</li>
 * </ul>
 * Where the tables sit relative to each other changed between versions (6.1 puts offsets and
 * relative_base before num_syms; Debian's 6.1 stable also has the 6.2 {@code kallsyms_seqs_of_names}
 * between the markers and the token table; 6.4 moved offsets after the token index; Debian's 7.2 aligns
 * the tables to 4 bytes only, num_syms included), so nothing is
 * assumed about the order: the token table is found by content (the digits are tokens of their own,
 * "0" to "9" at indexes 0x30 to 0x39, because scripts/kallsyms.c maps every character a symbol uses
 * to itself), checked against the token index after it, then num_syms is the u32 from which exactly
 * num_syms names decode and end where the markers confirm every 256th of them; the addresses are the
 * candidate table that gives num_syms addresses in non-decreasing order (the table is sorted by address).
 */
final class Kallsyms {
    static final int MAX_SYMBOLS = 1 << 22;
    /** Names are at most KSYM_NAME_LEN (512 since 6.1) characters; anything longer is corrupt. */
    static final int MAX_NAME = 512;

    record Found(List<KernelSymbols.Symbol> symbols, long numSymsAddress, long tokenTableAddress) {}

    private Kallsyms() {}

    /** Reads kallsyms from the section {@code sec} of {@code elf} (normally .rodata). */
    static Found read(Elf64 elf, Elf64.Section sec) throws KernelFormatException {
        Bytes ro = elf.view(sec);
        Tokens tokens = findTokenTable(ro);
        if (tokens == null) throw new KernelFormatException("no kallsyms token table in " + sec.name() + " (was the kernel built without CONFIG_KALLSYMS?)");
        Names names = findNames(ro, tokens);
        if (names == null) throw KernelFormatException.of("kallsyms: found the token table at 0x%x but no kallsyms_num_syms/kallsyms_names before it",
                sec.addr() + tokens.start);
        long[] addresses = findAddresses(ro, sec.addr(), tokens, names);
        if (addresses == null) throw KernelFormatException.of("kallsyms: found %d names but no address table that fits them", names.names.size());
        List<KernelSymbols.Symbol> out = new ArrayList<>(addresses.length);
        for (int i = 0; i < addresses.length; i++) {
            String n = names.names.get(i);
            out.add(new KernelSymbols.Symbol(addresses[i], n.charAt(0), n.substring(1)));
        }
        return new Found(out, sec.addr() + names.numSymsAt, sec.addr() + tokens.start);
    }

    private record Tokens(int start, int end, int indexEnd, String[] text) {}

    private static final byte[] DIGITS = "0\0001\0002\0003\0004\0005\0006\0007\0008\0009\000".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

    /** The token table: where tokens 0x30..0x39 are "0".."9", 256 non-empty tokens parse, and the u16 index after them agrees. */
    private static Tokens findTokenTable(Bytes ro) throws KernelFormatException {
        byte[] d = ro.data;
        int lo = ro.base, hi = ro.base + ro.length;
        for (int p = indexOf(d, DIGITS, lo, hi); p >= 0; p = indexOf(d, DIGITS, p + 1, hi)) {
            // Walk back over tokens 0x2F..0x00 to the table's start.
            int start = p;
            boolean ok = true;
            for (int k = 0; k < 0x30 && ok; k++) {
                if (start - 1 <= lo || d[start - 1] != 0) { ok = false; break; }
                int s = start - 1;
                while (s > lo && d[s - 1] != 0) s--;
                if (s == start - 1) ok = false; // an empty token: not the table
                start = s;
            }
            if (!ok) continue;
            String[] text = new String[256];
            int[] offs = new int[256];
            int q = start;
            for (int k = 0; k < 256 && ok; k++) {
                int e = q;
                while (e < hi && d[e] != 0) e++;
                if (e == hi || e == q) { ok = false; break; }
                offs[k] = q - start;
                text[k] = new String(d, q, e - q, java.nio.charset.StandardCharsets.ISO_8859_1);
                q = e + 1;
            }
            if (!ok) continue;
            int end = q - lo;
            for (int align : new int[] {8, 4, 2}) {
                int idx = (end + align - 1) / align * align;
                if (idx + 512 > ro.length) continue;
                boolean match = true;
                for (int k = 0; k < 256 && match; k++) match = ro.u16(idx + 2L * k) == offs[k];
                if (match) return new Tokens(start - lo, end, idx + 512, text);
            }
        }
        return null;
    }

    private static int indexOf(byte[] d, byte[] pat, int from, int to) {
        outer:
        for (int i = from; i <= to - pat.length; i++) {
            for (int j = 0; j < pat.length; j++) if (d[i + j] != pat[j]) continue outer;
            return i;
        }
        return -1;
    }

    private record Names(int numSymsAt, int namesAt, int namesEnd, int markersAt, int markersEnd, List<String> names) {}

    /**
     * Scans back from the token table for kallsyms_num_syms: a u32 N followed by N names that expand
     * to plausible "type letter + name" strings and end where kallsyms_markers begins, each marker
     * giving the offset of every 256th name, the markers ending at the token table (or, in Debian's
     * 6.1, at kallsyms_seqs_of_names, 3 bytes a symbol, before it). The names start 8 bytes after
     * num_syms where it has an 8-byte slot of its own (up to 6.x), right after it where the tables
     * are only 4-aligned (Debian's 7.2).
     */
    private static Names findNames(Bytes ro, Tokens tokens) throws KernelFormatException {
        for (int q = (tokens.start - 8) & ~3; q >= 0; q -= 4) {
            long n = ro.u32(q);
            if (n == 0 || n > MAX_SYMBOLS || q + 4 + 2 * n > tokens.start) continue; // a name takes 2 bytes at least
            Names names = tryNames(ro, tokens, q, q + 4, (int) n);
            if (names == null && (q & 7) == 0 && ro.u32(q + 4) == 0) names = tryNames(ro, tokens, q, q + 8, (int) n);
            if (names != null) return names;
        }
        return null;
    }

    private static Names tryNames(Bytes ro, Tokens tokens, int q, int namesAt, int n) throws KernelFormatException {
        int at = namesAt, limit = tokens.start;
        List<String> out = new ArrayList<>(Math.min(n, 1 << 16));
        int[] markers = new int[(n + 255) >>> 8];
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            if (at >= limit) return null;
            if ((i & 0xFF) == 0) markers[i >>> 8] = at - namesAt;
            int len = ro.u8(at++);
            if ((len & 0x80) != 0) {
                if (at >= limit) return null;
                len = (len & 0x7F) | ro.u8(at++) << 7;
            }
            if (len == 0 || len > MAX_NAME || at + len > limit) return null;
            sb.setLength(0);
            for (int k = 0; k < len; k++) sb.append(tokens.text[ro.u8(at + k)]);
            at += len;
            if (!plausible(sb)) return null;
            out.add(sb.toString());
        }
        for (int align : new int[] {8, 4}) {
            int m = (at + align - 1) / align * align;
            for (int width : new int[] {4, 8}) {
                int end = m + width * markers.length;
                if (markersMatch(ro, m, markers, width, limit) && endsAtTokens(end, n, limit))
                    return new Names(q, namesAt, at, m, end, out);
            }
        }
        return null;
    }

    /** The markers end at the token table (give or take alignment), or kallsyms_seqs_of_names lies between. */
    private static boolean endsAtTokens(int markersEnd, int n, int tokenTable) {
        long gap = tokenTable - (long) markersEnd;
        return (gap >= 0 && gap < 8) || (gap >= 3L * n && gap < 3L * n + 16);
    }

    private static boolean markersMatch(Bytes ro, int at, int[] markers, int width, int limit) throws KernelFormatException {
        if (at + (long) width * markers.length > limit) return false;
        for (int k = 0; k < markers.length; k++) {
            long v = width == 4 ? ro.u32(at + 4L * k) : ro.u64(at + 8L * k);
            if (v != markers[k]) return false;
        }
        return true;
    }

    /** An nm type letter (or '?') followed by printable, space-free text. */
    private static boolean plausible(CharSequence s) {
        if (s.length() < 2) return false;
        char t = s.charAt(0);
        if (!((t >= 'A' && t <= 'Z') || (t >= 'a' && t <= 'z') || t == '?')) return false;
        for (int i = 1; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c <= ' ' || c > '~') return false;
        }
        return true;
    }

    /** Candidate address tables, tried in turn; the first whose addresses are sorted wins. */
    private static long[] findAddresses(Bytes ro, long sectionAddr, Tokens tokens, Names names) throws KernelFormatException {
        int n = names.names.size();
        long offsetsBytes = align8(4L * n), absoluteBytes = 8L * n;
        // (1) 6.1 and older: kallsyms_offsets, kallsyms_relative_base, then kallsyms_num_syms.
        long a = names.numSymsAt - 8 - offsetsBytes;
        if (a >= 0) {
            long[] r = relative(ro, a, n, ro.u64(names.numSymsAt - 8));
            if (r != null) return r;
        }
        // (2) 6.4 and later: after kallsyms_token_index come kallsyms_offsets and kallsyms_relative_base.
        long b = align8(tokens.indexEnd);
        if (b + offsetsBytes + 8 <= ro.length) {
            long[] r = relative(ro, b, n, ro.u64(b + offsetsBytes));
            if (r != null) return r;
        }
        // (3) without CONFIG_KALLSYMS_BASE_RELATIVE: kallsyms_addresses right before kallsyms_num_syms.
        long c = names.numSymsAt - absoluteBytes;
        if (c >= 0) {
            long[] r = new long[n];
            for (int i = 0; i < n; i++) r[i] = ro.u64(c + 8L * i);
            if (sorted(r) && looksLikeKernelAddress(r[n - 1])) return r;
        }
        // (4) Debian's 7.2: kallsyms_offsets right after the token index (4-aligned), each a place-relative
        // s32 (the symbol's address minus the entry's own), and no kallsyms_relative_base.
        for (long d : new long[] {align4(tokens.indexEnd), align8(tokens.indexEnd)}) {
            if (d + 4L * n > ro.length) continue;
            long[] r = new long[n];
            for (int i = 0; i < n; i++) r[i] = sectionAddr + d + 4L * i + ro.s32(d + 4L * i);
            if (sorted(r) && looksLikeKernelAddress(r[0])) return r;
        }
        return null;
    }

    private static long[] relative(Bytes ro, long at, int n, long base) throws KernelFormatException {
        if (!looksLikeKernelAddress(base)) return null;
        int[] offs = new int[n];
        boolean anyNegative = false;
        for (int i = 0; i < n; i++) {
            offs[i] = ro.s32(at + 4L * i);
            anyNegative |= offs[i] < 0;
        }
        long[] r = new long[n];
        for (int i = 0; i < n; i++)
            r[i] = anyNegative ? (offs[i] >= 0 ? offs[i] : base - 1 - offs[i]) : base + Integer.toUnsignedLong(offs[i]);
        return sorted(r) ? r : null;
    }

    private static boolean looksLikeKernelAddress(long v) { return Long.compareUnsigned(v, 0xFFFF_8000_0000_0000L) >= 0; }

    private static boolean sorted(long[] r) {
        for (int i = 1; i < r.length; i++) if (Long.compareUnsigned(r[i - 1], r[i]) > 0) return false;
        return true;
    }

    private static long align8(long v) { return (v + 7) & ~7L; }

    private static long align4(long v) { return (v + 3) & ~3L; }
}
