package dev.polyvisor.cpu.jit;

/** {@code --jit check} found a compiled trace that does not do what the interpreter does: the VM stops. */
public final class JitCheckFailure extends RuntimeException {
    public JitCheckFailure(String message) { super(message); }
}
