package dev.polyvisor.cpu;

/**
 * The interrupt controller as the vCPU sees it (the LAPIC, or the PIC in virtual-wire mode). The CPU
 * polls {@link #hasPending()} at instruction-block boundaries when RFLAGS.IF=1 and no interrupt shadow
 * is active, then calls {@link #acknowledge()} to take the vector (the INTA cycle).
 */
public interface InterruptSource {
    boolean hasPending();

    /** Takes the highest-priority pending vector; returns -1 if it vanished meanwhile (spurious). */
    int acknowledge();

    InterruptSource NONE = new InterruptSource() {
        @Override public boolean hasPending() { return false; }
        @Override public int acknowledge() { return -1; }
    };
}
