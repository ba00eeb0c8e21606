package dev.polyvisor.cli;

import dev.polyvisor.vmm.Outcome;
import dev.polyvisor.vmm.Vm;

import java.io.IOException;
import java.io.InputStream;

/**
 * Feeds the host's standard input to the guest console (COM1), as QEMU's {@code -nographic} does.
 * On a terminal, canonical mode and local echo are switched off for the run (the guest echoes), and
 * restored afterwards; signals stay on, so Ctrl-C still stops Polyvisor. Ctrl-A x quits, as in QEMU.
 *
 * <p>Input is read only as fast as the guest takes it: while {@link #MAX_BACKLOG} bytes wait for the
 * guest's UART, the reader waits (a pipe or a file is a serial line with flow control, not a stream
 * to be swallowed whole). After a guest reboot the input moves to the new machine with
 * {@link #retarget(Vm)}, bytes not yet received included.
 */
final class ConsoleInput implements AutoCloseable {
    /** Bytes the reader lets wait for the guest before it stops reading the host's input. */
    static final int MAX_BACKLOG = 8192;
    private final Thread reader;
    private final String savedTty;
    private Vm target; // guarded by this
    private boolean open = true; // guarded by this

    private ConsoleInput(Vm target, String savedTty, InputStream in) {
        this.target = target;
        this.savedTty = savedTty;
        target.setConsoleInputOpen(true);
        this.reader = Thread.ofPlatform().daemon().name("console-input").unstarted(() -> pump(in));
    }

    static ConsoleInput start(Vm vm) {
        boolean terminal = System.console() != null && System.console().isTerminal();
        String saved = terminal ? stty("-g") : null;
        if (saved != null) {
            stty("-icanon", "-echo", "min", "1");
            String restore = saved;
            Runtime.getRuntime().addShutdownHook(new Thread(() -> stty(restore)));
        }
        ConsoleInput c = new ConsoleInput(vm, saved, System.in);
        c.reader.start();
        return c;
    }

    private void pump(InputStream in) {
        byte[] buf = new byte[256];
        ConsoleEscape escape = new ConsoleEscape();
        try {
            for (int n; (n = in.read(buf)) > 0; ) {
                byte[] data = escape.filter(buf, n);
                if (escape.quitRequested()) {
                    if (data.length > 0) deliver(data);
                    current().requestEnd(Outcome.Kind.POWEROFF, Outcome.POWEROFF, "terminated by Ctrl-A x");
                    break;
                }
                if (data.length > 0) deliver(data);
            }
        } catch (IOException ignored) {
            // stdin closed: no more input
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            synchronized (this) {
                open = false;
                target.setConsoleInputOpen(false);
            }
        }
    }

    private synchronized Vm current() { return target; }

    /** Hands bytes to the current machine, waiting while the guest has not taken what it was given. */
    private void deliver(byte[] data) throws InterruptedException {
        for (;;) {
            synchronized (this) {
                if (target.consoleInputBacklog() < MAX_BACKLOG) {
                    target.consoleInput(data);
                    return;
                }
            }
            Thread.sleep(2);
        }
    }

    /** The guest rebooted into {@code next}: input the old machine had not delivered goes there first. */
    synchronized void retarget(Vm next) {
        byte[] undelivered = target.takeUndeliveredInput();
        next.setConsoleInputOpen(open);
        next.consoleInput(undelivered);
        target = next;
    }

    /** Runs stty on the controlling terminal; returns its output, or null if it failed. */
    private static String stty(String... args) {
        String[] cmd = new String[args.length + 1];
        cmd[0] = "stty";
        System.arraycopy(args, 0, cmd, 1, args.length);
        try {
            Process p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.INHERIT)
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
            String out = new String(p.getInputStream().readAllBytes()).trim();
            return p.waitFor() == 0 ? out : null;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    @Override
    public void close() {
        if (savedTty != null) stty(savedTty);
        reader.interrupt(); // a blocked read of stdin does not return; the thread is a daemon and dies with the JVM
    }
}
