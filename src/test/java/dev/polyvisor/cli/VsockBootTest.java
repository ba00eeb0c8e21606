package dev.polyvisor.cli;

import dev.polyvisor.guest.GuestImages;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code --vsock cid=N,uds=PATH} with Debian's vmw_vsock_virtio_transport (issue #13): echo both ways,
 * in Firecracker's convention, and a bulk send to a host program that reads nothing at first, which
 * Linux's transport must wait out on the device's credit and finish on its CREDIT_UPDATEs. busybox has
 * no AF_VSOCK tool, so the test builds a small static one with the host gcc and hands it to the guest on
 * a virtio disk.
 */
@Tag("linux")
class VsockBootTest {
    @TempDir Path dir;

    @BeforeAll
    static void prepareGuest() throws Exception { GuestImages.defaultGuest(); }

    /**
     * The host programs block (accept, read), each waiting for a step of the guest that another one makes
     * possible: a thread each. The default async pool is the common pool, one worker on a 2-CPU machine,
     * where they would run one after the other and deadlock.
     */
    private static final Executor OWN_THREAD = r -> Thread.ofPlatform().daemon().name("vsock-boot-test-host").start(r);

    /**
     * vsock-echo listen PORT: echo one connection; vsock-echo connect CID PORT MSG: send MSG, print the answer;
     * vsock-echo send CID PORT N: send N bytes of a counting pattern (byte i is i mod 251), print the answer.
     */
    static final String ECHO_C = """
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>
            #include <unistd.h>
            #include <sys/socket.h>
            #include <linux/vm_sockets.h>
            int main(int argc, char **argv) {
                struct sockaddr_vm a; memset(&a, 0, sizeof a); a.svm_family = AF_VSOCK;
                int s = socket(AF_VSOCK, SOCK_STREAM, 0); if (s < 0) { perror("socket"); return 1; }
                char buf[4096]; ssize_t n;
                if (argc == 3 && !strcmp(argv[1], "listen")) {
                    a.svm_cid = VMADDR_CID_ANY; a.svm_port = atoi(argv[2]);
                    if (bind(s, (void *)&a, sizeof a) || listen(s, 1)) { perror("bind"); return 1; }
                    int c = accept(s, 0, 0); if (c < 0) { perror("accept"); return 1; }
                    while ((n = read(c, buf, sizeof buf)) > 0) if (write(c, buf, n) != n) return 1;
                    close(c); return 0;
                }
                if (argc == 5 && !strcmp(argv[1], "connect")) {
                    a.svm_cid = atoi(argv[2]); a.svm_port = atoi(argv[3]);
                    if (connect(s, (void *)&a, sizeof a)) { perror("connect"); return 1; }
                    if (write(s, argv[4], strlen(argv[4])) < 0) return 1;
                    shutdown(s, SHUT_WR);
                    while ((n = read(s, buf, sizeof buf)) > 0) fwrite(buf, 1, n, stdout);
                    putchar('\\n'); return 0;
                }
                if (argc == 5 && !strcmp(argv[1], "send")) {
                    a.svm_cid = atoi(argv[2]); a.svm_port = atoi(argv[3]);
                    if (connect(s, (void *)&a, sizeof a)) { perror("connect"); return 1; }
                    long total = atol(argv[4]), done = 0;
                    while (done < total) {
                        size_t k = total - done < (long) sizeof buf ? (size_t) (total - done) : sizeof buf;
                        for (size_t i = 0; i < k; i++) buf[i] = (char) ((done + i) % 251);
                        if ((n = write(s, buf, k)) <= 0) { perror("write"); return 1; }
                        done += n;
                    }
                    shutdown(s, SHUT_WR);
                    while ((n = read(s, buf, sizeof buf)) > 0) fwrite(buf, 1, n, stdout);
                    putchar('\\n'); return 0;
                }
                fprintf(stderr, "usage\\n"); return 2;
            }
            """;

