package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.Decoded;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.mmu.Mmu;
import dev.polyvisor.memory.GuestMemory;

import java.lang.foreign.MemorySegment;

import static dev.polyvisor.cpu.decode.OpcodeTable.*;

/**
 * String instructions MOVS, CMPS, STOS, LODS, SCAS (SDM Vol. 1, 7.3.9; Vol. 2 "REP/REPE/REPZ/REPNE/REPNZ").
 * The source is seg:rSI (DS or the override), the destination ES:rDI (no override); the pointer and
 * count registers are SI/DI/CX, ESI/EDI/ECX or RSI/RDI/RCX by address size, stepped by DF.
 *
 * <p>REP forms end their trace and run in bounded chunks: when the count is not exhausted after a
 * chunk, RIP is left at the instruction ({@code c.rip = c.prevRip}) so the run loop can take
 * interrupts between chunks and simply re-enters the instruction. Registers are updated after every
 * element (or bulk block), so a fault mid-way leaves RCX/RSI/RDI describing exactly the elements done,
 * as the SDM's interruption semantics require. Forward REP MOVS/STOS between RAM pages are done in
 * bulk, a page at a time, on the physical addresses the MMU returns.
 */
public final class StringOps {
    static final int MOVS = 0, CMPS = 1, STOS = 2, LODS = 3, SCAS = 4;
    /** Elements per chunk on the element-by-element path, and bytes per chunk on the bulk path. */
    static final int CHUNK_ELEMENTS = 4096, CHUNK_BYTES = 64 * 4096;

    private StringOps() {}

    public static void register(OpcodeTable t) {
        reg(t, "MOVS", MOVS, 0xA4);
        reg(t, "CMPS", CMPS, 0xA6);
        reg(t, "STOS", STOS, 0xAA);
        reg(t, "LODS", LODS, 0xAC);
        reg(t, "SCAS", SCAS, 0xAE);
    }

    private static void reg(OpcodeTable t, String n, int op, int opcode) {
        t.add(n + "B", MAP_1BYTE, opcode, BYTE | ORACLE, Imm.NONE, d -> make(op, d));
        t.add(n + "W/D/Q", MAP_1BYTE, opcode + 1, ORACLE, Imm.NONE, d -> make(op, d));
    }

    /** rep: 0 none, 1 REP/REPE (F3), 2 REPNE (F2); for MOVS/STOS/LODS either prefix means REP. */
    private static Insn make(int op, Decoded d) {
        int rep = d.lastRepPrefix == PF3 ? 1 : d.lastRepPrefix == PF2 ? 2 : 0;
        StringInsn i = new StringInsn(op, d.opSize, d.addrSize, IntegerOps.dataSeg(d), d.mode64 ? Cpu.SEG_NONE : Cpu.ES, rep);
        if (rep != 0) i.endsTrace = true; // it may leave RIP at itself to run another chunk
        return i;
    }

    static final class StringInsn extends Insn {
        final int op, size, addrSize, srcSeg, dstSeg, rep;
        final long amask;
        StringInsn(int op, int size, int addrSize, int srcSeg, int dstSeg, int rep) {
            this.op = op; this.size = size; this.addrSize = addrSize; this.srcSeg = srcSeg; this.dstSeg = dstSeg; this.rep = rep;
            this.amask = Regs.mask(addrSize);
        }

        @Override public void exec(Cpu c) {
            if (rep == 0) { one(c); return; }
            long cnt = Regs.get(c, Cpu.RCX, addrSize);
            if (cnt == 0) return;
            if ((c.rflags & Flags.DF) == 0 && (op == MOVS || op == STOS)) { bulk(c, cnt); return; }
            int budget = CHUNK_ELEMENTS;
            boolean cmp = op == CMPS || op == SCAS;
            while (cnt != 0) {
                one(c);
                cnt = (cnt - 1) & amask;
                Regs.set(c, Cpu.RCX, addrSize, cnt);
                if (cmp && Flags.zf(c) != (rep == 1)) return; // REPE stops on ZF=0, REPNE on ZF=1
                if (--budget == 0) break;
            }
            if (cnt != 0) c.rip = c.prevRip;
        }

        private long step(Cpu c) { return (c.rflags & Flags.DF) == 0 ? size : -size; }

        private long src(Cpu c) { return c.linear(srcSeg, c.r[Cpu.RSI] & amask); }

        private long dst(Cpu c) { return c.linear(dstSeg, c.r[Cpu.RDI] & amask); }

        private void advance(Cpu c, int reg, long delta) { Regs.set(c, reg, addrSize, c.r[reg] + delta); }

