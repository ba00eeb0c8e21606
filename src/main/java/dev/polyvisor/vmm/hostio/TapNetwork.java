package dev.polyvisor.vmm.hostio;

import dev.polyvisor.devices.virtio.VirtioNet;

import java.io.IOException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.function.Function;

import static java.lang.foreign.ValueLayout.*;

/**
 * A host TAP device behind virtio-net ({@code --net tap=IFNAME}, QEMU's {@code -netdev tap,ifname=IFNAME}):
 * Polyvisor attaches to the interface through {@code /dev/net/tun} with TUNSETIFF, IFF_TAP | IFF_NO_PI, so
 * every read() is one Ethernet frame for the guest and every write() one frame from it, with no packet-info
 * header (Linux Documentation/networking/tuntap.rst, include/uapi/linux/if_tun.h). The interface is the
 * user's to configure (addresses, bridge, up): usually made beforehand with {@code ip tuntap add dev IFNAME
 * mode tap user USER}, which is what lets a non-root user attach; root may also name one that does not
 * exist, which then lasts as long as this VM.
 *
 * <p>The system calls go through {@link Linker} (java.lang.foreign), errno captured for the messages. The
 * reader thread waits in poll() with a short timeout so that {@link #close} ends it without racing a
 * blocked read() against close() of the same descriptor. The guest's frames go out through a
 * {@link TransmitQueue} and its writer thread, as passt's do.
 */
