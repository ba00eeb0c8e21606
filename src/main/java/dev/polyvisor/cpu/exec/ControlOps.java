package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuFault;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.Ea;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.mmu.Mmu;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * Near control transfer and the stack (SDM Vol. 1, 6.2-6.5 and 7.3.8): JMP, Jcc, CALL, RET, LOOP,
 * JrCXZ, PUSH/POP, PUSHA/POPA, ENTER/LEAVE, and the hint-NOP space. In 64-bit mode near branches use
 * a 64-bit operand size, or 16 bits with a 66 prefix (AMD's behaviour, the emulated vendor; Intel ignores
 * 66 there, opcode-map note f64: see Decoder); RIP is truncated to the operand size (16-bit code wraps IP
 * at 64 KiB), and a non-canonical 64-bit target raises #GP(0) at the branch.
 */
public final class ControlOps {
    private ControlOps() {}

    public static void register(OpcodeTable t) {
        t.add("JMP rel8", MAP_1BYTE, 0xEB, ENDS | F64 | ORACLE, Imm.IB, d -> new JmpRel(d.imm, d.opSize));
        t.add("JMP rel16/32", MAP_1BYTE, 0xE9, ENDS | F64 | ORACLE, Imm.IZ, d -> new JmpRel(d.imm, d.opSize));
        t.add("CALL rel16/32", MAP_1BYTE, 0xE8, ENDS | F64 | ORACLE, Imm.IZ, d -> new CallRel(d.imm, d.opSize));
        for (int cc = 0; cc < 16; cc++) {
            final int k = cc;
            t.add("Jcc rel8", MAP_1BYTE, 0x70 + cc, F64 | ORACLE, Imm.IB, d -> jcc(k, d));
            t.add("Jcc rel16/32", MAP_0F, 0x80 + cc, F64 | ORACLE, Imm.IZ, d -> jcc(k, d));
        }
        t.addGroup("CALL Ev", MAP_1BYTE, 0xFF, 2, ENDS | F64 | ORACLE, Imm.NONE, d -> new CallInd(d.opSize, d.rm, d.ea));
        t.addGroup("JMP Ev", MAP_1BYTE, 0xFF, 4, ENDS | F64 | ORACLE, Imm.NONE, d -> new JmpInd(d.opSize, d.rm, d.ea));
        t.add("RET", MAP_1BYTE, 0xC3, ENDS | F64 | ORACLE, Imm.NONE, d -> new Ret(d.opSize, 0));
        t.add("RET imm16", MAP_1BYTE, 0xC2, ENDS | F64 | ORACLE, Imm.IW, d -> new Ret(d.opSize, d.imm & 0xFFFF));
        for (int k = 0; k < 4; k++) {
            final int kind = k;
            String n = switch (k) { case 0 -> "LOOPNE"; case 1 -> "LOOPE"; case 2 -> "LOOP"; default -> "JrCXZ"; };
            t.add(n + " rel8", MAP_1BYTE, 0xE0 + k, ENDS | F64 | ORACLE, Imm.IB, d -> new Loop(kind, d.imm, d.opSize, d.addrSize));
        }

        for (int r = 0; r < 8; r++) {
            final int reg = r;
            t.add("PUSH r", MAP_1BYTE, 0x50 + r, D64 | ORACLE, Imm.NONE, d -> new PushReg(d.opSize, reg | IntegerOps.rexB(d)));
            t.add("POP r", MAP_1BYTE, 0x58 + r, D64 | ORACLE, Imm.NONE, d -> new PopReg(d.opSize, reg | IntegerOps.rexB(d)));
        }
        t.add("PUSH Iz", MAP_1BYTE, 0x68, D64 | ORACLE, Imm.IZ, d -> new PushImm(d.opSize, d.imm));
        t.add("PUSH Ib", MAP_1BYTE, 0x6A, D64 | ORACLE, Imm.IB, d -> new PushImm(d.opSize, d.imm));
        t.addGroup("PUSH Ev", MAP_1BYTE, 0xFF, 6, D64 | ORACLE, Imm.NONE, d -> new PushRm(d.opSize, d.rm, d.ea));
        t.addGroup("POP Ev", MAP_1BYTE, 0x8F, 0, D64 | ORACLE, Imm.NONE, d -> new PopRm(d.opSize, d.rm, d.ea));
        t.add("PUSHA", MAP_1BYTE, 0x60, NO64 | ORACLE, Imm.NONE, d -> new Pusha(d.opSize));
        t.add("POPA", MAP_1BYTE, 0x61, NO64 | ORACLE, Imm.NONE, d -> new Popa(d.opSize));
        t.add("ENTER Iw,Ib", MAP_1BYTE, 0xC8, D64 | ORACLE, Imm.IW_IB, d -> new Enter(d.opSize, (int) d.imm & 0xFFFF, (int) d.imm2 & 0x1F));
        t.add("LEAVE", MAP_1BYTE, 0xC9, D64 | ORACLE, Imm.NONE, d -> new Leave(d.opSize));

        // Hint NOPs (SDM "NOP", Table A-3 0F 18-1F; 0F 0D PREFETCHW): ModRM decoded, memory never accessed.
        // 0F 1E covers ENDBR64/ENDBR32 (F3 0F 1E FA/FB), NOPs while CET is not enabled.
        t.add("PREFETCHW/NOP Mb", MAP_0F, 0x0D, MODRM | MEM_ONLY | ORACLE, Imm.NONE, d -> new IntegerOps.Nop());
        for (int op = 0x18; op <= 0x1F; op++)
            t.add("NOP Ev (hint)", MAP_0F, op, MODRM | ORACLE, Imm.NONE, d -> new IntegerOps.Nop());
    }

