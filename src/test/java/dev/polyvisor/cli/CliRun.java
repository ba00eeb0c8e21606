package dev.polyvisor.cli;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Runs the CLI in this JVM as a user would from a shell with stdin at end of file: the command's exit
 * status, what it wrote to stdout, and stderr (picocli's messages included). Runs are serialised because
 * they replace System.out/err/in.
 */
final class CliRun {
    record Result(int status, String out, String err) {}

    private CliRun() {}

    /** {@code polyvisor ARGS --timeout SECONDS}. */
    static Result run(int timeoutSeconds, String... args) {
        String[] a = Arrays.copyOf(args, args.length + 2);
        a[args.length] = "--timeout";
        a[args.length + 1] = Integer.toString(timeoutSeconds);
        return run(a);
    }

    /** {@code polyvisor ARGS}, exactly as given. */
    static synchronized Result run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), errBytes = new ByteArrayOutputStream();
        StringWriter err = new StringWriter();
        PrintStream oldOut = System.out, oldErr = System.err;
        InputStream oldIn = System.in;
        System.setOut(new PrintStream(out, true));
        System.setErr(new PrintStream(errBytes, true));
        System.setIn(InputStream.nullInputStream());
        try {
            var cl = PolyvisorCommand.commandLine();
            cl.setErr(new PrintWriter(err, true));
            int st = cl.execute(args);
            System.err.flush();
            return new Result(st, out.toString(StandardCharsets.ISO_8859_1), errBytes.toString(StandardCharsets.ISO_8859_1) + err);
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
            System.setIn(oldIn);
        }
    }
}
