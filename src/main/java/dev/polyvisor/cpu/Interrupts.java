package dev.polyvisor.cpu;

import dev.polyvisor.cpu.exec.Stack;

/**
 * Exception and interrupt delivery (SDM Vol. 3A, chapter 6): the real-mode IVT, protected-mode and
 * long-mode IDT gates, privilege and stack switches (TSS RSP0-2, IST1-7), error codes, and the
 * double-fault / triple-fault escalation (Table 6-5).
 */
public final class Interrupts {
    /** Delivery kinds: a fault/trap raised by an instruction, an external interrupt, INT n / INT3 / INTO. */
    public static final int EXCEPTION = 0, EXTERNAL = 1, SOFTWARE = 2;

    /** A fault while delivering #DF: the processor shuts down (SDM 6.15, interrupt 8). */
    public static final class TripleFault extends RuntimeException {
        public TripleFault(String msg) { super(msg, null, false, false); }
    }

    private Interrupts() {}

    public static void deliver(Cpu c, int vector, int errorCode, int kind) {
        if ((c.cr0 & Cpu.CR0_PE) == 0) {
            deliverReal(c, vector);
            return;
        }
        throw new TripleFault("protected-mode interrupt delivery is not implemented yet (vector "
                + Exceptions.name(vector) + " at RIP 0x" + Long.toHexString(c.rip) + ")");
    }

    /** Real mode: IVT entry at vector*4, push FLAGS, CS, IP; clear IF, TF, AC (SDM 20.1.4). */
    static void deliverReal(Cpu c, int vector) {
        long ent = vector * 4L;
        if (ent + 3 > c.idtLimit) throw new TripleFault("real-mode IVT limit exceeded for vector " + vector);
        int ip = c.mmu.read16(c.idtBase + ent);
        int cs = c.mmu.read16(c.idtBase + ent + 2);
        Stack.push(c, 2, c.getRflags());
        Stack.push(c, 2, c.segSel[Cpu.CS]);
        Stack.push(c, 2, c.rip);
        c.rflags &= ~(Flags.IF | Flags.TF | Flags.AC);
        c.setRealSegment(Cpu.CS, cs);
        c.rip = ip;
    }
}
