package dev.polyvisor.cli;

import dev.polyvisor.vmm.Outcome;
import dev.polyvisor.vmm.Vm;

import java.io.IOException;
import java.io.InputStream;

/**
 * Feeds the host's standard input to the guest console (COM1), as QEMU's {@code -nographic} does.
 * On a terminal, canonical mode and local echo are switched off for the run (the guest echoes), and
 * restored afterwards; signals stay on, so Ctrl-C still stops Polyvisor. Ctrl-A x quits, as in QEMU.
 */
final class ConsoleInput implements AutoCloseable {
    private final Thread reader;
    private final String savedTty;

    private ConsoleInput(Thread reader, String savedTty) {
        this.reader = reader;
        this.savedTty = savedTty;
    }

    static ConsoleInput start(Vm vm) {
        boolean terminal = System.console() != null && System.console().isTerminal();
        String saved = terminal ? stty("-g") : null;
        if (saved != null) {
            stty("-icanon", "-echo", "min", "1");
            String restore = saved;
            Runtime.getRuntime().addShutdownHook(new Thread(() -> stty(restore)));
        }
        InputStream in = System.in;
        vm.setConsoleInputOpen(true);
        Thread t = Thread.ofPlatform().daemon().name("console-input").start(() -> {
            byte[] buf = new byte[256];
            ConsoleEscape escape = new ConsoleEscape();
            try {
                for (int n; (n = in.read(buf)) > 0; ) {
                    byte[] data = escape.filter(buf, n);
                    if (data.length > 0) vm.consoleInput(data);
                    if (escape.quitRequested()) {
                        vm.requestEnd(Outcome.Kind.POWEROFF, Outcome.POWEROFF, "terminated by Ctrl-A x");
                        break;
                    }
                }
            } catch (IOException ignored) {
                // stdin closed: no more input
            } finally {
                vm.setConsoleInputOpen(false);
            }
        });
        return new ConsoleInput(t, saved);
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
