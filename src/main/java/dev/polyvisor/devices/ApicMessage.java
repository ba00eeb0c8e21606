package dev.polyvisor.devices;

/**
 * An interrupt message on the APIC bus (SDM Vol. 3A 11.6.1 "Interrupt Command Register"; 82093AA
 * IOAPIC datasheet 3.2.4 "Redirection Table"): the fields an ICR write or an IOAPIC redirection entry
 * carries. {@code source} is the sending vCPU for shorthands, or -1 for the IOAPIC.
 */
public record ApicMessage(int vector, int deliveryMode, boolean logical, int destination, boolean levelTriggered,
                          boolean assert_, int shorthand, int source, boolean x2apic) {
    public static final int FIXED = 0, LOWEST_PRIORITY = 1, SMI = 2, NMI = 4, INIT = 5, STARTUP = 6, EXTINT = 7;
    public static final int NO_SHORTHAND = 0, SELF = 1, ALL_INCLUDING_SELF = 2, ALL_EXCLUDING_SELF = 3;

    /** A message in xAPIC format: 8-bit destination, 0xFF broadcast. */
    public ApicMessage(int vector, int deliveryMode, boolean logical, int destination, boolean levelTriggered,
                       boolean assert_, int shorthand, int source) {
        this(vector, deliveryMode, logical, destination, levelTriggered, assert_, shorthand, source, false);
    }

    /** x2APIC broadcast destination (SDM Vol. 3A 11.12.9). */
    public static final int X2APIC_BROADCAST = 0xFFFF_FFFF;

    /**
     * A message from the x2APIC ICR, MSR 0x830 (SDM Vol. 3A 11.12.9, Figure 11-28): the destination is
     * the whole high doubleword (a 32-bit x2APIC ID, or cluster[31:16] | bitmap[15:0] in logical mode).
     */
    public static ApicMessage fromX2apicIcr(long icr, int source) {
        int low = (int) icr;
        return new ApicMessage(low & 0xFF, low >> 8 & 7, (low & 0x800) != 0, (int) (icr >>> 32),
                (low & 0x8000) != 0, (low & 0x4000) != 0, low >> 18 & 3, source, true);
    }

    /** A message decoded from ICR low/high (SDM Figure 11-12). */
    public static ApicMessage fromIcr(int low, int high, int source) {
        return new ApicMessage(low & 0xFF, low >> 8 & 7, (low & 0x800) != 0, high >>> 24,
                (low & 0x8000) != 0, (low & 0x4000) != 0, low >> 18 & 3, source);
    }

    /** A message from an IOAPIC redirection entry (82093AA 3.2.4): no shorthand, asserted. */
    public static ApicMessage fromRedirection(long entry) {
        return new ApicMessage((int) entry & 0xFF, (int) (entry >> 8) & 7, (entry & 0x800) != 0, (int) (entry >>> 56),
                (entry & 0x8000) != 0, true, NO_SHORTHAND, -1);
    }

    /**
     * A message-signalled interrupt (SDM Vol. 3A 11.11.1 "Message Address Register Format", 11.11.2
     * "Message Data Register Format"): address bits 19:12 the destination ID, bit 2 the destination
     * mode (1 logical); data bits 7:0 the vector, 10:8 the delivery mode, 15 the trigger mode (1 level).
     * Returns null when the address is not in the 0xFEExxxxx interrupt window.
     */
    public static ApicMessage fromMsi(long address, int data) {
        if ((address >>> 20) != 0xFEE) return null;
        return new ApicMessage(data & 0xFF, data >> 8 & 7, (address & 4) != 0, (int) (address >> 12) & 0xFF,
                (data & 0x8000) != 0, true, NO_SHORTHAND, -1);
    }
}