    static long ipMask(int opSize) { return opSize == 2 ? 0xFFFF : opSize == 4 ? 0xFFFF_FFFFL : -1L; }

    /** Sets RIP to a near branch target, #GP(0) if it is not canonical in 64-bit mode. */
    static void branch(Cpu c, long target) {
        if (c.long64 && !Alu.canonical(target)) throw c.gp0();
        c.rip = target;
    }

    static final class JmpRel extends Insn {
        final long rel, mask;
        JmpRel(long rel, int opSize) { this.rel = rel; this.mask = ipMask(opSize); }
        @Override public void exec(Cpu c) { branch(c, (c.rip + rel) & mask); }
        // Only with a 64-bit operand size (64-bit mode: CS base is 0, the target is canonical when it
        // lies in the page being executed, which is all the trace builder accepts).
        @Override public long directTarget(long next) { return mask == -1L ? next + rel : NO_TARGET; }
    }

    /**
     * Jcc does not end a trace: decoding continues past it so a not-taken branch costs no trace
     * switch (kernel code is dense with them). When taken it sets {@link Cpu#traceExit}, which makes
     * the run loop leave the trace after it. JZ/JNZ, the most frequent conditions, get a handler
     * that tests ZF directly.
     */
    private static Insn jcc(int cc, dev.polyvisor.cpu.decode.Decoded d) {
        return cc == 4 || cc == 5 ? new JccZ(cc == 4, d.imm, d.opSize) : new Jcc(cc, d.imm, d.opSize);
    }

    static final class JccZ extends Insn {
        final boolean ifZero;
        final long rel, mask;
        JccZ(boolean ifZero, long rel, int opSize) { this.ifZero = ifZero; this.rel = rel; this.mask = ipMask(opSize); }
        @Override public void exec(Cpu c) { if (Flags.zf(c) == ifZero) { branch(c, (c.rip + rel) & mask); c.traceExit = true; } }
    }

    static final class Jcc extends Insn {
        final int cc;
        final long rel, mask;
        Jcc(int cc, long rel, int opSize) { this.cc = cc; this.rel = rel; this.mask = ipMask(opSize); }
        @Override public void exec(Cpu c) { if (Flags.cond(c, cc)) { branch(c, (c.rip + rel) & mask); c.traceExit = true; } }
    }

    static final class CallRel extends Insn {
        final int size;
        final long rel, mask;
        CallRel(long rel, int opSize) { this.size = opSize; this.rel = rel; this.mask = ipMask(opSize); }
        @Override public void exec(Cpu c) {
            long target = (c.rip + rel) & mask;
            probePush(c, size);
            if (c.long64 && !Alu.canonical(target)) throw c.gp0();
            Stack.push(c, size, c.rip);
            c.rip = target;
        }
    }

    static final class JmpInd extends Insn {
        final int size, rm;
        final Ea ea;
        JmpInd(int size, int rm, Ea ea) { this.size = size; this.rm = rm; this.ea = ea; }
        @Override public void exec(Cpu c) { branch(c, Alu.readRm(c, rm, ea, size)); }
    }

