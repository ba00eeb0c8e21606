package dev.polyvisor.vmm.hostio;

import dev.polyvisor.devices.virtio.VirtioNet;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.stream.Stream;

/**
 * User-mode networking through Debian's passt: Polyvisor starts {@code passt --foreground --one-off
 * --socket PATH}, connects to PATH, and exchanges Ethernet frames with it in QEMU's stream protocol
 * (each frame preceded by its length as a 32-bit big-endian number: QEMU net/stream.c, passt tap.c
 * tap_handler_passt). passt answers ARP, DHCP, NDP and DHCPv6 itself and maps the guest's TCP, UDP and
 * ICMP flows onto host sockets; with its defaults the guest gets the host's address and gateway, and
 * the gateway address reaches the host's loopback (passt(1), "Handling of traffic with local
 * destination and source addresses"). Forwarded ports are passt's {@code -t}/{@code -u} options.
 *
 * <p>passt exits by itself when the socket closes (--one-off), so it also goes when Polyvisor is killed;
 * {@link #close} stops it at once.
 */
public final class PasstNetwork implements NetworkBackend {
    /**
     * passt's MTU towards the guest: 65520 bytes unless --mtu says otherwise (passt(1), -m), the size its
     * frames and its TCP segments to the guest have.
     */
    public static final int MTU = 65520;
    /** Set to a file name, passt captures the guest's frames there (passt's --pcap): for debugging. */
    public static final String PCAP_VARIABLE = "POLYVISOR_PASST_PCAP";
    /** How long passt has to create its socket. */
    static final long START_TIMEOUT_MS = 10_000;
    private final Process process;
    private final Path dir;
    private final SocketChannel channel;
    /** The guest's frames to passt, written by their own thread: a stalled passt never blocks the VM thread. */
    private final TransmitQueue transmit;
    private Thread reader;
    private volatile boolean closed;
    /** Where the one line about passt going away goes ({@link #logTo}). */
    private volatile Consumer<String> log = line -> {};

    /** A host port forwarded to the guest ({@code hostfwd=tcp:ADDR:HOSTPORT-:GUESTPORT}); address may be empty. */
    public record Forward(boolean udp, String hostAddress, int hostPort, int guestPort) {
        /** passt's spelling: {@code [ADDR/]PORT:GUESTPORT}. */
        String passtSpec() { return (hostAddress.isEmpty() ? "" : hostAddress + "/") + hostPort + ":" + guestPort; }
    }

    private PasstNetwork(Process process, Path dir, SocketChannel channel) {
        this.process = process;
        this.dir = dir;
        this.channel = channel;
        this.transmit = new TransmitQueue("polyvisor-passt-tx", records -> {
            while (records.hasRemaining()) channel.write(records); // the ring's records are passt's framing already
        }, this::stopped);
    }

    /** The passt command line: foreground, one client, quiet, the socket, and the forwards (none by default). */
    static List<String> command(String passt, Path socket, List<Forward> forwards) {
        List<String> cmd = new ArrayList<>(List.of(passt, "--foreground", "--one-off", "--quiet", "--socket", socket.toString()));
        String pcap = System.getenv(PCAP_VARIABLE);
        if (pcap != null && !pcap.isEmpty()) { cmd.add("--pcap"); cmd.add(pcap); }
        for (boolean udp : new boolean[] {false, true}) {
            List<String> specs = forwards.stream().filter(f -> f.udp() == udp).map(Forward::passtSpec).toList();
            cmd.add(udp ? "--udp-ports" : "--tcp-ports");
            cmd.add(specs.isEmpty() ? "none" : String.join(",", specs));
        }
        return cmd;
    }

    /** The passt executable on PATH, or null. */
    static Path findPasst(String pathVariable) {
        if (pathVariable == null) return null;
        for (String d : pathVariable.split(java.io.File.pathSeparator)) {
            if (d.isEmpty()) continue;
            Path p = Path.of(d, "passt");
            if (Files.isRegularFile(p) && Files.isExecutable(p)) return p;
        }
        return null;
    }

    /**
     * Starts passt and connects to it.
     *
     * @throws IOException with a one-line message when passt is missing, does not start, or refuses a forward
     */
    public static PasstNetwork start(List<Forward> forwards) throws IOException { return start(forwards, System.getenv("PATH")); }

