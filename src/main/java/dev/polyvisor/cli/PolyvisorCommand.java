package dev.polyvisor.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

/** The root command. Subcommands are added as they land ({@link #SUBCOMMANDS}). */
@Command(name = "polyvisor", mixinStandardHelpOptions = true, version = "polyvisor 0.1.0",
        description = "A hypervisor in Java: a software x86-64 PC presenting KVM, Hyper-V, Xen or VMware paravirtual ABIs.")
public final class PolyvisorCommand implements Runnable {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public void run() { spec.commandLine().usage(System.out); }

    /**
     * The subcommands by name, in the order help lists them. picocli builds a command's model from its annotations
     * when it is added, and the three models took about a tenth of a second of a launch's CPU (async-profiler,
     * session 13), so a command line that names one gets only that one ({@link #commandLine(String[])}).
     */
    static final Map<String, Supplier<Object>> SUBCOMMANDS = subcommands();

    private static Map<String, Supplier<Object>> subcommands() {
        Map<String, Supplier<Object>> m = new LinkedHashMap<>();
        m.put("run", RunCommand::new);
        m.put("abi", AbiCommand::new);
        m.put("image", ImageCommand::new);
        return Collections.unmodifiableMap(m);
    }

    public static int execute(String[] args) { return commandLine(args).execute(args); }

    /** The configured command tree (error handlers installed) with every subcommand; tests redirect its streams. */
    public static CommandLine commandLine() { return commandLine(new String[0]); }

    /**
     * The command tree for {@code args}: with only the subcommand its first word names, or all of them when it names
     * none (help, version, a mistyped command, which then lists them all).
     */
    static CommandLine commandLine(String[] args) {
        CommandLine cl = new CommandLine(new PolyvisorCommand());
        String named = args.length > 0 && SUBCOMMANDS.containsKey(args[0]) ? args[0] : null;
        SUBCOMMANDS.forEach((name, command) -> {
            if (named == null || named.equals(name)) cl.addSubcommand(name, command.get());
        });
        // Bad flags and values: one line naming the problem, status 2, no usage dump or stack trace.
        cl.setParameterExceptionHandler((ex, a) -> {
            CommandLine cmd = ex.getCommandLine();
            String name = cmd.getCommandSpec().qualifiedName();
            cmd.getErr().println("polyvisor: " + ex.getMessage() + " (see '" + name + " --help')");
            return RunCommand.USAGE;
        });
        cl.setExecutionExceptionHandler((ex, cmd, parse) -> {
            cmd.getErr().println("polyvisor: " + (ex.getMessage() == null ? ex.toString() : ex.getMessage()));
            return 1;
        });
        return cl;
    }
}