    private Path buildEcho() throws Exception {
        Path src = Files.writeString(dir.resolve("vsock_echo.c"), ECHO_C), bin = dir.resolve("vsock-echo");
        Process p = new ProcessBuilder("gcc", "-static", "-O2", "-o", bin.toString(), src.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assumeTrue(p.waitFor() == 0, "gcc -static (scripts/env.sh installs gcc and libc6-dev): " + out);
        return bin;
    }

    /** An echo server on PATH_5000 for the guest's connection. */
    private static CompletableFuture<String> echoServer(Path sock) throws IOException {
        ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        s.bind(UnixDomainSocketAddress.of(sock));
        return CompletableFuture.supplyAsync(() -> {
            try (s; SocketChannel c = s.accept()) {
                ByteBuffer b = ByteBuffer.allocate(4096);
                StringBuilder got = new StringBuilder();
                while (c.read(b.clear()) > 0) {
                    b.flip();
                    got.append(StandardCharsets.US_ASCII.decode(b.duplicate()));
                    while (b.hasRemaining()) c.write(b);
                }
                return got.toString();
            } catch (IOException e) {
                return e.toString();
            }
        }, OWN_THREAD);
    }

    /**
     * A host program on PATH_5001 that reads nothing for {@code pauseMs} (the guest's sends must wait on
     * credit, the VM must run on), then takes the whole stream and answers with how much of the pattern it got.
     */
    private static CompletableFuture<String> slowSink(Path sock, long pauseMs) throws IOException {
        ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        s.bind(UnixDomainSocketAddress.of(sock));
        return CompletableFuture.supplyAsync(() -> {
            try (s; SocketChannel c = s.accept()) {
                Thread.sleep(pauseMs);
                ByteBuffer b = ByteBuffer.allocate(64 << 10);
                long at = 0, firstWrong = -1;
                for (int n; (n = c.read(b.clear())) > 0; )
                    for (int i = 0; i < n; i++, at++) if (firstWrong < 0 && b.get(i) != (byte) (at % 251)) firstWrong = at;
                String answer = "got " + at + (firstWrong < 0 ? " in order" : ", wrong from byte " + firstWrong);
                c.write(ByteBuffer.wrap(answer.getBytes(StandardCharsets.US_ASCII)));
                return answer;
            } catch (IOException | InterruptedException e) {
                return e.toString();
            }
        }, OWN_THREAD);
    }

    /** CONNECT to the guest's port 6000 until its listener is up, send a line, read the echo. */
    private static String hostToGuest(Path uds, long deadlineMs) throws Exception {
        while (System.currentTimeMillis() < deadlineMs) {
            if (Files.exists(uds)) {
                try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(uds))) {
                    c.write(ByteBuffer.wrap("CONNECT 6000\n".getBytes(StandardCharsets.US_ASCII)));
                    String ok = readLine(c);
                    if (ok.startsWith("OK ")) {
                        c.write(ByteBuffer.wrap("ping-from-host".getBytes(StandardCharsets.US_ASCII)));
                        c.shutdownOutput();
                        ByteBuffer b = ByteBuffer.allocate(4096);
                        StringBuilder got = new StringBuilder("[" + ok + "]");
                        while (c.read(b.clear()) > 0) got.append(StandardCharsets.US_ASCII.decode(b.flip()));
                        return got.toString();
                    }
                } catch (IOException e) {
                    // the guest is not listening yet: the connection was reset
                }
            }
            Thread.sleep(300);
        }
        return "";
    }

    private static String readLine(SocketChannel c) throws IOException {
        StringBuilder l = new StringBuilder();
        ByteBuffer one = ByteBuffer.allocate(1);
        while (c.read(one.clear()) > 0 && one.get(0) != '\n') l.append((char) one.get(0));
        return l.toString();
    }

    @Test
    void echoBetweenHostAndGuestBothWays() throws Exception {
        Path bin = buildEcho();
        byte[] prog = Files.readAllBytes(bin);
        Path disk = dir.resolve("tools.img");
        Files.write(disk, java.util.Arrays.copyOf(prog, (prog.length + 511) / 512 * 512));
        Path uds = dir.resolve("v.sock");
        var guestSide = echoServer(Path.of(uds + "_5000"));
        int bulk = 2 << 20; // eight times the 256 KiB the device advertises
        var sink = slowSink(Path.of(uds + "_5001"), 3000);
        var hostSide = CompletableFuture.supplyAsync(() -> {
            try {
                return hostToGuest(uds, System.currentTimeMillis() + TimeUnit.MINUTES.toMillis(8));
            } catch (Exception e) {
                return e.toString();
            }
        }, OWN_THREAD);
        CliRun.Result r = CliRun.run(600, "run", "--vsock", "cid=3,uds=" + uds, "--disk", disk + ",readonly=on",
                "--exec", String.join("; ",
                        "head -c " + prog.length + " /dev/vda > /bin/vsock-echo",
                        "chmod +x /bin/vsock-echo",
                        "vsock-echo listen 6000 & vsock-echo connect 2 5000 hello-from-guest",
                        "wait",
                        "vsock-echo send 2 5001 " + bulk));
        assertEquals(0, r.status(), r.err() + r.out());
        assertEquals("hello-from-guest\ngot " + bulk + " in order\n", r.out(), r.err());
        assertEquals("got " + bulk + " in order", sink.get(1, TimeUnit.MINUTES));
        assertEquals("hello-from-guest", guestSide.get(1, TimeUnit.MINUTES));
        String h = hostSide.get(1, TimeUnit.MINUTES);
        assertTrue(h.matches("\\[OK \\d+]ping-from-host"), h);
        assertFalse(r.err().contains("needs reset"), r.err());
    }
}
