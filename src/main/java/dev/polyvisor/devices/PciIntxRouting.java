package dev.polyvisor.devices;

/**
 * How bus 0's PCI interrupt pins reach the IOAPIC: slot {@code s}, pin {@code p} (0 = INTA# ... 3 = INTD#)
 * drives GSI {@code 16 + (s + p) mod 8}, IOAPIC pins 16-23, which no ISA device uses. It is the usual
 * rotation of the four pins across slots (PCI-to-PCI Bridge Architecture 1.2, 9.1, the swizzle QEMU's q35
 * routing also follows), so functions in neighbouring slots land on different lines. The DSDT's {@code _PRT}
 * states the same mapping (vmm.acpi.Dsdt), and Linux programs those pins level-triggered, active-low
 * (drivers/acpi/pci_irq.c: a _PRT entry with no link device).
 *
 * <p>PCI interrupt lines are level-sensitive and shareable (PCI Local Bus 3.0, 2.2.6): a GSI is asserted
 * while any function on it asserts its pin, a wired OR kept here as a count of asserting functions.
 */
public final class PciIntxRouting {
    public static final int FIRST_GSI = 16, LINES = 8;
    /** Where the GSIs' levels go: the IOAPIC's inputs ({@link IoApic#setIrq}). */
    @FunctionalInterface
    public interface GsiInputs { void set(int gsi, boolean asserted); }

    private final GsiInputs ioapic;
    private final int[] asserting = new int[LINES];

    public PciIntxRouting(GsiInputs ioapic) { this.ioapic = ioapic; }

    /** The GSI that slot {@code slot}'s pin {@code pin} (0 = INTA#) drives. */
    public static int gsi(int slot, int pin) { return FIRST_GSI + (slot + pin) % LINES; }

    /** One function's interrupt pin: a line that joins the wired OR of its GSI. */
    public IrqLine pin(int slot, int pin) {
        int line = gsi(slot, pin) - FIRST_GSI;
        return new IrqLine() {
            private boolean level;

            @Override
            public void set(boolean asserted) {
                synchronized (PciIntxRouting.this) {
                    if (asserted == level) return;
                    level = asserted;
                    asserting[line] += asserted ? 1 : -1;
                    ioapic.set(FIRST_GSI + line, asserting[line] > 0);
                }
            }
        };
    }
}
