package dev.polyvisor.cpu.decode;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * Decodes one instruction at a linear address into a handler (SDM Vol. 2, chapter 2). Instruction
 * bytes come through the MMU's fetch path, so a #PF on an instruction byte is raised here, with CR2
 * at the byte that faulted. Encodings that are invalid become handlers that raise the fault when
 * executed, so that faults stay precise (a trace may end in garbage that never runs).
 */
public final class Decoder {
    private final OpcodeTable table;
    private final Decoded d = new Decoded();
    private Cpu cpu;
    private long pos;

    public Decoder(OpcodeTable table) { this.table = table; }

    private int next() {
        if (d.len >= 15) throw new TooLong();
        int b = cpu.mmu.fetch8(cpu.long64 ? pos : pos & 0xFFFF_FFFFL);
        pos++;
        d.len++;
        return b;
    }

    /** More than 15 bytes: #GP(0) (SDM Vol. 2, 2.3.11). */
    private static final class TooLong extends RuntimeException {
        TooLong() { super(null, null, false, false); }
    }

    /** Whether the instruction starts with UD2 (0F 0B); reads without consuming. */
    private boolean peekUd2(Cpu c) {
        long ip = d.ip;
        return c.mmu.fetch8(c.long64 ? ip : ip & 0xFFFF_FFFFL) == 0x0F && c.mmu.fetch8(c.long64 ? ip + 1 : (ip + 1) & 0xFFFF_FFFFL) == 0x0B;
    }

    /** Decodes the instruction at linear address {@code ip} for the CPU's current mode. */
    public Insn decode(Cpu c, long ip) {
        this.cpu = c;
        d.reset();
        d.ip = ip;
        d.mode64 = c.long64;
        pos = ip;
        try {
            return decode0(c);
        } catch (TooLong t) {
            return faulting(Exceptions.GP, 0, 15);
        }
    }

    /** KVM's forced-emulation prefix: UD2 followed by the ASCII bytes "kvm" (kvm-unit-tests lib/x86/desc.h KVM_FEP). */
    private static final int[] FEP = {0x0F, 0x0B, 'k', 'v', 'm'};

    /**
     * Whether the forced-emulation prefix is at the decode position. Only called after its first two bytes
     * (UD2) were seen, so a fetch fault on the rest is a fault of an instruction that would have been #UD
     * anyway; it is then taken as not the prefix.
     */
    private boolean forcedEmulationPrefix(Cpu c, long ip) {
        try {
            for (int i = 2; i < FEP.length; i++)
                if (c.mmu.fetch8(c.long64 ? ip + i : (ip + i) & 0xFFFF_FFFFL) != FEP[i]) return false;
            return true;
        } catch (dev.polyvisor.cpu.CpuFault f) {
            return false;
        }
    }

    /**
     * An instruction behind KVM's forced-emulation prefix, decoded as one step with it. KVM's #UD handler moves
     * RIP past the prefix and runs the instruction in its own emulator (arch/x86/kvm/x86.c handle_ud): so a
     * fault reports the instruction's RIP, not the prefix's, and while it runs {@link Cpu#forcedEmulation} is
     * set for the places where KVM's emulator does not do what the CPU does.
     */
    private static final class ForcedEmulation extends Insn {
        final Insn inner;
        ForcedEmulation(Insn inner) {
            this.inner = inner;
            this.len = FEP.length + inner.len;
            this.endsTrace = inner.endsTrace;
            this.entry = inner.entry;
        }
        @Override public void exec(Cpu c) {
            c.prevRip += FEP.length;
            c.forcedEmulation = true;
            try {
                inner.exec(c);
            } finally {
                c.forcedEmulation = false;
            }
        }
    }

    /** The length of KVM's forced-emulation prefix in front of {@code i}, or 0 when {@code i} has none. */
    public static int forcedEmulationPrefixLength(Insn i) { return i instanceof ForcedEmulation ? FEP.length : 0; }

