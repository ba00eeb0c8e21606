package dev.polyvisor.cpu;

/**
 * A guest exception raised while executing an instruction (#PF, #GP, #UD, ...). Preallocated per vCPU
 * and stackless (reference/cpu-design.md 1.7): thrown only from slow paths, caught by the run loop,
 * which restores RIP to the faulting instruction and delivers the vector through the IDT.
 */
public final class CpuFault extends RuntimeException {
    public int vector;
    /** Error code, or -1 when the vector pushes none. */
    public int errorCode;

    CpuFault() { super(null, null, false, false); }

    public CpuFault set(int vector, int errorCode) {
        this.vector = vector;
        this.errorCode = errorCode;
        return this;
    }

    @Override
    public String getMessage() { return Exceptions.name(vector) + (errorCode >= 0 ? "(" + errorCode + ")" : ""); }
}
