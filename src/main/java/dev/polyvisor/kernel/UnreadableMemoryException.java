package dev.polyvisor.kernel;

/** A guest-physical or kernel-virtual address that cannot be read (outside RAM, or not mapped in a way this package knows). */
public final class UnreadableMemoryException extends RuntimeException {
    public UnreadableMemoryException(String message) { super(message); }
}
