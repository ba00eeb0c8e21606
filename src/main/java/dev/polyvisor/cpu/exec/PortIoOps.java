package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.Segments;
import dev.polyvisor.cpu.decode.Decoded;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.mmu.Mmu;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * Port I/O (SDM Vol. 1, chapter 19; Vol. 2 "IN", "OUT", "INS", "OUTS"): the IOPL / TSS I/O-bitmap
 * permission check, then a synchronous {@link dev.polyvisor.cpu.Platform#portIn}/{@code portOut}.
 */
public final class PortIoOps {
    private PortIoOps() {}

    public static void register(OpcodeTable t) {
        // Port I/O (SDM Vol. 1, 19): E4-E7 immediate port, EC-EF DX, 6C-6F string forms.
        t.add("IN AL, imm8", MAP_1BYTE, 0xE4, BYTE | ENDS | ORACLE, Imm.IB, d -> new In(portImm(d), 1));
        t.add("IN eAX, imm8", MAP_1BYTE, 0xE5, ENDS | ORACLE, Imm.IB, d -> new In(portImm(d), ioSize(d)));
        t.add("OUT imm8, AL", MAP_1BYTE, 0xE6, BYTE | ENDS | ORACLE, Imm.IB, d -> new Out(portImm(d), 1));
        t.add("OUT imm8, eAX", MAP_1BYTE, 0xE7, ENDS | ORACLE, Imm.IB, d -> new Out(portImm(d), ioSize(d)));
        t.add("IN AL, DX", MAP_1BYTE, 0xEC, BYTE | ENDS | ORACLE, Imm.NONE, d -> new In(-1, 1));
        t.add("IN eAX, DX", MAP_1BYTE, 0xED, ENDS | ORACLE, Imm.NONE, d -> new In(-1, ioSize(d)));
        t.add("OUT DX, AL", MAP_1BYTE, 0xEE, BYTE | ENDS | ORACLE, Imm.NONE, d -> new Out(-1, 1));
        t.add("OUT DX, eAX", MAP_1BYTE, 0xEF, ENDS | ORACLE, Imm.NONE, d -> new Out(-1, ioSize(d)));
        t.add("INSB", MAP_1BYTE, 0x6C, BYTE | ENDS | ORACLE, Imm.NONE, d -> new Ins(1, d));
        t.add("INSW/D", MAP_1BYTE, 0x6D, ENDS | ORACLE, Imm.NONE, d -> new Ins(ioSize(d), d));
        t.add("OUTSB", MAP_1BYTE, 0x6E, BYTE | ENDS | ORACLE, Imm.NONE, d -> new Outs(1, d));
        t.add("OUTSW/D", MAP_1BYTE, 0x6F, ENDS | ORACLE, Imm.NONE, d -> new Outs(ioSize(d), d));
    }

    private static int portImm(Decoded d) { return (int) d.imm & 0xFF; }

    /** Port I/O is at most 32 bits wide; REX.W is ignored. */
    private static int ioSize(Decoded d) { return Math.min(d.opSize, 4); }

    /**
     * The I/O permission check (SDM Vol. 1, 19.5): in protected mode with CPL > IOPL, and always in
     * virtual-8086 mode, every bit for the accessed ports in the TSS I/O bitmap must be clear.
     */
    public static void checkIo(Cpu c, int port, int size) {
        if ((c.cr0 & Cpu.CR0_PE) == 0) return;
        if (!SystemOps.v86(c) && c.cpl <= SystemOps.iopl(c)) return;
        if (c.platform.portOpenToAllPrivilegeLevels(port)) return; // a hypervisor backdoor (VMware's 0x5658)
        int attr = c.segAttr[Cpu.TR];
        int type = attr & 0xF;
        if ((attr & Segments.UNUSABLE) != 0 || (type != Segments.T_TSS_AVAIL && type != Segments.T_TSS_BUSY)
                || c.segLimit[Cpu.TR] < 0x67) throw c.gp0();
        int mapBase = (int) Segments.sysRead(c, c.segBase[Cpu.TR] + 0x66, 2);
        long off = mapBase + (port >>> 3);
        if (off + 1 > c.segLimit[Cpu.TR]) throw c.gp0();
        int bits = (int) Segments.sysRead(c, c.segBase[Cpu.TR] + off, 2);
        if ((bits & (((1 << size) - 1) << (port & 7))) != 0) throw c.gp0();
    }

    static final class In extends Insn {
        final int port, size;
        In(int port, int size) { this.port = port; this.size = size; }
        @Override public void exec(Cpu c) {
            int p = port >= 0 ? port : (int) c.r[Cpu.RDX] & 0xFFFF;
            checkIo(c, p, size);
            Regs.set(c, Cpu.RAX, size, c.platform.portIn(p, size));
        }
    }

    static final class Out extends Insn {
        final int port, size;
        Out(int port, int size) { this.port = port; this.size = size; }
        @Override public void exec(Cpu c) {
            int p = port >= 0 ? port : (int) c.r[Cpu.RDX] & 0xFFFF;
            checkIo(c, p, size);
            c.platform.portOut(p, size, Regs.get(c, Cpu.RAX, size));
        }
    }

    /** The count register and index updates of string I/O honour the address size. */
    abstract static class StringIo extends Insn {
        final int size, addrSize, seg;
        final boolean rep;
        StringIo(int size, Decoded d, int seg) {
            this.size = size;
            this.addrSize = d.addrSize;
            this.rep = d.rep || d.repne;
            this.seg = seg;
        }

        @Override public final void exec(Cpu c) {
            int port = (int) c.r[Cpu.RDX] & 0xFFFF;
            // The I/O permission check comes first, even for REP with a zero count (#GP(0) on the AMD host).
            checkIo(c, port, size);
            if (rep && Regs.get(c, Cpu.RCX, addrSize) == 0) return;
            long step = (c.rflags & Flags.DF) != 0 ? -size : size;
            do {
                one(c, port, step);
                if (rep) Regs.set(c, Cpu.RCX, addrSize, Regs.get(c, Cpu.RCX, addrSize) - 1);
            } while (rep && Regs.get(c, Cpu.RCX, addrSize) != 0);
        }

        abstract void one(Cpu c, int port, long step);
    }

    /** INS: ES:rDI (no override); the destination is checked before the port is read. */
    static final class Ins extends StringIo {
        Ins(int size, Decoded d) { super(size, d, d.mode64 ? Cpu.SEG_NONE : Cpu.ES); }
        @Override void one(Cpu c, int port, long step) {
            long di = Regs.get(c, Cpu.RDI, addrSize);
            long la = c.linear(seg, di);
            c.mmu.translate(la, Mmu.WRITE);
            if (((la & 0xFFF) + size) > 0x1000) c.mmu.translate(la + size - 1, Mmu.WRITE);
            c.mmu.write(la, size, c.platform.portIn(port, size));
            Regs.set(c, Cpu.RDI, addrSize, di + step);
        }
    }

    /** OUTS: DS:rSI, segment override allowed (only FS/GS count in 64-bit mode). */
    static final class Outs extends StringIo {
        Outs(int size, Decoded d) { super(size, d, outsSeg(d)); }
        static int outsSeg(Decoded d) {
            if (d.mode64) return d.segOverride == Cpu.FS || d.segOverride == Cpu.GS ? d.segOverride : Cpu.SEG_NONE;
            return d.segOverride >= 0 ? d.segOverride : Cpu.DS;
        }
        @Override void one(Cpu c, int port, long step) {
            long si = Regs.get(c, Cpu.RSI, addrSize);
            long v = c.mmu.read(c.linear(seg, si), size);
            c.platform.portOut(port, size, v);
            Regs.set(c, Cpu.RSI, addrSize, si + step);
        }
    }}
