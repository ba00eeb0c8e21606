package dev.polyvisor.cli;

/** Entry point; the picocli command tree lives in {@link PolyvisorCommand}. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        System.exit(PolyvisorCommand.execute(args));
    }
}
