package dev.polyvisor.cpu.decode;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The one declarative opcode table (DESIGN.md "The CPU"): every instruction form the CPU implements
 * is an {@link Entry} registered here by its handler group in {@code cpu.exec}. The decoder, the
 * interpreter (through each entry's factory) and the differential test generator all read it.
 */
public final class OpcodeTable {
    public static final int MAP_1BYTE = 0, MAP_0F = 1, MAP_0F38 = 2, MAP_0F3A = 3;

    /** Mandatory-prefix selector for SSE forms; ANY for instructions that ignore it. */
    public static final int ANY = -1, NP = 0, P66 = 0x66, PF3 = 0xF3, PF2 = 0xF2;

    // Entry flags.
    public static final int MODRM = 1, BYTE = 2, D64 = 4, F64 = 8, NO64 = 16, LOCKABLE = 32, ENDS = 64,
            /** Valid only with a register operand (mod == 3). */ REG_ONLY = 128,
            /** Valid only with a memory operand (mod != 3). */ MEM_ONLY = 256,
            /** Privileged: #GP(0) when CPL > 0 (checked by the handler, recorded for tests). */ PRIV = 512,
            /** User-mode form with semantics the host-CPU oracle can check. */ ORACLE = 1024,
            /** Operand size is fixed at 16 bits, ignoring 66/REX.W (e.g. MOV Sreg). */ OP16 = 2048;

    /** Immediate operands that follow ModRM/SIB/displacement. */
    public enum Imm { NONE, IB, IW, IZ, IV, IW_IB, AP, MOFFS, GRP3 }

    @FunctionalInterface
    public interface Factory {
        /** Builds the handler, or returns null for an encoding that is #UD. */
        Insn make(Decoded d);
    }

    /**
     * One instruction form. {@code reg} selects a ModRM.reg group member (-1: any); {@code prefix}
     * selects by mandatory prefix (ANY, NP, P66, PF3, PF2).
     */
    public record Entry(String mnemonic, int map, int opcode, int prefix, int reg, int flags, Imm imm, Factory factory) {
        public boolean has(int f) { return (flags & f) != 0; }
    }

    static final class Slot {
        boolean modrm;
        /** [prefixIdx * 9 + reg + 1], prefixIdx: 0 ANY, 1 NP, 2 66, 3 F3, 4 F2. */
        final Entry[] entries = new Entry[45];
        boolean byPrefix;
    }

    private final Slot[][] maps = new Slot[4][256];
    private final List<Entry> all = new ArrayList<>();

    static int prefixIdx(int p) {
        return switch (p) { case ANY -> 0; case NP -> 1; case P66 -> 2; case PF3 -> 3; case PF2 -> 4;
            default -> throw new IllegalArgumentException("prefix " + p); };
    }

    public synchronized void add(Entry e) {
        Slot s = maps[e.map()][e.opcode()];
        if (s == null) s = maps[e.map()][e.opcode()] = new Slot();
        boolean m = e.has(MODRM);
        if (s.entries.length > 0 && hasAny(s) && s.modrm != m)
            throw new IllegalStateException(e.mnemonic() + ": ModRM use differs from other forms of the opcode");
        s.modrm = m;
        int i = prefixIdx(e.prefix()) * 9 + e.reg() + 1;
        if (s.entries[i] != null)
            throw new IllegalStateException("opcode form registered twice: " + e.mnemonic() + " and " + s.entries[i].mnemonic());
        s.entries[i] = e;
        if (e.prefix() != ANY) s.byPrefix = true;
        all.add(e);
    }

    private static boolean hasAny(Slot s) {
        for (Entry x : s.entries) if (x != null) return true;
        return false;
    }

    /** Shorthand for the common case. */
    public void add(String mnemonic, int map, int opcode, int flags, Imm imm, Factory f) {
        add(new Entry(mnemonic, map, opcode, ANY, -1, flags, imm, f));
    }

    /** A ModRM.reg group member. */
    public void addGroup(String mnemonic, int map, int opcode, int reg, int flags, Imm imm, Factory f) {
        add(new Entry(mnemonic, map, opcode, ANY, reg, flags | MODRM, imm, f));
    }

    /** An SSE-style form selected by mandatory prefix. */
    public void addPrefixed(String mnemonic, int map, int opcode, int prefix, int flags, Imm imm, Factory f) {
        add(new Entry(mnemonic, map, opcode, prefix, -1, flags, imm, f));
    }

    Slot slot(int map, int opcode) { return maps[map][opcode]; }

    /** Picks the entry for a decoded prefix set and ModRM.reg (reg -1 when the opcode has no ModRM). */
    Entry select(Slot s, int prefix, int reg) {
        Entry[] e = s.entries;
        int r = reg + 1;
        if (s.byPrefix) {
            int p = prefixIdx(prefix) * 9;
            if (reg >= 0 && e[p + r] != null) return e[p + r];
            if (e[p] != null) return e[p];
        }
        if (reg >= 0 && e[r] != null) return e[r];
        return e[0];
    }

    public List<Entry> entries() { return Collections.unmodifiableList(all); }
}
