package dev.polyvisor.vmm.hostio;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Starting, talking to and stopping passt (passt(1); QEMU's stream protocol). */
class PasstNetworkTest {
    @Test
    void commandLineForwardsOnlyWhatWasAsked() {
        Path sock = Path.of("/tmp/x/net.sock");
        assertEquals(List.of("passt", "--foreground", "--one-off", "--quiet", "--socket", "/tmp/x/net.sock",
                "--tcp-ports", "none", "--udp-ports", "none"), PasstNetwork.command("passt", sock, List.of()));
        assertEquals(List.of("passt", "--foreground", "--one-off", "--quiet", "--socket", "/tmp/x/net.sock",
                        "--tcp-ports", "127.0.0.1/2222:22,8080:80", "--udp-ports", "5353:53"),
                PasstNetwork.command("passt", sock, List.of(new PasstNetwork.Forward(false, "127.0.0.1", 2222, 22),
                        new PasstNetwork.Forward(false, "", 8080, 80), new PasstNetwork.Forward(true, "", 5353, 53))));
    }

    @Test
    void aMissingPasstIsOneClearLine() {
        IOException e = assertThrows(IOException.class, () -> PasstNetwork.start(List.of(), "/nonexistent:/also-not"));
        assertEquals("passt is not installed (it is Debian's package passt: apt-get install passt)", e.getMessage());
    }

    /** A DHCP DISCOVER from 52:54:00:12:34:56, as udhcpc sends it (RFC 2131), in an Ethernet/IPv4/UDP frame. */
    static byte[] dhcpDiscover() {
        ByteBuffer d = ByteBuffer.allocate(300);
        d.put((byte) 1).put((byte) 1).put((byte) 6).put((byte) 0).putInt(0x12345678).putShort((short) 0).putShort((short) 0x8000);
        d.position(28);
        d.put(new byte[] {0x52, 0x54, 0x00, 0x12, 0x34, 0x56});
        d.position(236);
        d.putInt(0x63825363).put(new byte[] {53, 1, 1, (byte) 255});
        byte[] dhcp = d.array();
        ByteBuffer f = ByteBuffer.allocate(14 + 20 + 8 + dhcp.length);
        f.put(new byte[] {-1, -1, -1, -1, -1, -1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56}).putShort((short) 0x0800);
        int ipLen = 20 + 8 + dhcp.length;
        f.put((byte) 0x45).put((byte) 0).putShort((short) ipLen).putInt(0).put((byte) 64).put((byte) 17).putShort((short) 0)
                .putInt(0).putInt(0xFFFF_FFFF);
        int sum = 0;
        for (int i = 14; i < 34; i += 2) sum += f.getShort(i) & 0xFFFF;
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >>> 16);
        f.putShort(24, (short) ~sum);
        f.putShort((short) 68).putShort((short) 67).putShort((short) (8 + dhcp.length)).putShort((short) 0).put(dhcp);
        return f.array();
    }

    private static boolean isDhcpReply(byte[] f) {
        ByteBuffer b = ByteBuffer.wrap(f);
        return f.length > 42 + 240 && b.getShort(12) == 0x0800 && f[23] == 17 && b.getShort(36) == 68;
    }

    @Test
    void passtAnswersDhcpOverTheStreamSocketAndStopsOnClose() throws Exception {
        assumeTrue(PasstNetwork.findPasst(System.getenv("PATH")) != null, "passt is installed by scripts/env.sh");
        BlockingQueue<byte[]> got = new ArrayBlockingQueue<>(16);
        PasstNetwork n = PasstNetwork.start(List.of());
        try {
            n.startReceiving("test-passt", got::offer);
            byte[] discover = dhcpDiscover();
            n.send(discover, discover.length);
            byte[] offer = null;
            for (byte[] f; offer == null && (f = got.poll(10, TimeUnit.SECONDS)) != null; ) if (isDhcpReply(f)) offer = f;
            assertNotNull(offer, "a DHCP OFFER to port 68 comes back");
            assertEquals(0x12345678, ByteBuffer.wrap(offer).getInt(42 + 4), "for our transaction ID");
            assertEquals(2, offer[42], "BOOTREPLY");
        } finally {
            n.close();
        }
        assertFalse(n.alive(), "passt is stopped when the VM ends");
    }

    private static void signal(String sig, long pid) throws Exception {
        assertEquals(0, new ProcessBuilder("kill", "-" + sig, Long.toString(pid)).start().waitFor(), "kill -" + sig);
    }

    /** passt killed: the guest's frames fail from then on, and stderr gets one line for it, not one per frame. */
    @Test
    void aPasstThatGoesAwayIsOneLine() throws Exception {
        assumeTrue(PasstNetwork.findPasst(System.getenv("PATH")) != null, "passt is installed by scripts/env.sh");
        PasstNetwork n = PasstNetwork.start(List.of());
        List<String> lines = new CopyOnWriteArrayList<>();
        n.logTo(lines::add);
        try {
            signal("KILL", n.pid());
            byte[] frame = new byte[1500];
            assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
                int failures = 0;
                while (failures < 100) {
                    try {
                        n.send(frame, frame.length);
                    } catch (IOException e) {
                        failures++;
                    }
                    Thread.sleep(1);
                }
            }, "the frames fail once passt is gone");
            n.transmitThread().join(5000);
            assertEquals(1, lines.size(), "one line, not one per frame: " + lines);
            assertTrue(lines.getFirst().startsWith("the user network (passt) stopped: ")
                    && lines.getFirst().endsWith("; the guest's network is down"), lines.getFirst());
        } finally {
            n.close();
        }
        assertEquals(1, lines.size(), "close adds nothing");
    }

    @Test
    void aStoppedPasstDropsFramesInsteadOfHangingTheVmThread() throws Exception {
        assumeTrue(PasstNetwork.findPasst(System.getenv("PATH")) != null, "passt is installed by scripts/env.sh");
        PasstNetwork n = PasstNetwork.start(List.of());
        long pid = n.pid();
        signal("STOP", pid); // passt reads nothing more: its socket buffer fills, then the ring
        try {
            byte[] frame = new byte[64 << 10];
            assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
                for (int i = 0; i < 10_000; i++) n.send(frame, frame.length);
            }, "10,000 sends of 64 KiB return while passt is stopped");
            assertTrue(n.transmitDropped() > 0, "frames are dropped as on a congested link");
            assertTrue(n.transmitThread().isAlive(), "the writer waits for passt");
        } finally {
            signal("CONT", pid);
            n.close();
        }
        assertFalse(n.transmitThread().isAlive(), "close ends the writer thread");
        assertFalse(n.alive());
    }
}
