package dev.polyvisor.devices;

/**
 * One Intel 8259A programmable interrupt controller (Intel 8259A datasheet, order 231468). Two of them
 * cascade in a PC; {@link DualPic} wires them, the ELCR and the INTA cycle.
 *
 * <p>Registers: IRR (requests latched), ISR (in service), IMR (masked). Port A0=0 takes ICW1
 * (bit 4 set), OCW2 (bits 4:3 = 00) and OCW3 (bits 4:3 = 01); A0=1 takes ICW2-4 during
 * initialisation and OCW1 (IMR) afterwards. Priority is fixed IR0 highest unless rotated (OCW2 R bit),
 * modelled as {@code priorityAdd}: the IR with the highest priority.
 */
final class Pic8259 {
    int irr, isr, imr;
    /** Edge/level select per IR (the PIIX ELCR; ICW1.LTIM sets all to level). */
    int elcr;
    final int elcrMask;
    /** Raw input line levels: edge detection compares against these. */
    private int lines;
    int vectorBase;
    int priorityAdd;
    boolean autoEoi, rotateOnAutoEoi, specialMask, specialFullyNested, poll, readIsr;
    /** ICW3: on the master, the IRs with slaves; on the slave, its cascade identity. */
    int icw3;
    private int initStep; // 0 = operating, 2..4 = expecting ICW2..ICW4
    private boolean icw4Needed, single;
    final boolean master;

    Pic8259(boolean master, int elcrMask) {
        this.master = master;
        this.elcrMask = elcrMask;
        reset();
    }

    void reset() {
        irr = isr = imr = lines = 0;
        priorityAdd = 0;
        autoEoi = rotateOnAutoEoi = specialMask = specialFullyNested = poll = readIsr = false;
        initStep = 0;
        vectorBase = master ? 0x08 : 0x70; // the real-mode BIOS mapping until the guest reprograms it
        icw3 = master ? 0x04 : 0x02;
    }

    /** Drives input IR{@code irq}. Edge mode latches a rising edge in IRR; level mode follows the line. */
    void setIrq(int irq, boolean level) {
        int mask = 1 << irq;
        if ((elcr & mask) != 0) {
            if (level) irr |= mask; else irr &= ~mask;
        } else if (level && (lines & mask) == 0) {
            irr |= mask;
        }
        if (level) lines |= mask; else lines &= ~mask;
    }

    /** The highest-priority set bit of {@code mask} as a priority level (0 = highest), or 8 if none. */
    private int priority(int mask) {
        if (mask == 0) return 8;
        int p = 0;
        while ((mask & (1 << ((p + priorityAdd) & 7))) == 0) p++;
        return p;
    }

    /** The IR that would be presented to the CPU (datasheet "Priority resolver"), or -1. */
    int pendingIrq() {
        int req = irr & ~imr;
        int p = priority(req);
        if (p == 8) return -1;
        int inService = isr;
        // Special mask mode: masked IRs in service do not inhibit lower priorities (OCW3 SMM).
        if (specialMask) inService &= ~imr;
        // Special fully nested mode: a slave's further requests may interrupt its own in-service one.
        if (specialFullyNested && master) inService &= ~icw3;
        return p < priority(inService) ? (p + priorityAdd) & 7 : -1;
    }

    /** INTA for IR{@code irq}: moves it from IRR to ISR (unless AEOI); level requests stay in IRR while asserted. */
    void acknowledge(int irq) {
        int mask = 1 << irq;
        if (autoEoi) {
            if (rotateOnAutoEoi) priorityAdd = (irq + 1) & 7;
        } else {
            isr |= mask;
        }
        if ((elcr & mask) == 0) irr &= ~mask;
    }

    private void eoiHighest(boolean rotate) {
        int p = priority(isr);
        if (p == 8) return;
        int irq = (p + priorityAdd) & 7;
        isr &= ~(1 << irq);
        if (rotate) priorityAdd = (irq + 1) & 7;
    }

    int read(int a0) {
        if (poll) {
            // Poll command (OCW3 P): the read is the INTA; bit 7 = interrupt present, bits 2:0 = IR.
            poll = false;
            int irq = pendingIrq();
            if (irq < 0) return 0;
            acknowledge(irq);
            return 0x80 | irq;
        }
        if (a0 == 1) return imr;
        return readIsr ? isr : irr;
    }

    void write(int a0, int v) {
        v &= 0xFF;
        if (a0 == 0) {
            if ((v & 0x10) != 0) icw1(v);
            else if ((v & 0x08) == 0) ocw2(v);
            else ocw3(v);
            return;
        }
        switch (initStep) {
            case 2 -> {
                vectorBase = v & 0xF8; // ICW2: T7-T3; in 8086 mode the low 3 bits come from the IR number
                initStep = single ? (icw4Needed ? 4 : 0) : 3;
            }
            case 3 -> {
                icw3 = v;
                initStep = icw4Needed ? 4 : 0;
            }
            case 4 -> {
                autoEoi = (v & 0x02) != 0;      // ICW4 AEOI
                specialFullyNested = (v & 0x10) != 0; // ICW4 SFNM
                initStep = 0;
            }
            default -> imr = v; // OCW1
        }
    }

    /** ICW1: starts the initialisation sequence (datasheet "Initialization Command Words"). */
    private void icw1(int v) {
        // The sequence clears IMR and ISR, makes IR7 lowest priority, leaves special mask mode and
        // selects IRR for status reads. Latched edge requests are lost; level requests reappear.
        imr = 0;
        isr = 0;
        irr &= elcr;
        lines &= elcr;
        priorityAdd = 0;
        specialMask = false;
        readIsr = false;
        poll = false;
        autoEoi = rotateOnAutoEoi = specialFullyNested = false;
        icw4Needed = (v & 0x01) != 0;
        single = (v & 0x02) != 0;
        if ((v & 0x08) != 0) elcr = elcrMask; // LTIM: level-triggered mode for every IR
        initStep = 2;
    }

    /** OCW2: R, SL, EOI (bits 7:5) and the IR level L2-L0. */
    private void ocw2(int v) {
        int irq = v & 7;
        switch (v >> 5) {
            case 0b001 -> eoiHighest(false);                  // non-specific EOI
            case 0b011 -> isr &= ~(1 << irq);                 // specific EOI
            case 0b101 -> eoiHighest(true);                   // rotate on non-specific EOI
            case 0b100 -> rotateOnAutoEoi = true;             // set rotate in AEOI mode
            case 0b000 -> rotateOnAutoEoi = false;            // clear rotate in AEOI mode
            case 0b111 -> { isr &= ~(1 << irq); priorityAdd = (irq + 1) & 7; } // rotate on specific EOI
            case 0b110 -> priorityAdd = (irq + 1) & 7;        // set priority: IRq becomes lowest
            default -> {}                                     // 010: no operation
        }
    }

    /** OCW3: ESMM/SMM (bits 6:5), P (bit 2), RR/RIS (bits 1:0). */
    private void ocw3(int v) {
        if ((v & 0x04) != 0) poll = true;
        if ((v & 0x02) != 0) readIsr = (v & 0x01) != 0;
        if ((v & 0x40) != 0) specialMask = (v & 0x20) != 0;
    }
}