    /**
     * Checks, without writing, that a push of {@code size} bytes in 64-bit mode would succeed (#SS(0) for a
     * non-canonical address, #PF): a near CALL's push faults before its target's #GP(0), as on the AMD host.
     */
    static void probePush(Cpu c, int size) {
        if (!c.long64) return;
        long la = c.stackCanonical(c.r[Cpu.RSP] - size);
        c.mmu.translate(la, Mmu.WRITE);
        if ((la & 0xFFF) + size > 0x1000) c.mmu.translate((la | 0xFFF) + 1, Mmu.WRITE);
    }

    static final class CallInd extends Insn {
        final int size, rm;
        final Ea ea;
        CallInd(int size, int rm, Ea ea) { this.size = size; this.rm = rm; this.ea = ea; }
        @Override public void exec(Cpu c) {
            long target = Alu.readRm(c, rm, ea, size);
            probePush(c, size);
            if (c.long64 && !Alu.canonical(target)) throw c.gp0();
            Stack.push(c, size, c.rip);
            c.rip = target;
        }
    }

    /** RET / RET imm16: pop the return address, then release imm16 bytes of arguments. */
    static final class Ret extends Insn {
        final int size;
        final long release;
        Ret(int size, long release) { this.size = size; this.release = release; }
        @Override public void exec(Cpu c) {
            long target = Stack.peek(c, size, 0);
            if (c.long64 && !Alu.canonical(target)) throw c.gp0();
            Stack.setSp(c, c.r[Cpu.RSP] + size + release);
            c.rip = target;
        }
    }

    /**
     * E0-E3: LOOPNE, LOOPE, LOOP decrement the count register (CX/ECX/RCX by address size) and branch
     * while it is non-zero (and ZF matches); JCXZ/JECXZ/JRCXZ branch when it is zero.
     */
    static final class Loop extends Insn {
        final int kind, addrSize;
        final long rel, mask;
        Loop(int kind, long rel, int opSize, int addrSize) { this.kind = kind; this.rel = rel; this.mask = ipMask(opSize); this.addrSize = addrSize; }
        @Override public void exec(Cpu c) {
            long cnt = Regs.get(c, Cpu.RCX, addrSize);
            boolean take;
            if (kind == 3) {
                take = cnt == 0;
            } else {
                long target = (c.rip + rel) & mask;
                if (c.long64 && !Alu.canonical(target)) throw c.gp0(); // before RCX changes
                cnt = (cnt - 1) & Regs.mask(addrSize);
                Regs.set(c, Cpu.RCX, addrSize, cnt);
                take = cnt != 0 && switch (kind) { case 0 -> !Flags.zf(c); case 1 -> Flags.zf(c); default -> true; };
            }
            if (take) branch(c, (c.rip + rel) & mask);
        }
    }

    // ------------------------------------------------------------------ stack

    static final class PushReg extends Insn {
        final int size, reg;
        PushReg(int size, int reg) { this.size = size; this.reg = reg; }
        @Override public void exec(Cpu c) { Stack.push(c, size, c.r[reg]); } // PUSH rSP pushes the old value
    }

    static final class PopReg extends Insn {
        final int size, reg;
        PopReg(int size, int reg) { this.size = size; this.reg = reg; }
        @Override public void exec(Cpu c) { Regs.set(c, reg, size, Stack.pop(c, size)); } // POP rSP: the popped value wins
    }

    static final class PushImm extends Insn {
        final int size;
        final long imm;
        PushImm(int size, long imm) { this.size = size; this.imm = imm; }
        @Override public void exec(Cpu c) { Stack.push(c, size, imm); }
    }

    static final class PushRm extends Insn {
        final int size, rm;
        final Ea ea;
        PushRm(int size, int rm, Ea ea) { this.size = size; this.rm = rm; this.ea = ea; }
        @Override public void exec(Cpu c) { Stack.push(c, size, Alu.readRm(c, rm, ea, size)); }
    }

    /** POP r/m: a memory destination's address is computed with rSP already incremented (SDM POP). */
    static final class PopRm extends Insn {
        final int size, rm;
        final Ea ea;
        PopRm(int size, int rm, Ea ea) { this.size = size; this.rm = rm; this.ea = ea; }
        @Override public void exec(Cpu c) {
            long v = Stack.peek(c, size, 0);
            long oldSp = c.r[Cpu.RSP];
            Stack.setSp(c, oldSp + size);
            if (ea == null) { Regs.set(c, rm, size, v); return; }
            try {
                c.mmu.write(ea.lin(c), size, v);
            } catch (CpuFault f) {
                c.r[Cpu.RSP] = oldSp;
                throw f;
            }
        }
    }

