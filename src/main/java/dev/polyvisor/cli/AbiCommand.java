package dev.polyvisor.cli;

import dev.polyvisor.personality.AbiCatalog;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.concurrent.Callable;

/**
 * {@code polyvisor abi list [--personality P]}: the ABI contracts as data — every CPUID bit, MSR,
 * hypercall and shared structure each personality offers, with its id (the name {@code run
 * --abi-disable} takes), its numbers, and the Linux behaviour it enables. {@code polyvisor abi matrix}
 * ({@link AbiMatrixCommand}) measures which kernel behaviours depend on which element.
 */
@Command(name = "abi", mixinStandardHelpOptions = true, subcommands = {AbiCommand.ListContracts.class, AbiMatrixCommand.class},
        description = "The hypervisor ABI contracts: what each personality offers the guest.")
public final class AbiCommand implements Runnable {
    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() { spec.commandLine().usage(System.out); }

    @Command(name = "list", mixinStandardHelpOptions = true,
            description = "List the ABI elements of every personality, or of one.")
    static final class ListContracts implements Callable<Integer> {
        @Option(names = "--personality", paramLabel = "NAME", description = "Only this personality (bare, kvm, hyperv, xen, vmware, unknown).")
        String personality;

        @Override
        public Integer call() {
            try {
                System.out.print(AbiCatalog.render(personality));
                return 0;
            } catch (IllegalArgumentException e) {
                System.err.println("polyvisor: " + e.getMessage());
                return RunCommand.USAGE;
            }
        }
    }
}
