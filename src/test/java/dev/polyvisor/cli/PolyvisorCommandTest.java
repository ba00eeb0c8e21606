package dev.polyvisor.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/** The root command builds the model of the subcommand a command line names, or of all of them. */
class PolyvisorCommandTest {
    @Test
    void eachSubcommandIsRegisteredUnderItsOwnAnnotatedName() {
        CommandLine all = PolyvisorCommand.commandLine();
        assertEquals(List.of("run", "abi", "image"), List.copyOf(all.getSubcommands().keySet()));
        all.getSubcommands().forEach((name, sub) ->
                assertEquals(name, new CommandLine(sub.getCommand()).getCommandName(), "the map's name for " + sub.getCommand().getClass()));
    }

    @Test
    void aCommandLineThatNamesASubcommandGetsOnlyThatOne() {
        assertEquals(Set.of("run"), PolyvisorCommand.commandLine(new String[] {"run", "--help"}).getSubcommands().keySet());
        assertEquals(Set.of("image"), PolyvisorCommand.commandLine(new String[] {"image"}).getSubcommands().keySet());
        assertEquals(Set.of("list", "matrix"),
                PolyvisorCommand.commandLine(new String[] {"abi", "list"}).getSubcommands().get("abi").getSubcommands().keySet());
    }

    @Test
    void helpAndAMistypedCommandStillListEverySubcommand() {
        assertEquals(3, PolyvisorCommand.commandLine(new String[] {"--help"}).getSubcommands().size());
        StringWriter err = new StringWriter();
        CommandLine cl = PolyvisorCommand.commandLine(new String[] {"rnu"});
        cl.setErr(new PrintWriter(err));
        assertEquals(RunCommand.USAGE, cl.execute("rnu"));
        assertTrue(err.toString().contains("polyvisor: Unmatched argument at index 0: 'rnu'"), err.toString());
        StringWriter out = new StringWriter();
        cl.setOut(new PrintWriter(out));
        assertEquals(0, cl.execute("--help"));
        for (String name : List.of("run", "abi", "image")) assertTrue(out.toString().contains("  " + name + " "), out.toString());
    }
}
