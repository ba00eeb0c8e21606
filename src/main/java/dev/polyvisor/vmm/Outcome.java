package dev.polyvisor.vmm;

/**
 * How a VM run ended: the host exit status to report, a one-line message (empty when the guest
 * asked to exit), and the run's statistics.
 *
 * <p>Status values: the guest's debug-exit status {@code (v << 1) | 1} (always odd), {@link #POWEROFF}
 * when the guest powered off, and even values for ends the guest did not choose.
 */
public record Outcome(Kind kind, int status, String message, long instructions, long wallNanos) {
    public enum Kind { DEBUG_EXIT, POWEROFF, SHUTDOWN, RESET, STOPPED, TIMEOUT, ERROR }

    public static final int POWEROFF = 0;
    /**
     * Triple fault or another processor shutdown; also a guest reset (keyboard controller 0xFE, port
     * 0xCF9, ACPI reset) when the run does not restart the guest ({@link Kind#RESET}).
     */
    public static final int SHUTDOWN_STATUS = 4;
    /** The guest halted with no way to wake (HLT with interrupts off, or no interrupt source). */
    public static final int STOPPED_STATUS = 6;
    /** An emulator fault that is not the guest's (a bug): reported in one line. */
    public static final int ERROR_STATUS = 8;
    /** As timeout(1). */
    public static final int TIMEOUT_STATUS = 124;

    /** Instructions retired per wall-clock second of the run, in millions. */
    public double mips() { return wallNanos <= 0 ? 0 : instructions * 1e3 / wallNanos; }
}
