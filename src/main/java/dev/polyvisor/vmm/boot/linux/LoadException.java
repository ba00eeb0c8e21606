package dev.polyvisor.vmm.boot.linux;

/** A kernel, initrd or command line cannot be loaded; the message is one line naming the problem. */
public final class LoadException extends Exception {
    public LoadException(String message) { super(message); }

    public LoadException(String message, Throwable cause) { super(message, cause); }
}
