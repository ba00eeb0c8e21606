package dev.polyvisor.cli;

import dev.polyvisor.guest.GuestImages;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code --device virtconsole}: Debian's virtio_console makes the device hvc0, the default guest runs its
 * interactive shell there, and the keyboard (stdin) reaches that shell (issue #13).
 */
@Tag("linux")
class VirtconsoleBootTest {
    @BeforeAll
    static void prepareGuest() throws Exception { GuestImages.defaultGuest(); }

    /** A ByteArrayOutputStream another thread may read while the VM writes. */
    static final class Screen extends ByteArrayOutputStream {
        synchronized String text() { return toString(StandardCharsets.ISO_8859_1); }
    }

    @Test
    void theShellRunsOnHvc0AndReadsTheKeyboard() throws Exception {
        Screen out = new Screen();
        ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
        PipedOutputStream keys = new PipedOutputStream();
        PipedInputStream in = new PipedInputStream(keys, 4096);
        PrintStream oldOut = System.out, oldErr = System.err;
        InputStream oldIn = System.in;
        System.setOut(new PrintStream(out, true));
        System.setErr(new PrintStream(errBytes, true));
        System.setIn(in);
        int status;
        try {
            var cl = PolyvisorCommand.commandLine();
            cl.setErr(new PrintWriter(new StringWriter(), true));
            var run = CompletableFuture.supplyAsync(() -> cl.execute("run", "--device", "virtconsole", "--timeout", "600"));
            long deadline = System.currentTimeMillis() + TimeUnit.MINUTES.toMillis(8);
            // Input is typed once /init runs; it waits in the device until the guest posts receive buffers
            // and in hvc0's line discipline until the shell reads it.
            while (System.currentTimeMillis() < deadline && !run.isDone() && !out.text().contains("polyvisor: init started"))
                Thread.sleep(200);
            keys.write("tty; echo hvc-$((6*7)); poweroff\n".getBytes(StandardCharsets.US_ASCII));
            keys.flush();
            status = run.get(5, TimeUnit.MINUTES);
            keys.close();
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
            System.setIn(oldIn);
        }
        String screen = out.text();
        assertEquals(0, status, screen + errBytes);
        assertTrue(screen.contains("/dev/hvc0"), screen);
        assertTrue(screen.contains("hvc-42"), screen);
        assertFalse(screen.contains("needs reset"), screen);
    }
}
