package dev.polyvisor.vmm.boot;

/** A kernel, module or binary that cannot be loaded; the message is one line for the user. */
public final class LoadException extends Exception {
    public LoadException(String message) { super(message); }

    public LoadException(String message, Throwable cause) { super(message, cause); }
}
