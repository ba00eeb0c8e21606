package dev.polyvisor.personality.core;

import dev.polyvisor.cpu.GuestContext;

/**
 * Port I/O a personality claims that needs the caller's registers (the VMware backdoor returns values in
 * EBX, ECX, EDX besides EAX). The VMM routes an access to a claimed port here with the vCPU's context.
 */
public interface GuestPortIo {
    boolean claims(int port);

    /** IN: returns the value for the destination register; may also write other registers through {@code ctx}. */
    long in(GuestContext ctx, int port, int size);

    void out(GuestContext ctx, int port, int size, long value);

    /**
     * Whether {@code port} answers at every privilege level, whatever IOPL and the TSS I/O bitmap say: true
     * only for a hypervisor's backdoor that is documented to work from user mode (VMware's, which VMware
     * Tools' user-space programs call; KVM emulates it so with enable_vmware_backdoor).
     */
    default boolean openToAllPrivilegeLevels(int port) { return false; }
}
