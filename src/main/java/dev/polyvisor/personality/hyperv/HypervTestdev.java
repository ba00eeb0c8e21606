package dev.polyvisor.personality.hyperv;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * QEMU's {@code hyperv-testdev} (hw/misc/hyperv_testdev.c), a host-side SynIC user for test kernels,
 * present only when asked for ({@code --device hyperv-testdev}). One write-only 32-bit control register
 * at I/O port 0x3000:
 * <pre>
 *   bits  7:0   SINT
 *   bits 15:8   VP index
 *   bits 23:16  command: 1 SINT_ROUTE_CREATE, 2 SINT_ROUTE_DESTROY, 3 SINT_ROUTE_SET_SINT (raise it),
 *               4 MSG_CONN_CREATE, 5 MSG_CONN_DESTROY, 6 EVT_CONN_CREATE, 7 EVT_CONN_DESTROY
 *   bits 31:24  connection id
 * </pre>
 * A message connection answers HvPostMessage to its id by posting the same message (type, payload) to
 * its (VP, SINT); while a message waits for a busy slot it stays staged (one per connection, further
 * posts get HV_STATUS_INSUFFICIENT_BUFFERS) and is re-posted when the guest writes EOM. An event
 * connection answers HvSignalEvent to its id by setting event flag number {@code id} in its SINT's
 * SIEFP slot. QEMU asserts on a command it cannot carry out (an unknown route, a taken connection id);
 * here such a command is ignored, as are unknown commands and writes of other sizes.
 */
public final class HypervTestdev {
    public static final int PORT = 0x3000;
    public static final int SINT_ROUTE_CREATE = 1, SINT_ROUTE_DESTROY = 2, SINT_ROUTE_SET_SINT = 3,
            MSG_CONN_CREATE = 4, MSG_CONN_DESTROY = 5, EVT_CONN_CREATE = 6, EVT_CONN_DESTROY = 7;

    private record Route(int vp, int sint) {}

    /** A message connection and the message it holds back while the slot is busy (null: none). */
    private static final class MessageConnection {
        final Route route;
        int stagedType;
        byte[] staged;

        MessageConnection(Route route) { this.route = route; }
    }

    private final SynicHost synic;
    /** Route list, as QEMU's QLIST: the same (VP, SINT) may be created more than once. */
    private final List<Route> routes = new ArrayList<>();
    private final Map<Integer, MessageConnection> messageConnections = new HashMap<>();
    private final Map<Integer, Route> eventConnections = new HashMap<>();

    public HypervTestdev(SynicHost synic) {
        this.synic = synic;
        synic.addSintAckListener(this::acked);
    }

    /** A guest write to the control port; only 32-bit writes are valid (valid.min/max_access_size = 4). */
    public void write(int size, long value) {
        if (size != 4) return;
        int sint = (int) value & 0xFF, vp = (int) (value >>> 8) & 0xFF, command = (int) (value >>> 16) & 0xFF,
                connId = (int) (value >>> 24) & 0xFF;
        Route route = new Route(vp, sint);
        switch (command) {
            case SINT_ROUTE_CREATE -> { if (synic.routable(vp, sint)) routes.add(route); }
            case SINT_ROUTE_DESTROY -> routes.remove(route);
            case SINT_ROUTE_SET_SINT -> { if (routes.contains(route)) synic.raiseSint(vp, sint); }
            case MSG_CONN_CREATE -> {
                if (!synic.routable(vp, sint) || messageConnections.containsKey(connId)) return;
                MessageConnection c = new MessageConnection(route);
                if (synic.setMessageHandler(connId, (type, payload) -> received(c, type, payload)))
                    messageConnections.put(connId, c);
            }
            case MSG_CONN_DESTROY -> {
                if (messageConnections.remove(connId) != null) synic.setMessageHandler(connId, null);
            }
            case EVT_CONN_CREATE -> {
                if (!synic.routable(vp, sint) || eventConnections.containsKey(connId)) return;
                if (synic.setEventHandler(connId, () -> synic.setEventFlag(vp, sint, connId)))
                    eventConnections.put(connId, route);
            }
            case EVT_CONN_DESTROY -> {
                if (eventConnections.remove(connId) != null) synic.setEventHandler(connId, null);
            }
            default -> { } // QEMU ignores unknown commands
        }
    }

    /** Reads of the write-only port float high. */
    public long read(int size) { return size >= 4 ? 0xFFFF_FFFFL : (1L << (8 * size)) - 1; }

    /** msg_handler: echo the message back to the connection's SINT; a busy slot stages it. */
    private int received(MessageConnection c, int type, byte[] payload) {
        if (c.staged != null) return HvAbi.STATUS_INSUFFICIENT_BUFFERS;
        switch (synic.postMessage(c.route.vp(), c.route.sint(), type, payload)) {
            case POSTED -> { }
            case SLOT_BUSY -> { c.stagedType = type; c.staged = payload; }
            // QEMU posts asynchronously and reports success before it finds no message page; the message is lost.
            case NO_MESSAGE_PAGE -> { }
        }
        return HvAbi.STATUS_SUCCESS;
    }

    /** The guest wrote EOM on {@code vp}: staged messages for its SINT are posted again (QEMU sint_ack_handler, msg_cb). */
    private void acked(int vp, int sint) {
        for (MessageConnection c : messageConnections.values()) {
            if (c.staged == null || c.route.vp() != vp || c.route.sint() != sint) continue;
            if (synic.postMessage(vp, sint, c.stagedType, c.staged) != SynicHost.PostResult.SLOT_BUSY) c.staged = null;
        }
    }

    /** Whether a SINT route (VP, SINT) exists (for tests). */
    public boolean hasRoute(int vp, int sint) { return routes.contains(new Route(vp, sint)); }
}
