package dev.polyvisor.guest;

/** Obtaining or building a guest image failed; the message is one line that says what and why. */
public final class GuestImageException extends Exception {
    public GuestImageException(String message) { super(message); }

    public GuestImageException(String message, Throwable cause) { super(message, cause); }
}