    /** PUSHA/PUSHAD: AX CX DX BX original-SP BP SI DI. */
    static final class Pusha extends Insn {
        final int size;
        Pusha(int size) { this.size = size; }
        @Override public void exec(Cpu c) {
            long sp = c.r[Cpu.RSP];
            try {
                for (int r = 0; r < 8; r++) Stack.push(c, size, r == Cpu.RSP ? sp : c.r[r]);
            } catch (CpuFault f) {
                c.r[Cpu.RSP] = sp;
                throw f;
            }
        }
    }

    /** POPA/POPAD: DI SI BP (SP skipped) BX DX CX AX. All values are read before any register changes. */
    static final class Popa extends Insn {
        final int size;
        Popa(int size) { this.size = size; }
        @Override public void exec(Cpu c) {
            long v0 = Stack.peek(c, size, 0), v1 = Stack.peek(c, size, size), v2 = Stack.peek(c, size, 2L * size),
                    v4 = Stack.peek(c, size, 4L * size), v5 = Stack.peek(c, size, 5L * size),
                    v6 = Stack.peek(c, size, 6L * size), v7 = Stack.peek(c, size, 7L * size);
            Regs.set(c, Cpu.RDI, size, v0);
            Regs.set(c, Cpu.RSI, size, v1);
            Regs.set(c, Cpu.RBP, size, v2);
            Regs.set(c, Cpu.RBX, size, v4);
            Regs.set(c, Cpu.RDX, size, v5);
            Regs.set(c, Cpu.RCX, size, v6);
            Regs.set(c, Cpu.RAX, size, v7);
            Stack.setSp(c, c.r[Cpu.RSP] + 8L * size);
        }
    }

    /** ENTER alloc, level (SDM ENTER): push rBP, copy level-1 frame pointers, push the new frame pointer. */
    static final class Enter extends Insn {
        final int size, alloc, level;
        Enter(int size, int alloc, int level) { this.size = size; this.alloc = alloc; this.level = level; }
        @Override public void exec(Cpu c) {
            long sp0 = c.r[Cpu.RSP], bp0 = c.r[Cpu.RBP];
            try {
                Stack.push(c, size, bp0);
                long frame = c.r[Cpu.RSP];
                if (level > 0) {
                    long bp = bp0;
                    long smask = Regs.mask(c.stackSize);
                    int seg = c.long64 ? Cpu.SEG_NONE_SS : Cpu.SS;
                    for (int i = 1; i < level; i++) {
                        bp -= size;
                        // Outside 64-bit mode the copied frame pointers are SS references: limit-checked (#SS).
                        long off = c.long64 ? bp & smask : Stack.withinLimit(c, bp & smask, size);
                        Stack.push(c, size, c.mmu.read(c.linear(seg, off), size));
                    }
                    Stack.push(c, size, frame);
                }
                long fin = c.r[Cpu.RSP] - alloc;
                // SDM ENTER, #PF: "a write using the final value of the stack pointer ... would cause a page
                // fault" -- the allocated frame's top is probed (the AMD host faults there too).
                if (c.long64) c.mmu.translate(c.stackCanonical(fin), Mmu.WRITE);
                else c.mmu.translate(c.linear(Cpu.SS, fin & Regs.mask(c.stackSize)), Mmu.WRITE);
                Stack.setSp(c, fin);
                Regs.set(c, Cpu.RBP, size, frame);
            } catch (CpuFault f) {
                c.r[Cpu.RSP] = sp0;
                c.r[Cpu.RBP] = bp0;
                throw f;
            }
        }
    }

    /** LEAVE: rSP = rBP (stack-size wide), then pop rBP. */
    static final class Leave extends Insn {
        final int size;
        Leave(int size) { this.size = size; }
        @Override public void exec(Cpu c) {
            long sp0 = c.r[Cpu.RSP];
            Stack.setSp(c, c.r[Cpu.RBP]);
            long v;
            try {
                v = Stack.pop(c, size);
            } catch (CpuFault f) {
                c.r[Cpu.RSP] = sp0;
                throw f;
            }
            Regs.set(c, Cpu.RBP, size, v);
        }
    }
}
