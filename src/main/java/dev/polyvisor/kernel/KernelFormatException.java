package dev.polyvisor.kernel;

/**
 * A kernel image, BTF blob, symbol table or kallsyms area that cannot be parsed, or a name that
 * is not in it; the message says what and where in one line.
 */
public final class KernelFormatException extends Exception {
    public KernelFormatException(String message) { super(message); }

    public KernelFormatException(String message, Throwable cause) { super(message, cause); }

    static KernelFormatException of(String format, Object... args) { return new KernelFormatException(String.format(format, args)); }
}