    private Insn decode0(Cpu c) {
        int b;
        if (c.forceEmulationPrefix && peekUd2(c) && forcedEmulationPrefix(c, d.ip)) {
            long ip = d.ip + FEP.length;
            Insn inner = decode(c, c.long64 ? ip : ip & 0xFFFF_FFFFL);
            // KVM's emulator decodes what follows the prefix as an instruction of its own; a second prefix is #UD.
            return inner instanceof ForcedEmulation ? faulting(Exceptions.UD, -1, FEP.length) : new ForcedEmulation(inner);
        }
        // 1. Legacy prefixes, then REX (which counts only directly before the opcode).
        for (;;) {
            b = next();
            switch (b) {
                case 0x26 -> { d.segOverride = Cpu.ES; d.rex = 0; continue; }
                case 0x2E -> { d.segOverride = Cpu.CS; d.rex = 0; continue; }
                case 0x36 -> { d.segOverride = Cpu.SS; d.rex = 0; continue; }
                case 0x3E -> { d.segOverride = Cpu.DS; d.rex = 0; continue; }
                case 0x64 -> { d.segOverride = Cpu.FS; d.rex = 0; continue; }
                case 0x65 -> { d.segOverride = Cpu.GS; d.rex = 0; continue; }
                case 0x66 -> { d.opsizePrefix = true; d.rex = 0; continue; }
                case 0x67 -> { d.addrPrefix = true; d.rex = 0; continue; }
                case 0xF0 -> { d.lock = true; d.rex = 0; continue; }
                case 0xF2 -> { d.repne = true; d.lastRepPrefix = PF2; d.rex = 0; continue; }
                case 0xF3 -> { d.rep = true; d.lastRepPrefix = PF3; d.rex = 0; continue; }
                default -> { }
            }
            if (d.mode64 && (b & 0xF0) == 0x40) { d.rex = b; continue; }
            break;
        }
        d.rexW = (d.rex & 8) != 0;
        // 2. Opcode map.
        int map = MAP_1BYTE;
        if (b == 0x0F) {
            b = next();
            map = MAP_0F;
            if (b == 0x38) { map = MAP_0F38; b = next(); }
            else if (b == 0x3A) { map = MAP_0F3A; b = next(); }
        }
        d.map = map;
        d.opcode = b;
        // 3. Address size.
        if (d.mode64) d.addrSize = d.addrPrefix ? 4 : 8;
        else d.addrSize = (c.defAddrSize == 4) ^ d.addrPrefix ? 4 : 2;

        OpcodeTable.Slot slot = table.slot(map, b);
        if (slot == null) return faulting(Exceptions.UD, -1, d.len);
        // 4. ModRM and memory operand.
        if (slot.modrm) {
            d.hasModrm = true;
            int m = next();
            d.modrm = m;
            d.mod = m >>> 6;
            d.reg = ((m >>> 3) & 7) | ((d.rex & 4) << 1);
            d.rm = (m & 7) | ((d.rex & 1) << 3);
        }
        int prefix = d.lastRepPrefix != 0 ? d.lastRepPrefix : d.opsizePrefix ? P66 : NP;
        Entry e = table.select(slot, prefix, d.hasModrm ? d.reg & 7 : -1);
        if (e == null) {
            if (d.hasModrm && d.mod != 3) decodeMemory(c); // consume bytes so the length is right
            return faulting(Exceptions.UD, -1, d.len);
        }
        int f = e.flags();
        // 5. Operand size (SDM Vol. 2, 2.2.1.2 and Table 2-4; d64/f64 as in the opcode map notes).
        if (d.mode64 && e.has(NO64)) return faulting(Exceptions.UD, -1, d.len);
        int os;
        if (d.mode64) {
            // f64 (near branches): AMD, the emulated CPUID vendor, honours 66 like d64 (16-bit operand size,
            // RIP truncated to 16 bits: AMD APM Vol. 3, "Near Branches in 64-Bit Mode"); Intel ignores it.
            // Checked against the AMD host by the differential oracle.
            if (d.rexW) os = 8;
            else if (e.has(D64) || e.has(F64)) os = d.opsizePrefix ? 2 : 8;
            else os = d.opsizePrefix ? 2 : 4;
        } else {
            os = (c.defOpSize == 4) ^ d.opsizePrefix ? 4 : 2;
        }
        if (e.has(OP16)) os = 2;
        d.fullOpSize = os;
        d.opSize = e.has(BYTE) ? 1 : os;
        if (d.hasModrm) {
            if (d.mod != 3) {
                if (e.has(REG_ONLY)) return faultingAfterOperands(c, e);
                decodeMemory(c);
            } else if (e.has(MEM_ONLY)) {
                return faultingAfterOperands(c, e);
            }
        }
        // 6. Immediates.
        readImmediate(e.imm(), c);
        // 7. LOCK is valid only on the listed read-modify-write forms with a memory destination (SDM LOCK).
        if (d.lock && (!e.has(LOCKABLE) || !d.isMem())) return faulting(Exceptions.UD, -1, d.len);
        Insn insn = e.factory().make(d);
        if (insn == null) return faulting(Exceptions.UD, -1, d.len);
        insn.len = d.len;
        insn.entry = e;
        if (e.has(ENDS)) insn.endsTrace = true;
        return insn;
    }