public final class TapNetwork implements NetworkBackend {
    /** include/uapi/linux/if_tun.h: TUNSETIFF = _IOW('T', 202, int); IFF_TAP; IFF_NO_PI. */
    static final long TUNSETIFF = 0x4004_54CAL;
    static final short IFF_TAP = 0x0002, IFF_NO_PI = 0x1000;
    /** include/uapi/linux/if.h: IFNAMSIZ, and struct ifreq (name, then a union whose short is ifr_flags). */
    static final int IFNAMSIZ = 16, IFREQ_SIZE = 40, IFR_FLAGS = 16;
    static final int O_RDWR = 2, O_CLOEXEC = 0x80000;
    static final short POLLIN = 1;
    static final int EINTR = 4, EBADF = 9, EAGAIN = 11, EBADFD = 77;
    /** The length before each frame in the transmit ring (big-endian, {@link TransmitQueue}). */
    private static final ValueLayout.OfInt FRAME_LENGTH = JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);
    /** How often the reader thread looks at {@link #closed} while no frame comes. */
    static final int POLL_MS = 200;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option ERRNO_OPTION = Linker.Option.captureCallState("errno");
    private static final MethodHandle OPEN = downcall("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), ERRNO_OPTION);
    private static final MethodHandle IOCTL = downcall("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS),
            ERRNO_OPTION, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle READ = downcall("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), ERRNO_OPTION);
    private static final MethodHandle WRITE = downcall("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), ERRNO_OPTION);
    private static final MethodHandle POLL = downcall("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT), ERRNO_OPTION);
    private static final MethodHandle CLOSE = downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle STRERROR = downcall("strerror", FunctionDescriptor.of(ADDRESS, JAVA_INT));

    private final String ifname;
    private final int fd;
    /**
     * The errno slot of the transmit writer's write() calls: freed by the GC, not by {@link #close}, which
     * may leave a writer still inside write() after its join times out.
     */
    private final MemorySegment outState = Arena.ofAuto().allocate(CALL_STATE);
    /**
     * The guest's frames to the interface, written by their own thread: write() on a blocking TAP descriptor
     * waits while the frames it already sent hold the device's send buffer (drivers/net/tun.c tun_get_user
     * and tun_alloc_skb; TUNSETSNDBUF, which QEMU's sndbuf= sets, lowers the limit), and that wait must not
     * be the vCPU's.
     */
    private final TransmitQueue transmit;
    /** Frames the interface refused (write() failed for that frame alone): written by the writer thread only. */
    private volatile long refused;
    private Thread reader;
    private volatile boolean closed;
    /** Where the one line about the interface going away goes ({@link #logTo}), and whether it was said. */
    private volatile Consumer<String> log = line -> {};
    private final AtomicBoolean wentAway = new AtomicBoolean();

    private TapNetwork(String ifname, int fd) {
        this.ifname = ifname;
        this.fd = fd;
        this.transmit = new TransmitQueue("polyvisor-tap-tx", this::writeFrames, e -> wentAway(e.getMessage()));
    }

    @Override public void logTo(Consumer<String> log) { this.log = log; }

    /**
     * The interface was deleted (ip link del) or its descriptor broke: every later read and write fails
     * (EBADFD: drivers/net/tun.c, tun_get after tun_detach), so the guest's network is down for the rest of the
     * run. Said once, by whichever of the reader and the transmit writer finds it first; not on our own close.
     */
    private void wentAway(String reason) {
        if (closed || !wentAway.compareAndSet(false, true)) return;
        log.accept("the TAP interface " + ifname + " went away (" + reason + "); the guest's network is down");
    }

    private static MethodHandle downcall(String name, FunctionDescriptor fd, Linker.Option... options) {
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(() -> new IllegalStateException("libc has no " + name)), fd, options);
    }

    /** Whether {@code name} can be a Linux interface name (1-15 bytes, no '/', ':' or white space: net/core/dev.c dev_valid_name). */
    public static boolean validName(String name) {
        if (name.isEmpty() || name.getBytes(StandardCharsets.UTF_8).length >= IFNAMSIZ) return false;
        if (name.equals(".") || name.equals("..")) return false;
        return name.chars().noneMatch(ch -> ch == '/' || ch == ':' || Character.isWhitespace(ch));
    }

    /**
     * Attaches to TAP interface {@code ifname}.
     *
     * @throws IOException with a one-line message (no /dev/net/tun, not permitted, busy, not a TAP device...)
     */
    public static TapNetwork open(String ifname) throws IOException {
        if (!validName(ifname)) throw new IOException("'" + ifname + "' is not an interface name (1-15 characters, no '/', ':' or spaces)");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment state = a.allocate(CALL_STATE);
            int fd = (int) OPEN.invokeExact(state, a.allocateFrom("/dev/net/tun"), O_RDWR | O_CLOEXEC);
            if (fd < 0) throw new IOException("/dev/net/tun: " + strerror(errno(state)));
            MemorySegment ifr = a.allocate(IFREQ_SIZE);
            byte[] name = ifname.getBytes(StandardCharsets.UTF_8);
            MemorySegment.copy(name, 0, ifr, JAVA_BYTE, 0, name.length);
            ifr.set(JAVA_SHORT, IFR_FLAGS, (short) (IFF_TAP | IFF_NO_PI));
            int r = (int) IOCTL.invokeExact(state, fd, TUNSETIFF, ifr);
            if (r < 0) {
                int err = errno(state);
                int ignored = (int) CLOSE.invokeExact(fd);
                throw new IOException(ifname + ": " + strerror(err) + switch (err) {
                    case 1 -> " (create it for this user first: ip tuntap add dev " + ifname + " mode tap user $USER)"; // EPERM
                    case 16 -> " (another process has it open)"; // EBUSY
                    case 22 -> " (not a TAP device, or its flags differ: IFF_TAP, no packet information)"; // EINVAL
                    default -> "";
                });
            }
            return new TapNetwork(ifname, fd);
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(ifname + ": " + t.getMessage(), t);
        }
    }

    private static int errno(MemorySegment state) { return (int) ERRNO.get(state, 0L); }

    private static String strerror(int errno) {
        try {
            MemorySegment s = (MemorySegment) STRERROR.invokeExact(errno);
            return s.reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "errno " + errno;
        }
    }

    /** The interface this device is attached to. */
    public String interfaceName() { return ifname; }

    /** Queues one frame for the interface (VM thread); never waits for the host's stack. */
    @Override
    public void send(byte[] frame, int length) throws IOException {
        if (closed) throw new IOException(ifname + ": closed");
        transmit.offer(frame, length);
    }

    @Override public long transmitDropped() { return transmit.dropped() + refused; }

    /**
     * The writer thread's wire: one write() per record, each one whole frame (IFF_NO_PI). A frame the host's
     * stack refuses (the interface is down: EIO; too short: EINVAL) is dropped, as on a wire, and the next
     * one is tried; a descriptor that is no longer a TAP device (EBADF, EBADFD) cuts the wire.
     */
    private void writeFrames(ByteBuffer records) throws IOException {
        MemorySegment s = MemorySegment.ofBuffer(records);
        for (long at = 0; at < s.byteSize() && !closed; ) {
            int n = s.get(FRAME_LENGTH, at);
            MemorySegment frame = s.asSlice(at + TransmitQueue.HEADER, n);
            at += TransmitQueue.HEADER + n;
            try {
                long w;
                do {
                    w = (long) WRITE.invokeExact(outState, fd, frame, (long) n);
                } while (w < 0 && errno(outState) == EINTR);
                if (w >= 0) continue;
                int err = errno(outState);
                if (err == EBADF || err == EBADFD) throw new IOException(ifname + ": " + strerror(err));
                refused++;
            } catch (IOException e) {
                throw e;
            } catch (Throwable t) {
                throw new IOException(ifname + ": " + t.getMessage(), t);
            }
        }
    }

    @Override
    public void startReceiving(String threadName, Function<byte[], Boolean> deliver) {
        reader = Thread.ofPlatform().daemon().name(threadName).start(() -> {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment in = a.allocate(VirtioNet.MAX_FRAME), state = a.allocate(CALL_STATE);
                MemorySegment pfd = a.allocate(8); // struct pollfd { int fd; short events; short revents; }
                pfd.set(JAVA_INT, 0, fd);
                pfd.set(JAVA_SHORT, 4, POLLIN);
                while (!closed) {
                    int ready = (int) POLL.invokeExact(state, pfd, 1L, POLL_MS);
                    if (ready < 0 && errno(state) == EINTR) continue;
                    if (ready < 0) { wentAway(strerror(errno(state))); break; }
                    if (closed) break;
                    if (ready == 0) continue;
                    long n = (long) READ.invokeExact(state, fd, in, (long) VirtioNet.MAX_FRAME);
                    if (n < 0 && (errno(state) == EINTR || errno(state) == EAGAIN)) continue;
                    if (n <= 0) { wentAway(n < 0 ? strerror(errno(state)) : "end of file"); break; }
                    if (!deliver.apply(in.asSlice(0, n).toArray(JAVA_BYTE))) break;
                }
            } catch (Throwable t) {
                wentAway(String.valueOf(t.getMessage())); // the wire is cut: the device sees no more frames
            }
        });
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        transmit.close(); // before the descriptor is closed, so that no write() can reach a reused number
        if (reader != null) {
            try {
                reader.join(2 * POLL_MS + 1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable ignored) {
            // closing on teardown
        }
    }
}
