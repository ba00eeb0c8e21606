package dev.polyvisor.cli;

import dev.polyvisor.guest.GuestImages;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Debian's virtio_net drives Polyvisor's virtio-net through passt (issue #13): the default guest gets its
 * address by DHCP and fetches a file from an HTTP server on the host's loopback (passt maps the gateway
 * address to it) and checks its sha256; a hostfwd port reaches a server in the guest. bookworm's passt
 * (0.0~git20230309) does not ACK the guest's SYN-ACK of a forwarded connection until it has data from
 * the host side (passt tcp.c, tcp_conn_from_sock_finish sends ACK_IF_NEEDED only), so the guest's
 * accept() returns once the host client sends: the test's client speaks first, as ssh's does.
 */
@Tag("linux")
class NetBootTest {
    @BeforeAll
    static void prepareGuest() throws Exception { GuestImages.defaultGuest(); }

    private static CliRun.Result run(String... args) { return CliRun.run(600, args); }

    @Test
    void theGuestFetchesAFileFromTheHostLoopbackByDhcpAndChecksItsSha256() throws Exception {
        try (BlobServer http = BlobServer.start(InetAddress.getLoopbackAddress(), 1 << 20, 13)) {
            CliRun.Result r = run("run", "--net", "user", "--exec", String.join("; ",
                    "ip -4 addr show eth0 | grep -q 'inet ' && echo has-address",
                    "gw=$(ip route | awk '/^default/ {print $3}')",
                    "wget -q -O /tmp/blob http://$gw:" + http.port() + "/blob",
                    "sha256sum < /tmp/blob"));
            assertEquals(0, r.status(), r.err() + r.out());
            assertEquals("has-address\n" + http.sha256() + "  -\n", r.out(), r.err());
            assertFalse(r.err().contains("needs reset"), r.err());
            assertFalse(r.err().contains("no DHCP answer"), r.err());
        }
    }

    private static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) { return s.getLocalPort(); }
    }

    /**
     * Connects to the forwarded port, sends a line and reads the guest's answer line, until there is one:
     * passt accepts before the guest listens and closes the connection the guest refused.
     */
    private static String exchangeForwarded(int port, String line, long deadlineMs) throws Exception {
        while (System.currentTimeMillis() < deadlineMs) {
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
                s.setSoTimeout(30_000);
                s.getOutputStream().write(line.getBytes(StandardCharsets.US_ASCII));
                s.getOutputStream().flush();
                StringBuilder answer = new StringBuilder();
                var in = s.getInputStream();
                for (int b; (b = in.read()) >= 0; ) {
                    answer.append((char) b);
                    if (b == '\n') return answer.toString();
                }
            } catch (java.io.IOException e) {
                // reset: the guest was not listening yet
            }
            Thread.sleep(1000);
        }
        return "";
    }

    @Test
    void aForwardedHostPortReachesAServerInTheGuest() throws Exception {
        int fwd = freePort();
        var answer = CompletableFuture.supplyAsync(() -> {
            try {
                return exchangeForwarded(fwd, "hello-through-hostfwd\n", System.currentTimeMillis() + TimeUnit.MINUTES.toMillis(8));
            } catch (Exception e) {
                return e.toString();
            }
        });
        // The guest's server prints what it receives and answers a line (busybox nc -l serves one connection).
        CliRun.Result r = run("run", "--net", "user,hostfwd=tcp:127.0.0.1:" + fwd + "-:7000", "--exec",
                "(sleep 3; echo ack-from-guest) | nc -l -p 7000 -w 8");
        assertEquals(0, r.status(), r.err() + r.out());
        assertEquals("hello-through-hostfwd\n", r.out(), r.err());
        assertEquals("ack-from-guest\n", answer.get(1, TimeUnit.MINUTES));
    }

    private static int ip(String... args) throws Exception {
        java.util.List<String> cmd = new java.util.ArrayList<>(java.util.List.of("ip"));
        cmd.addAll(java.util.List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        return p.waitFor(10, TimeUnit.SECONDS) ? p.exitValue() : -1;
    }

    @Test
    void theGuestFetchesAFileFromTheHostThroughATapInterface() throws Exception {
        // --net tap=IFNAME: the interface is the user's, made and configured beforehand (QEMU's script=no).
        String tap = "pvnet" + ProcessHandle.current().pid() % 100_000;
        org.junit.jupiter.api.Assumptions.assumeTrue(java.nio.file.Files.exists(java.nio.file.Path.of("/dev/net/tun"))
                && ip("tuntap", "add", "dev", tap, "mode", "tap") == 0, "skipped: cannot create a TAP interface here");
        try {
            org.junit.jupiter.api.Assumptions.assumeTrue(ip("addr", "add", "10.213.8.1/24", "dev", tap) == 0
                    && ip("link", "set", "dev", tap, "up") == 0, "skipped: cannot configure " + tap);
            try (BlobServer http = BlobServer.start(InetAddress.getByName("10.213.8.1"), 256 << 10, 17)) {
                CliRun.Result r = run("run", "--net", "tap=" + tap, "--exec", String.join("; ",
                        "ip addr add 10.213.8.2/24 dev eth0", "ip link set eth0 up",
                        "wget -q -O /tmp/blob http://10.213.8.1:" + http.port() + "/blob",
                        "sha256sum < /tmp/blob"));
                assertEquals(0, r.status(), r.err() + r.out());
                assertEquals(http.sha256() + "  -\n", r.out(), r.err());
                assertFalse(r.err().contains("needs reset"), r.err());
            }
        } finally {
            ip("tuntap", "del", "dev", tap, "mode", "tap");
        }
    }

    @Test
    void aTapInterfaceThatCannotBeOpenedIsOneLine() {
        CliRun.Result r = run("run", "--net", "tap=lo", "--exec", "true");
        assertNotEquals(0, r.status());
        assertTrue(r.err().contains("--net tap=lo: lo: "), r.err());
    }

    @Test
    void aForwardToAGuestAddressIsAUsageError() {
        CliRun.Result r = run("run", "--net", "user,hostfwd=tcp:127.0.0.1:80-10.0.2.15:80", "--exec", "true");
        assertEquals(RunCommand.USAGE, r.status());
        assertTrue(r.err().contains("hostfwd to a guest address is not offered"), r.err());
    }
}