    private Insn faultingAfterOperands(Cpu c, Entry e) {
        if (d.mod != 3) decodeMemory(c);
        readImmediate(e.imm(), c);
        return faulting(Exceptions.UD, -1, d.len);
    }

    private void readImmediate(Imm imm, Cpu c) {
        switch (imm) {
            case NONE -> { }
            case IB -> d.imm = (byte) next();
            case IW -> d.imm = (short) readN(2);
            case IZ -> d.imm = d.opSize == 2 ? (short) readN(2) : (int) readN(4);
            case IV -> d.imm = d.opSize == 8 ? readN(8) : d.opSize == 2 ? readN(2) : d.opSize == 1 ? readN(1) : readN(4);
            case IW_IB -> { d.imm = readN(2); d.imm2 = next(); }
            case AP -> { d.imm = readN(d.opSize == 2 ? 2 : 4); d.imm2 = readN(2); }
            case MOFFS -> d.imm = readN(d.addrSize);
            case GRP3 -> {
                if ((d.reg & 7) < 2) d.imm = d.opSize == 1 ? (byte) next() : d.opSize == 2 ? (short) readN(2) : (int) readN(4);
            }
        }
    }

    private long readN(int n) {
        long v = 0;
        for (int i = 0; i < n; i++) v |= (long) next() << (8 * i);
        return v;
    }

    /** ModRM/SIB/displacement to an {@link Ea} (SDM Vol. 2, Tables 2-1 to 2-3; 64-bit: 2.2.1). */
    private void decodeMemory(Cpu c) {
        int mod = d.mod, rm = d.modrm & 7;
        if (d.addrSize == 2) {
            long disp = switch (mod) {
                case 0 -> rm == 6 ? (short) readN(2) : 0;
                case 1 -> (byte) next();
                default -> (short) readN(2);
            };
            long mask = 0xFFFF;
            if (mod == 0 && rm == 6) { d.ea = new Ea.Abs(Decoded.defaultSeg(false, d.segOverride, false), disp, mask); return; }
            int base = switch (rm) { case 0, 1, 7 -> Cpu.RBX; case 2, 3, 6 -> Cpu.RBP; case 4 -> Cpu.RSI; default -> Cpu.RDI; };
            int index = switch (rm) { case 0, 2 -> Cpu.RSI; case 1, 3 -> Cpu.RDI; default -> -1; };
            int seg = Decoded.defaultSeg(false, d.segOverride, base == Cpu.RBP);
            d.ea = index < 0 ? new Ea.Base(seg, base, disp, mask) : new Ea.BaseIndex(seg, base, index, 0, disp, mask);
            return;
        }
        long mask = d.addrSize == 4 ? 0xFFFF_FFFFL : -1L;
        int base = -1, index = -1, scale = 0;
        boolean rip = false;
        if (rm == 4) {
            int sib = next();
            scale = sib >>> 6;
            index = ((sib >>> 3) & 7) | ((d.rex & 2) << 2);
            if (index == 4) index = -1; // no index (REX.X makes it r12)
            int sb = sib & 7;
            if (sb == 5 && mod == 0) base = -1;
            else base = sb | ((d.rex & 1) << 3);
        } else if (rm == 5 && mod == 0) {
            rip = d.mode64;
        } else {
            base = d.rm;
        }
        long disp = switch (mod) {
            case 0 -> (rm == 5 || (rm == 4 && base == -1)) ? (int) readN(4) : 0;
            case 1 -> (byte) next();
            default -> (int) readN(4);
        };
        int seg = Decoded.defaultSeg(d.mode64, d.segOverride, base == Cpu.RSP || base == Cpu.RBP);
        if (rip) d.ea = new Ea.Rip(seg, disp, mask);
        else if (base < 0 && index < 0) d.ea = new Ea.Abs(seg, disp, mask);
        else if (base < 0) d.ea = new Ea.Index(seg, index, scale, disp, mask);
        else if (index < 0) d.ea = new Ea.Base(seg, base, disp, mask);
        else d.ea = new Ea.BaseIndex(seg, base, index, scale, disp, mask);
    }

    /** A handler that raises {@code vector} when executed. */
    public static Insn faulting(int vector, int errorCode, int len) {
        Insn i = new Insn() {
            @Override public void exec(Cpu c) { throw c.fault(vector, errorCode); }
        };
        i.len = Math.max(1, len);
        i.endsTrace = true;
        return i;
    }
}
