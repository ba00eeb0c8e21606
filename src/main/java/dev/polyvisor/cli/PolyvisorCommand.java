package dev.polyvisor.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The root command. Subcommands are added as they land. */
@Command(name = "polyvisor", mixinStandardHelpOptions = true, version = "polyvisor 0.1.0",
        subcommands = {RunCommand.class, AbiCommand.class, ImageCommand.class},
        description = "A hypervisor in Java: a software x86-64 PC presenting KVM, Hyper-V, Xen or VMware paravirtual ABIs.")
public final class PolyvisorCommand implements Runnable {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public void run() { spec.commandLine().usage(System.out); }

    public static int execute(String[] args) { return commandLine().execute(args); }

    /** The configured command tree (error handlers installed); tests redirect its streams. */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new PolyvisorCommand());
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
