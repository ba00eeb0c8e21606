package dev.polyvisor.personality.hyperv;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** QEMU's hyperv-testdev control register (hw/misc/hyperv_testdev.c) against a recording SynIC host. */
class HypervTestdevTest {
    /** Two VPs; records what the device asked; a slot is busy while {@code busy} says so. */
    static final class FakeSynic implements SynicHost {
        final List<String> calls = new ArrayList<>();
        final Map<Integer, MessageHandler> messages = new HashMap<>();
        final Map<Integer, Runnable> events = new HashMap<>();
        final List<SintAckListener> acks = new ArrayList<>();
        boolean busy;

        @Override public boolean routable(int vp, int sint) { return vp >= 0 && vp < 2 && sint >= 0 && sint < 16; }
        @Override public boolean raiseSint(int vp, int sint) { calls.add("raise " + vp + ":" + sint); return true; }
        @Override public PostResult postMessage(int vp, int sint, int type, byte[] payload) {
            calls.add("post " + vp + ":" + sint + " " + Integer.toHexString(type) + " " + payload.length);
            return busy ? PostResult.SLOT_BUSY : PostResult.POSTED;
        }
        @Override public boolean setEventFlag(int vp, int sint, int flag) { calls.add("flag " + vp + ":" + sint + " " + flag); return true; }
        @Override public boolean setMessageHandler(int connId, MessageHandler h) {
            if (h == null) return messages.remove(connId) != null;
            return messages.putIfAbsent(connId, h) == null;
        }
        @Override public boolean setEventHandler(int connId, Runnable h) {
            if (h == null) return events.remove(connId) != null;
            return events.putIfAbsent(connId, h) == null;
        }
        @Override public void addSintAckListener(SintAckListener l) { acks.add(l); }
    }

    final FakeSynic synic = new FakeSynic();
    final HypervTestdev dev = new HypervTestdev(synic);

    static long ctl(int command, int vp, int sint, int connId) {
        return (long) connId << 24 | (long) command << 16 | (long) vp << 8 | sint;
    }

    @Test
    void sintRouteIsCreatedRaisedAndDestroyed() {
        dev.write(4, ctl(HypervTestdev.SINT_ROUTE_CREATE, 1, 5, 0));
        assertTrue(dev.hasRoute(1, 5));
        dev.write(4, ctl(HypervTestdev.SINT_ROUTE_SET_SINT, 1, 5, 0));
        assertEquals(List.of("raise 1:5"), synic.calls);
        dev.write(4, ctl(HypervTestdev.SINT_ROUTE_DESTROY, 1, 5, 0));
        assertFalse(dev.hasRoute(1, 5));
        dev.write(4, ctl(HypervTestdev.SINT_ROUTE_SET_SINT, 1, 5, 0));
        assertEquals(1, synic.calls.size(), "no route, nothing raised (QEMU would assert)");
    }

    @Test
    void messageConnectionEchoesThePostAndStagesItWhileTheSlotIsBusy() {
        dev.write(4, ctl(HypervTestdev.MSG_CONN_CREATE, 0, 8, 0x10));
        SynicHost.MessageHandler h = synic.messages.get(0x10);
        assertNotNull(h);
        assertEquals(HvAbi.STATUS_SUCCESS, h.onMessage(0x12345678, new byte[8]));
        assertEquals(List.of("post 0:8 12345678 8"), synic.calls);
        synic.busy = true;
        assertEquals(HvAbi.STATUS_SUCCESS, h.onMessage(0x12345678, new byte[16]), "staged: the post itself succeeded");
        assertEquals(HvAbi.STATUS_INSUFFICIENT_BUFFERS, h.onMessage(1, new byte[1]), "one staged message per connection");
        synic.acks.getFirst().acked(1, 8);
        synic.acks.getFirst().acked(0, 7);
        assertEquals(2, synic.calls.size(), "acks of other VPs or SINTs do not retry");
        synic.busy = false;
        synic.acks.getFirst().acked(0, 8);
        assertEquals("post 0:8 12345678 16", synic.calls.getLast(), "EOM re-posts the staged message");
        synic.acks.getFirst().acked(0, 8);
        assertEquals(3, synic.calls.size(), "and only once");
        dev.write(4, ctl(HypervTestdev.MSG_CONN_DESTROY, 0, 0, 0x10));
        assertTrue(synic.messages.isEmpty());
    }

    @Test
    void eventConnectionSetsFlagNumberEqualToItsId() {
        dev.write(4, ctl(HypervTestdev.EVT_CONN_CREATE, 1, 9, 0x21));
        synic.events.get(0x21).run();
        assertEquals(List.of("flag 1:9 33"), synic.calls);
        dev.write(4, ctl(HypervTestdev.EVT_CONN_DESTROY, 0, 0, 0x21));
        assertTrue(synic.events.isEmpty());
    }

    @Test
    void malformedCommandsAreIgnored() {
        dev.write(4, ctl(HypervTestdev.SINT_ROUTE_CREATE, 7, 0, 0));   // no VP 7
        dev.write(4, ctl(HypervTestdev.SINT_ROUTE_CREATE, 0, 16, 0));  // no SINT 16
        dev.write(4, ctl(HypervTestdev.MSG_CONN_CREATE, 9, 1, 3));
        dev.write(4, ctl(HypervTestdev.EVT_CONN_DESTROY, 0, 0, 0x55)); // never created
        dev.write(4, ctl(HypervTestdev.SINT_ROUTE_DESTROY, 0, 1, 0));
        dev.write(4, ctl(0x99, 0, 0, 0));
        dev.write(2, ctl(HypervTestdev.SINT_ROUTE_CREATE, 0, 1, 0));   // 16-bit write: not a valid access
        dev.write(4, ctl(HypervTestdev.EVT_CONN_CREATE, 0, 1, 0x30));
        dev.write(4, ctl(HypervTestdev.EVT_CONN_CREATE, 1, 2, 0x30)); // id taken: the first stays
        assertFalse(dev.hasRoute(7, 0));
        assertFalse(dev.hasRoute(0, 16));
        assertFalse(dev.hasRoute(0, 1));
        assertTrue(synic.messages.isEmpty());
        assertEquals(1, synic.events.size());
        synic.events.get(0x30).run();
        assertEquals(List.of("flag 0:1 48"), synic.calls);
        assertEquals(0xFFFF_FFFFL, dev.read(4), "write-only");
    }
}
