package dev.polyvisor.devices;

/**
 * One interrupt request wire from a device to the interrupt controllers. Devices drive a level;
 * edge-triggered receivers latch the rising edge. {@link #pulse()} is a rising then falling edge, the
 * way an ISA device signals an edge-triggered interrupt.
 */
@FunctionalInterface
public interface IrqLine {
    void set(boolean asserted);

    default void pulse() { set(true); set(false); }

    IrqLine NONE = asserted -> {};
}
