package dev.polyvisor.personality.core;

/**
 * What a personality says about an RDMSR/WRMSR: it handled it (with the value read), the MSR is not
 * its business (the next personality or the VMM decides), or the access raises #GP(0) - an MSR it
 * owns that is disabled, read-only, or given a reserved value.
 */
public sealed interface MsrAccess {
    record Handled(long value) implements MsrAccess {}

    record NotHandled() implements MsrAccess {}

    record Gp() implements MsrAccess {}

    MsrAccess NOT_HANDLED = new NotHandled();
    MsrAccess GP = new Gp();
    MsrAccess OK = new Handled(0);

    static MsrAccess value(long v) { return new Handled(v); }
}
