package dev.polyvisor.cpu;

/**
 * A hypercall handler's view of the calling vCPU: its registers, privilege level, and guest-virtual to
 * physical translation through the caller's page tables (Xen passes guest-virtual pointers).
 */
public interface GuestContext {
    int vcpuId();

    /** General-purpose register by number (0=RAX … 15=R15). */
    long reg(int n);

    void setReg(int n, long value);

    int cpl();

    /** True in 64-bit mode; hypercall ABIs take 32-bit register halves otherwise. */
    boolean longMode();

    /** Translates a linear address for a supervisor read; returns -1 when it is not mapped. */
    long translate(long linear);
}
