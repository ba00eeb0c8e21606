package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.decode.OpcodeTable;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Differences between the host and the emulator whose cause is known and reported (other engineers'
 * open bugs, a spine limitation, a vendor difference): they are counted and printed in the oracle's
 * summary instead of failing the build. Every entry says why; remove it as soon as the cause is fixed
 * (the summary says when a form entry saw no mismatch).
 */
final class Known {
    private Known() {}

    /**
     * Forms with known, reported mismatches that are someone else's open bug: id -> reason. Their
     * mismatches are printed but do not fail the build.
     */
    static final Map<String, String> FORMS = forms();

    private static Map<String, String> forms() {
        Map<String, String> m = new TreeMap<>();
        // (none open: add "form id" -> "reason" here, and report it)
        return m;
    }

    /** A class of differences with a known cause outside the oracle, recognised from the case and its results. */
    record KnownDifference(String name, String reason, Matcher matcher) {
        interface Matcher { boolean matches(OracleCase c, MachineState host, MachineState emu, List<String> diffs); }
    }

    /**
     * Known difference classes, each printed with its count in the summary. Keep this list short and
     * remove an entry as soon as its cause is fixed.
     */
    static final List<KnownDifference> DIFFERENCES = List.of(
            new KnownDifference("host hypervisor: INT1 reported at the instruction",
                    "INT1/ICEBP (F1) is a trap: the saved RIP is the next instruction (SDM Vol. 3A 6.15, interrupt 1; Vol. 2"
                            + " 'INT n/INTO/INT3/INT1'), as the emulator reports; the host reports RIP at the F1. The host is a"
                            + " virtual machine (cpuinfo 'hypervisor'): attributed to its hypervisor's interception and"
                            + " re-injection of ICEBP/#DB (not verified on bare metal)",
                    (c, h, e, d) -> c.entry().map() == OpcodeTable.MAP_1BYTE && c.entry().opcode() == 0xF1 && d.size() == 1
                            && d.get(0).startsWith("rip ") && h.trap == Exceptions.DB && e.trap == Exceptions.DB
                            && h.rip == HostHarness.CODE_ADDR + HostHarness.CODE_OFF
                            && e.rip == h.rip + c.enc().bytes().length),
            new KnownDifference("host: SYSEXIT at CPL 3 in long mode is #GP(0)",
                    "the AMD model raises #UD, as the AMD APM says ('SYSEXIT is invalid in long mode') and as an AMD host"
                            + " running it natively reports (seen under the PVM hypervisor); a KVM host on AMD intercepts the"
                            + " #UD and emulates SYSEXIT with the privilege check first (arch/x86/kvm/emulate.c), so it"
                            + " reports #GP(0) at CPL 3",
                    (c, h, e, d) -> c.entry().map() == OpcodeTable.MAP_0F && c.entry().opcode() == 0x35 && !c.compat()
                            && d.size() == 1 && d.get(0).startsWith("trap ") && h.trap == Exceptions.GP && h.err == 0
                            && e.trap == Exceptions.UD && h.rip == e.rip));

    /** Index into {@link #DIFFERENCES} of the first class that explains a mismatch, or -1. */
    static int difference(OracleCase c, MachineState host, MachineState emu, List<String> diffs) {
        for (int k = 0; k < DIFFERENCES.size(); k++)
            if (DIFFERENCES.get(k).matcher().matches(c, host, emu, diffs)) return k;
        return -1;
    }
}