    /** As {@link #start(List)}, looking for passt in {@code pathVariable}'s directories. */
    static PasstNetwork start(List<Forward> forwards, String pathVariable) throws IOException {
        Path passt = findPasst(pathVariable);
        if (passt == null)
            throw new IOException("passt is not installed (it is Debian's package passt: apt-get install passt)");
        Path dir = Files.createTempDirectory("polyvisor-passt-");
        // passt started as root runs as nobody (passt(1), --runas), and creates the socket after that:
        // the directory lets others create entries but not list them.
        Files.setPosixFilePermissions(dir, java.nio.file.attribute.PosixFilePermissions.fromString("rwx-wx-wx"));
        Path socket = dir.resolve("net.sock"), log = dir.resolve("passt.log");
        Process p = new ProcessBuilder(command(passt.toString(), socket, forwards))
                .redirectErrorStream(true).redirectOutput(log.toFile()).redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .start();
        try {
            long deadline = System.currentTimeMillis() + START_TIMEOUT_MS;
            while (!Files.exists(socket)) {
                if (!p.isAlive()) throw new IOException("passt exited with status " + p.exitValue() + ": " + lastLine(log));
                if (System.currentTimeMillis() > deadline) throw new IOException("passt did not create its socket in " + START_TIMEOUT_MS / 1000 + " s");
                Thread.sleep(10);
            }
            // The socket file appears at bind(); passt listens a moment later (passt tap.c tap_sock_unix_init).
            for (;;) {
                SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                try {
                    ch.connect(UnixDomainSocketAddress.of(socket));
                    return new PasstNetwork(p, dir, ch);
                } catch (java.net.ConnectException e) {
                    ch.close();
                    if (!p.isAlive()) throw new IOException("passt exited with status " + p.exitValue() + ": " + lastLine(log));
                    if (System.currentTimeMillis() > deadline) throw new IOException("passt does not accept connections: " + e.getMessage());
                    Thread.sleep(10);
                }
            }
        } catch (IOException | InterruptedException | RuntimeException e) {
            p.destroyForcibly();
            deleteTree(dir);
            throw e instanceof IOException io ? io : new IOException(e.getMessage(), e);
        }
    }

    private static String lastLine(Path log) {
        try {
            List<String> lines = Files.readAllLines(log).stream().filter(l -> !l.isBlank() && !l.startsWith("Failed to send")).toList();
            return lines.isEmpty() ? "(no output)" : lines.getLast().strip();
        } catch (IOException e) {
            return "(no output)";
        }
    }

    /**
     * Queues one frame for passt (VM thread): length, then the frame. Never waits for passt; while passt
     * does not keep up the frame is dropped, as on a congested link.
     *
     * @throws IOException once the connection is closed or broken
     */
    @Override
    public void send(byte[] frame, int length) throws IOException {
        if (closed) throw new IOException("passt connection closed");
        transmit.offer(frame, length);
    }

    @Override public long transmitDropped() { return transmit.dropped(); }

    @Override public void logTo(Consumer<String> log) { this.log = log; }

    /**
     * The transmit writer found the socket cut for good (passt exited or was killed: EPIPE): every later
     * frame fails, so the guest's network is down for the rest of the run. Said once (the writer latches the
     * error and ends, TransmitQueue), not per frame; not on our own close, which latches nothing.
     */
    private void stopped(IOException e) {
        if (closed) return;
        String reason = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        log.accept("the user network (passt) stopped: " + reason + "; the guest's network is down");
    }

    /** The transmit writer thread (for tests). */
    Thread transmitThread() { return transmit.writer(); }

    /**
     * Starts the thread that reads passt's frames and hands each to {@code deliver} (which may block while
     * the guest has no buffers); {@code deliver} returns false once the device is gone.
     */
    @Override
    public void startReceiving(String name, Function<byte[], Boolean> deliver) {
        reader = Thread.ofPlatform().daemon().name(name).start(() -> {
            ByteBuffer len = ByteBuffer.allocate(4);
            try {
                while (!closed) {
                    len.clear();
                    if (!readFully(len)) break;
                    int n = len.getInt(0);
                    if (n <= 0 || n > VirtioNet.MAX_FRAME) break; // not the stream protocol: stop listening
                    ByteBuffer f = ByteBuffer.allocate(n);
                    if (!readFully(f)) break;
                    if (!deliver.apply(f.array())) break;
                }
            } catch (IOException e) {
                // passt went away or we closed the socket: the wire is cut
            }
        });
    }

    private boolean readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) if (channel.read(b) < 0) return false;
        return true;
    }

    @Override public int mtu() { return MTU; }

    /** Whether passt still runs. */
    public boolean alive() { return process.isAlive(); }

    /** passt's process id (for tests that stop it). */
    long pid() { return process.pid(); }

    @Override
    public void close() {
        closed = true;
        transmit.close(); // before the socket: a writer blocked on a stopped passt is woken by the interrupt
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing on teardown
        }
        process.destroy();
        try {
            if (!process.waitFor(2, java.util.concurrent.TimeUnit.SECONDS)) process.destroyForcibly().waitFor(2, java.util.concurrent.TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        if (reader != null) reader.interrupt();
        deleteTree(dir);
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // a temporary directory left behind is harmless
        }
    }
}
