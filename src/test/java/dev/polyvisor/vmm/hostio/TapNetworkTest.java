package dev.polyvisor.vmm.hostio;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Attaching to a host TAP interface and exchanging frames with the host's network stack through it
 * (Linux Documentation/networking/tuntap.rst). The frame test needs /dev/net/tun, the right to create an
 * interface (CAP_NET_ADMIN) and iproute2's {@code ip}: where the host lacks one of them it is skipped, and
 * says which.
 */
class TapNetworkTest {
    static final byte[] GUEST_MAC = {0x52, 0x54, 0x00, 0x12, 0x34, 0x57};
    static final byte[] HOST_IP = {10, (byte) 213, 7, 1}, GUEST_IP = {10, (byte) 213, 7, 2};

    /** A new TAP interface {@code name} of this process; the test is skipped, saying why, where the host cannot make one. */
    private static TapNetwork openOrSkip(String name) {
        assumeTrue(Files.exists(Path.of("/dev/net/tun")), "skipped: the host has no /dev/net/tun");
        try {
            return TapNetwork.open(name);
        } catch (IOException e) {
            assumeTrue(false, "skipped: cannot create a TAP interface here (" + e.getMessage() + ")");
            throw new AssertionError(e); // not reached: assumeTrue(false) aborts the test
        }
    }

    @Test
    void interfaceNamesFollowLinux() {
        assertTrue(TapNetwork.validName("tap0"));
        assertTrue(TapNetwork.validName("abcdefghijklmno"), "15 bytes fit IFNAMSIZ with its NUL");
        assertFalse(TapNetwork.validName("abcdefghijklmnop"));
        assertFalse(TapNetwork.validName(""));
        assertFalse(TapNetwork.validName("a:b"));
        assertFalse(TapNetwork.validName("a b"));
        assertFalse(TapNetwork.validName(".."));
    }

    @Test
    void aBadNameIsRefusedBeforeAnySystemCall() {
        IOException e = assertThrows(IOException.class, () -> TapNetwork.open("no/slashes"));
        assertTrue(e.getMessage().startsWith("'no/slashes' is not an interface name"), e.getMessage());
    }

    @Test
    void anInterfaceThatIsNotATapIsOneClearLine() {
        assumeTrue(Files.exists(Path.of("/dev/net/tun")), "skipped: the host has no /dev/net/tun");
        // lo exists and is no TUN/TAP device: TUNSETIFF refuses it (EINVAL), or EPERM without CAP_NET_ADMIN.
        IOException e = assertThrows(IOException.class, () -> TapNetwork.open("lo"));
        assertTrue(e.getMessage().startsWith("lo: "), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    private static int ip(String... args) throws Exception {
        String[] cmd = new String[args.length + 1];
        cmd[0] = "ip";
        System.arraycopy(args, 0, cmd, 1, args.length);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        return p.waitFor(10, TimeUnit.SECONDS) ? p.exitValue() : -1;
    }

    /** An ARP request (RFC 826) from the guest's MAC and address for {@code HOST_IP}, broadcast. */
    static byte[] arpRequest() {
        ByteBuffer b = ByteBuffer.allocate(42);
        b.put(new byte[] {-1, -1, -1, -1, -1, -1}).put(GUEST_MAC).putShort((short) 0x0806);
        b.putShort((short) 1).putShort((short) 0x0800).put((byte) 6).put((byte) 4).putShort((short) 1);
        b.put(GUEST_MAC).put(GUEST_IP).put(new byte[6]).put(HOST_IP);
        return b.array();
    }

    @Test
    void theHostStackAnswersAnArpRequestSentThroughTheInterface() throws Exception {
        String name = "pvtest" + ProcessHandle.current().pid() % 100_000;
        TapNetwork tap = openOrSkip(name);
        try {
            assumeTrue(ip("addr", "add", "10.213.7.1/24", "dev", name) == 0 && ip("link", "set", "dev", name, "up") == 0,
                    "skipped: iproute2's ip cannot configure " + name);
            BlockingQueue<byte[]> received = new ArrayBlockingQueue<>(64);
            tap.startReceiving("tap-test", f -> received.offer(f) || true);
            byte[] reply = null;
            long deadline = System.currentTimeMillis() + 10_000;
            while (reply == null && System.currentTimeMillis() < deadline) {
                tap.send(arpRequest(), 42);
                for (byte[] f; (f = received.poll(500, TimeUnit.MILLISECONDS)) != null; ) {
                    // The interface also sends IPv6 router solicitations and the like: look for the ARP reply.
                    if (f.length >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2) { reply = f; break; }
                }
            }
            assertNotNull(reply, "an ARP reply from the host within 10 s");
            ByteBuffer r = ByteBuffer.wrap(reply);
            byte[] dst = new byte[6], senderIp = new byte[4], targetMac = new byte[6], targetIp = new byte[4];
            r.get(0, dst).get(28, senderIp).get(32, targetMac).get(38, targetIp);
            assertArrayEquals(GUEST_MAC, dst, "sent to the guest's MAC");
            assertArrayEquals(HOST_IP, senderIp, "the host's address answers");
            assertArrayEquals(GUEST_MAC, targetMac);
            assertArrayEquals(GUEST_IP, targetIp);
        } finally {
            tap.close();
        }
        // Created by this process and not persistent: the interface is gone once it is closed.
        assertNotEquals(0, ip("link", "show", "dev", name), name + " is removed with its last descriptor");
    }

    /** An interface deleted under a running VM (ip link del): one line says so, however many frames follow. */
    @Test
    void anInterfaceDeletedWhileAttachedIsOneLogLine() throws Exception {
        String name = "pvgone" + ProcessHandle.current().pid() % 100_000;
        TapNetwork tap = openOrSkip(name);
        java.util.List<String> lines = new java.util.concurrent.CopyOnWriteArrayList<>();
        try {
            tap.logTo(lines::add);
            tap.startReceiving("tap-gone-test", f -> true);
            assumeTrue(ip("link", "delete", "dev", name) == 0, "skipped: iproute2's ip cannot delete " + name);
            long deadline = System.currentTimeMillis() + 10_000;
            while (lines.isEmpty() && System.currentTimeMillis() < deadline) {
                try {
                    tap.send(arpRequest(), 42);
                } catch (IOException e) {
                    // the wire is cut: later sends fail at once
                }
                Thread.sleep(20);
            }
            for (int i = 0; i < 50; i++) {
                try {
                    tap.send(arpRequest(), 42);
                } catch (IOException e) {
                    // expected once the writer has latched the failure
                }
            }
            Thread.sleep(2 * TapNetwork.POLL_MS);
            assertEquals(1, lines.size(), "one line: " + lines);
            assertTrue(lines.getFirst().contains(name) && lines.getFirst().contains("went away"), lines.getFirst());
        } finally {
            tap.close();
        }
        assertEquals(1, lines.size(), "nothing more on close");
    }

    @Test
    void sendAfterCloseIsAnIoError() throws Exception {
        TapNetwork tap = openOrSkip("pvclosed" + ProcessHandle.current().pid() % 10_000);
        tap.close();
        tap.close(); // twice is harmless
        assertThrows(IOException.class, () -> tap.send(new byte[60], 60));
    }
}
