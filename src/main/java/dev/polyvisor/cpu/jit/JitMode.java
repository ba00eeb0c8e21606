package dev.polyvisor.cpu.jit;

import java.util.Locale;

/**
 * {@code --jit} ({@code polyvisor run}) and the {@code polyvisor.jit} system property: off (interpreter
 * only), on (compile traces that reach the threshold), always (compile every trace on first use, for
 * testing), check (as on, and each newly compiled trace is verified against the interpreter on its first run).
 */
public enum JitMode {
    OFF, ON, ALWAYS, CHECK;

    /** The system property that sets the default mode (so the test suite can run with the JIT forced on). */
    public static final String PROPERTY = "polyvisor.jit";
    /** The mode when neither {@code --jit} nor the property says otherwise. */
    public static final JitMode DEFAULT = OFF;

    public static JitMode parse(String s) {
        return switch (s.trim().toLowerCase(Locale.ROOT)) {
            case "off" -> OFF;
            case "on" -> ON;
            case "always" -> ALWAYS;
            case "check" -> CHECK;
            default -> throw new IllegalArgumentException("JIT mode must be off, on, always or check, got '" + s + "'");
        };
    }

    public static JitMode fromSystemProperty() {
        String s = System.getProperty(PROPERTY);
        return s == null || s.isBlank() ? DEFAULT : parse(s);
    }
}
