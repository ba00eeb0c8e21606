package dev.polyvisor.personality.hyperv;

/**
 * The host side of the Hyper-V SynIC, as a VMM's own devices use it (QEMU include/hw/hyperv/hyperv.h:
 * hyperv_sint_route_set_sint, hyperv_post_msg, hyperv_set_event_flag, hyperv_set_msg_handler,
 * hyperv_set_event_flag_handler; KVM's sint ack notifiers). VP numbers are vCPU indices; SINTs 0..15.
 * Every method answers out-of-range arguments with its failure value, never an exception.
 */
public interface SynicHost {
    /** What posting into a SIMP slot did (QEMU cpu_post_msg: 0, -EAGAIN, -ENXIO). */
    enum PostResult {
        /** Copied into the slot and the SINT raised. */
        POSTED,
        /** The slot still holds a message: its msg_pending flag is set; retry when the guest acks (EOM). */
        SLOT_BUSY,
        /** The VP has no message page enabled (or the VP/SINT does not exist): nothing was written. */
        NO_MESSAGE_PAGE
    }

    /** A host connection's receiver of HvPostMessage; returns the HV_STATUS the hypercall reports. */
    @FunctionalInterface
    interface MessageHandler {
        int onMessage(int messageType, byte[] payload);
    }

    /** Told when the guest acknowledges messages on a VP (EOM), once per SINT, so staged messages can be retried. */
    @FunctionalInterface
    interface SintAckListener {
        void acked(int vp, int sint);
    }

    /** Whether (vp, sint) names a SynIC input: hyperv_sint_route_new succeeds only for those. */
    boolean routable(int vp, int sint);

    /** Raises the SINT on the VP: its vector as a fixed interrupt, unless the SINT is masked (KVM synic_set_irq). */
    boolean raiseSint(int vp, int sint);

    /** Writes a message of {@code type} with {@code payload} (at most 240 bytes) into the SINT's SIMP slot. */
    PostResult postMessage(int vp, int sint, int type, byte[] payload);

    /**
     * Sets event flag {@code flag} in the SINT's SIEFP slot and raises the SINT if the flag was clear
     * (QEMU hyperv_set_event_flag). False when SynIC or the event page is disabled or the flag is out of range.
     */
    boolean setEventFlag(int vp, int sint, int flag);

    /** Installs (or with null removes) the handler of HvPostMessage to {@code connId}; false if taken / absent. */
    boolean setMessageHandler(int connId, MessageHandler handler);

    /** Installs (or with null removes) the handler of HvSignalEvent to {@code connId}; false if taken / absent. */
    boolean setEventHandler(int connId, Runnable handler);

    void addSintAckListener(SintAckListener listener);
}
