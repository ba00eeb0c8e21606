package dev.polyvisor.devices.virtio;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

/** virtio-console (virtio 1.2, 5.3) with one port, as Linux's virtio_console drives it for hvc0. */
class VirtioConsoleTest {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private int signals;
    private VirtioConsole con;
    private final TestDriver d = new TestDriver(dma -> con = new VirtioConsole(out::writeBytes, () -> signals++));

    private static byte[] ascii(String s) { return s.getBytes(StandardCharsets.US_ASCII); }

    @Test
    void isAConsoleWithTwoQueuesAndNoFeatures() {
        assertEquals(0x1043, d.f.configRead(0x02, 2));
        assertEquals(2, d.common(0x12, 2));
        d.common(0x00, 4, 0);
        assertEquals(0, d.common(0x04, 4) & 0x7, "no SIZE, MULTIPORT or EMERG_WRITE");
        assertEquals(0, d.f.barRead(VirtioPciFunction.BAR, VirtioPciFunction.DEVICE + 4, 4), "max_nr_ports reads 0 without MULTIPORT");
    }

    @Test
    void guestOutputReachesTheHost() {
        d.start(0);
        d.postReadable(VirtioConsole.TX, ascii("hello from hvc0\n"));
        assertEquals("hello from hvc0\n", out.toString(StandardCharsets.US_ASCII));
        assertNotNull(d.takeUsed(VirtioConsole.TX));
    }

    @Test
    void inputWaitsUntilTheGuestHasWrittenOnce() {
        d.start(0);
        d.postWritable(VirtioConsole.RX, 64);
        con.feed(ascii("typeahead\n"));
        d.f.serviceHost();
        assertNull(d.takeUsed(VirtioConsole.RX), "nobody has shown a prompt yet");
        d.postReadable(VirtioConsole.TX, ascii("/ # "));
        d.f.serviceHost();
        assertArrayEquals(ascii("typeahead\n"), d.takeUsed(VirtioConsole.RX));
    }

    @Test
    void inputWaitsForReceiveBuffersAndIsSplitAcrossThem() {
        d.start(0);
        d.postReadable(VirtioConsole.TX, ascii("$ "));
        con.feed(ascii("echo hi\n"));
        assertEquals(2, signals, "the first output and the input");
        d.f.serviceHost();
        assertEquals(8, con.pendingInput(), "no buffer yet");
        d.postWritable(VirtioConsole.RX, 5);
        assertArrayEquals(ascii("echo "), d.takeUsed(VirtioConsole.RX));
        assertEquals(3, con.pendingInput());
        d.postWritable(VirtioConsole.RX, 64);
        assertArrayEquals(ascii("hi\n"), d.takeUsed(VirtioConsole.RX));
        assertEquals(0, con.pendingInput());
        assertEquals(2, d.vectors.stream().filter(v -> v == VirtioConsole.RX + 1).count(), "one receive interrupt per filled buffer");
    }

    @Test
    void manyInputBytesKeepTheirOrder() {
        d.start(0);
        d.postReadable(VirtioConsole.TX, ascii("$ "));
        StringBuilder all = new StringBuilder();
        for (int i = 0; i < 100; i++) {
            String s = "line " + i + "\n";
            all.append(s);
            con.feed(ascii(s));
        }
        StringBuilder got = new StringBuilder();
        for (int i = 0; i < 40 && con.pendingInput() > 0; i++) {
            d.postWritable(VirtioConsole.RX, 64);
            got.append(new String(d.takeUsed(VirtioConsole.RX), StandardCharsets.US_ASCII));
        }
        assertEquals(all.toString(), got.toString());
    }

    @Test
    void aBrokenReceiveRingNeedsReset() {
        d.start(0);
        d.postReadable(VirtioConsole.TX, ascii("$ "));
        con.feed(ascii("x"));
        // descriptor 0 of the receive queue points outside guest RAM
        d.mem.st64(TestDriver.desc(VirtioConsole.RX), 0x7000_0000_0000L);
        d.mem.st32(TestDriver.desc(VirtioConsole.RX) + 8, 16);
        d.mem.st16(TestDriver.desc(VirtioConsole.RX) + 12, Virtqueue.DESC_F_WRITE);
        d.mem.st16(TestDriver.avail(VirtioConsole.RX) + 4, 0);
        d.mem.st16(TestDriver.avail(VirtioConsole.RX) + 2, 1);
        d.f.notifyQueue(VirtioConsole.RX);
        assertEquals(VirtioPciFunction.S_NEEDS_RESET, d.status() & VirtioPciFunction.S_NEEDS_RESET);
        assertEquals(1, d.log.size());
        assertEquals(1, con.pendingInput(), "the byte was not lost");
    }
}