        /** One element; registers change only after its memory accesses succeeded. */
        private void one(Cpu c) {
            long st = step(c);
            switch (op) {
                case MOVS -> {
                    long v = c.mmu.read(src(c), size);
                    c.mmu.write(dst(c), size, v);
                    advance(c, Cpu.RSI, st);
                    advance(c, Cpu.RDI, st);
                }
                case CMPS -> {
                    long a = c.mmu.read(src(c), size), b = c.mmu.read(dst(c), size);
                    Alu.setSub(c, size, a, b);
                    advance(c, Cpu.RSI, st);
                    advance(c, Cpu.RDI, st);
                }
                case STOS -> {
                    c.mmu.write(dst(c), size, c.r[Cpu.RAX]);
                    advance(c, Cpu.RDI, st);
                }
                case LODS -> {
                    Regs.set(c, Cpu.RAX, size, c.mmu.read(src(c), size));
                    advance(c, Cpu.RSI, st);
                }
                default -> { // SCAS
                    long b = c.mmu.read(dst(c), size);
                    Alu.setSub(c, size, Regs.get(c, Cpu.RAX, size), b);
                    advance(c, Cpu.RDI, st);
                }
            }
        }

        /**
         * Forward REP MOVS/STOS: per step, the largest run of whole elements that stays inside one page of
         * the source and of the destination and does not wrap the address size; RAM runs are copied in bulk,
         * anything else (MMIO, page-straddling element) goes element by element through the MMU.
         */
        private void bulk(Cpu c, long cnt) {
            GuestMemory mem = c.memory;
            long done = 0;
            while (cnt != 0 && done < CHUNK_BYTES) {
                long di = c.r[Cpu.RDI] & amask, si = c.r[Cpu.RSI] & amask;
                long dla = c.linear(dstSeg, di);
                long room = 0x1000 - (dla & 0xFFF);
                if (addrSize < 8) room = Math.min(room, amask + 1 - di);
                long sla = 0;
                if (op == MOVS) {
                    sla = c.linear(srcSeg, si);
                    room = Math.min(room, 0x1000 - (sla & 0xFFF));
                    if (addrSize < 8) room = Math.min(room, amask + 1 - si);
                }
                long n = Math.min(cnt, room / size);
                if (n < 2) {
                    one(c);
                    cnt = (cnt - 1) & amask;
                    Regs.set(c, Cpu.RCX, addrSize, cnt);
                    done += size;
                    continue;
                }
                long bytes = n * size;
                long spa = op == MOVS ? c.mmu.translate(sla, Mmu.READ) : 0;
                long dpa = c.mmu.translate(dla, Mmu.WRITE);
                boolean ram = mem.isRamPage(dpa) && (op != MOVS || mem.isRamPage(spa));
                long dist = dpa - spa;
                if (!ram || (op == MOVS && dist > 0 && dist < bytes && dist < size)) {
                    one(c); // MMIO or a tight overlap: exact element semantics
                    cnt = (cnt - 1) & amask;
                    Regs.set(c, Cpu.RCX, addrSize, cnt);
                    done += size;
                    continue;
                }
                if (c.mmu.codePages().written(dpa)) c.traceExit = true; // as Mmu.codeWritten
                if (op == MOVS) copyForward(mem.ram, spa, dpa, bytes);
                else fill(mem, dpa, n, c.r[Cpu.RAX]);
                if (op == MOVS) advance(c, Cpu.RSI, bytes);
                advance(c, Cpu.RDI, bytes);
                cnt = (cnt - n) & amask;
                Regs.set(c, Cpu.RCX, addrSize, cnt);
                done += bytes;
            }
            if (cnt != 0) c.rip = c.prevRip;
        }

        /**
         * Copies as the element-by-element forward loop would: when the destination starts inside the
         * source run (0 < dst - src < bytes) the copy replicates, so it proceeds in blocks of dst - src.
         */
        private static void copyForward(MemorySegment ram, long spa, long dpa, long bytes) {
            long dist = dpa - spa;
            if (dist <= 0 || dist >= bytes) { MemorySegment.copy(ram, spa, ram, dpa, bytes); return; }
            for (long off = 0; off < bytes; off += dist)
                MemorySegment.copy(ram, spa + off, ram, dpa + off, Math.min(dist, bytes - off));
        }

        private void fill(GuestMemory mem, long pa, long n, long v) {
            switch (size) {
                case 1 -> mem.ram.asSlice(pa, n).fill((byte) v);
                case 2 -> { for (long i = 0; i < n; i++) mem.st16(pa + 2 * i, (int) v); }
                case 4 -> { for (long i = 0; i < n; i++) mem.st32(pa + 4 * i, (int) v); }
                default -> { for (long i = 0; i < n; i++) mem.st64(pa + 8 * i, v); }
            }
        }
    }
}
