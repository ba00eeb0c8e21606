package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.OpcodeTable;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * What the host lets the oracle do, probed once per test JVM ({@link #host()}) by running a few cases
 * through the native harness, so that the oracle skips exactly what the host cannot run, with the probe's
 * answer in the printed reason, instead of failing on the host's account (see {@link OraclePlan}).
 *
 * <p>Hosts differ here for reasons outside the emulator: a kernel without IA-32 emulation (a 6.x kernel
 * built with IA32_EMULATION_DEFAULT_DISABLED or booted with {@code ia32_emulation=0}, or one running
 * under a paravirtual hypervisor that forces it off, as PVM does) has no usable 32-bit user code segment
 * at 0x23, so the harness's far jump into compatibility mode raises #GP(0x20); such a hypervisor may also
 * claim INT vectors for itself and drop RFLAGS.NT from a user process when it interrupts it (PVM does both);
 * UMIP may be on (Linux then answers SGDT and friends with fake values) or off (they read the real
 * registers). A host without gcc cannot build the harness at all.
 *
 * @param harness  the native harness can be built (gcc, or a binary already in target/)
 * @param compat   a user process can enter 32-bit compatibility mode through CS 0x23 and come back
 * @param user32Cs the GDT entry 0x23 is a code segment visible at CPL 3 (LAR succeeds): the emulator's
 *                 mirror of the GDT ({@link LinuxGdt}) leaves the entry empty where it is not
 * @param ntKept   RFLAGS.NT set at CPL 3 survives the host's interrupts (as IRET restores it on Linux); where
 *                 it does not, whether a case sees NT depends on interrupt timing, so no case sets it
 * @param umip     how SGDT/SIDT/SLDT/STR/SMSW behave at CPL 3
 * @param intVectors the INT n vectors whose outcome is not the one Linux's IDT gives (vector -> what
 *                 the host did): a hypervisor's own vectors, never generated for INT imm8
 */
record HostCapabilities(Capability harness, Capability compat, Capability user32Cs, Capability ntKept, Umip umip,
                        SortedMap<Integer, String> intVectors) {

    HostCapabilities {
        intVectors = Collections.unmodifiableSortedMap(new TreeMap<>(intVectors));
    }

    /** A probed yes/no answer and what the probe saw, which every skip it causes prints. */
    record Capability(boolean present, String observed) {
        static Capability yes(String observed) { return new Capability(true, observed); }
        static Capability no(String observed) { return new Capability(false, observed); }
    }

    /** How the host answers the UMIP instructions at CPL 3. */
    enum UmipBehaviour {
        /** CR4.UMIP is set and Linux emulates them with fake values (arch/x86/kernel/umip.c). */
        EMULATED,
        /** No UMIP: they run natively and read the host's real registers. */
        NATIVE,
        /** CR4.UMIP is set and nothing emulates them: they fault. */
        FAULTS,
        /** The harness could not run. */
        NOT_PROBED
    }

    /** The UMIP probe's answer and what SGDT did. */
    record Umip(UmipBehaviour behaviour, String observed) {
        /** Why the UMIP forms cannot be compared with the emulated model (which leaves CR4.UMIP clear), probe included. */
        String reason() {
            return switch (behaviour) {
                case EMULATED -> "the host has CR4.UMIP and Linux emulates it at CPL 3 with fake values (arch/x86/kernel/umip.c;"
                        + " probe: " + observed + "); the emulated model leaves CR4.UMIP clear";
                case NATIVE -> "the host runs it natively at CPL 3 (no CR4.UMIP; probe: " + observed + "), so it reads the"
                        + " host's own descriptor-table registers and CR0, which the emulated machine does not mirror";
                case FAULTS -> "the host faults on it at CPL 3 (CR4.UMIP without emulation; probe: " + observed + ");"
                        + " the emulated model leaves CR4.UMIP clear";
                case NOT_PROBED -> "its host behaviour depends on UMIP, which was not probed (" + observed + ")";
            };
        }
    }

    /** The Linux GDT's 32-bit user code selector; Linux's fake SGDT base under UMIP (umip.c UMIP_DUMMY_GDT_BASE). */
    static final int USER32_CS = LinuxGdt.USER32_CS;
    static final long UMIP_DUMMY_GDT_BASE = 0xFFFF_FFFF_FFFE_0000L;

    /** A host with everything the oracle uses (what the oracle expects of a Linux x86-64 host with IA-32 emulation). */
    static HostCapabilities complete(String why) {
        return new HostCapabilities(Capability.yes(why), Capability.yes(why), Capability.yes(why), Capability.yes(why),
                new Umip(UmipBehaviour.EMULATED, why), new TreeMap<>());
    }

    HostCapabilities withCompat(Capability c) { return new HostCapabilities(harness, c, user32Cs, ntKept, umip, intVectors); }

    /** The INT n vectors the oracle may generate: not 0x80 (a real system call) and not the host's own. */
    boolean intVectorUsable(int v) { return v != 0x80 && !intVectors.containsKey(v); }

    private static HostCapabilities cached;
    private static boolean announced;

    /** The probed host, once per JVM, with the {@code oracle.host.*} overrides applied ({@link #overridden}). */
    static synchronized HostCapabilities host() throws IOException, InterruptedException {
        if (cached == null) cached = overridden(probe(), System.getProperties());
        return cached;
    }

    /**
     * Aborts the calling test (JUnit reports it skipped, not passed) when the harness cannot be built here,
     * printing the reason once per JVM.
     */
    static HostCapabilities assumeHarness() throws IOException, InterruptedException {
        HostCapabilities h = host();
        synchronized (HostCapabilities.class) {
            if (h.cannotRunLine() != null && !announced) {
                System.out.println(h.cannotRunLine());
                announced = true;
            }
        }
        assumeRunnable(h);
        return h;
    }

    /** Aborts the calling test when {@code h} cannot run the harness (the line is the abort message). */
    static void assumeRunnable(HostCapabilities h) {
        assumeTrue(h.cannotRunLine() == null, h::cannotRunLine);
    }

    /** The one line that says why the oracle cannot run on this host, or null when it can. */
    String cannotRunLine() {
        return harness.present() ? null : "oracle: the host-CPU oracle cannot run here (its tests are skipped): " + harness.observed();
    }

    /**
     * The probe's answer with the overrides of a run applied: {@code oracle.host.compat=absent} simulates a host
     * that cannot enter compatibility mode (what the oracle then skips can be seen on any host);
     * {@code =present} insists on it where the probe says no (the compatibility-mode cases then run and fail).
     */
    static HostCapabilities overridden(HostCapabilities probed, Properties p) {
        String c = p.getProperty("oracle.host.compat");
        if (c == null || c.isEmpty()) return probed;
        String why = "forced by -Doracle.host.compat=" + c + "; the probe said: " + probed.compat().observed();
        return switch (c) {
            case "absent" -> probed.withCompat(Capability.no(why));
            case "present" -> probed.withCompat(Capability.yes(why));
            default -> throw new IllegalArgumentException("oracle.host.compat must be 'absent' or 'present', not '" + c + "'");
        };
    }

    // ------------------------------------------------------------------ the probe

    private static final OpcodeTable.Entry PROBE = new OpcodeTable.Entry("PROBE", 0, 0, OpcodeTable.ANY, -1, 0,
            OpcodeTable.Imm.NONE, d -> null);
    private static final long CODE = HostHarness.CODE_ADDR + HostHarness.CODE_OFF;
    private static final int SGDT_AT = 0x800;
    /** About 20-60 ms of LOOP on current CPUs: several timer ticks. */
    static final long NT_LOOPS = 1L << 25;

    private static OracleCase probeCase(MachineState in, int... code) {
        byte[] b = new byte[code.length];
        for (int i = 0; i < code.length; i++) b[i] = (byte) code[i];
        return new OracleCase(PROBE, 0, new Encoding(b, 4, false, -1, -1, 0, 0, 0, -1, 0, new long[16]), in);
    }

    private static MachineState state(boolean compat) {
        MachineState s = new MachineState();
        s.compat = compat;
        s.gpr[4] = HostHarness.DATA_ADDR + 0x900; // a usable stack, should anything push
        return s;
    }

    private static MachineState[] run(Path binary, List<OracleCase> cases) throws IOException {
        try (HostHarness h = new HostHarness(binary)) {
            h.submit(cases);
            return h.collect();
        }
    }

    /** Runs the probe cases on this host. */
    static HostCapabilities probe() throws IOException, InterruptedException {
        String cannot = HostHarness.cannotBuild();
        if (cannot != null) {
            Capability none = Capability.no("not probed: " + cannot);
            return new HostCapabilities(Capability.no(cannot), none, none, none, new Umip(UmipBehaviour.NOT_PROBED, cannot),
                    new TreeMap<>());
        }
        Path bin = HostHarness.build();
        Capability compat = probeCompat(bin);

        // The 64-bit probes in one batch: LAR of 0x23, SGDT, LOOP with NT set, INT n for every vector but 0x80.
        List<OracleCase> cases = new ArrayList<>();
        MachineState lar = state(false);
        lar.gpr[1] = USER32_CS;
        cases.add(probeCase(lar, 0x0F, 0x02, 0xC1));                   // lar eax, ecx
        MachineState sgdt = state(false);
        sgdt.gpr[3] = HostHarness.DATA_ADDR + SGDT_AT;
        cases.add(probeCase(sgdt, 0x0F, 0x01, 0x03));                  // sgdt [rbx]
        MachineState loop = state(false);
        loop.rflags = 2 | Flags.NT;
        loop.gpr[1] = NT_LOOPS;
        cases.add(probeCase(loop, 0xE2, 0xFE));                        // loop $ (tens of milliseconds)
        List<Integer> vectors = new ArrayList<>();
        for (int v = 0; v < 256; v++) {
            if (v == 0x80) continue; // a real system call
            vectors.add(v);
            cases.add(probeCase(state(false), 0xCD, v));               // int v
        }
        MachineState[] r = run(bin, cases);

        Capability user32 = (r[0].rflags & Flags.ZF) != 0 && r[0].trap == MachineState.NO_TRAP
                ? Capability.yes(String.format("LAR 0x%x at CPL 3 read access rights %08x", USER32_CS, r[0].gpr[0] & 0xFFFF_FFFFL))
                : Capability.no(String.format("LAR 0x%x at CPL 3 %s", USER32_CS,
                        r[0].trap == MachineState.NO_TRAP ? "cleared ZF: no code segment the process can see" : "raised " + fault(r[0])));
        TreeMap<Integer, String> odd = new TreeMap<>();
        for (int i = 0; i < vectors.size(); i++) {
            String d = intDeviation(vectors.get(i), r[3 + i]);
            if (d != null) odd.put(vectors.get(i), d);
        }
        return new HostCapabilities(Capability.yes("gcc builds " + HostHarness.SOURCE), compat, user32, ntKept(r[2]),
                umip(r[1]), odd);
    }

    /**
     * INC EAX (40; a REX prefix in 64-bit mode) run in compatibility mode from EAX = 0x7FFFFFFF: EAX becomes
     * 0x80000000 with OF set only under the 32-bit rules. Alone in its harness, which a failed mode switch
     * could take down.
     */
    private static Capability probeCompat(Path bin) {
        MachineState in = state(true);
        in.gpr[0] = 0x7FFF_FFFFL;
        MachineState out;
        try {
            out = run(bin, List.of(probeCase(in, 0x40)))[0];
        } catch (IOException e) {
            return Capability.no("the harness died running one compatibility-mode case: " + e.getMessage());
        }
        boolean inCodePage = out.rip >= HostHarness.CODE_ADDR && out.rip < HostHarness.CODE_ADDR + 4096;
        if (out.trap != MachineState.NO_TRAP)
            return Capability.no(inCodePage
                    ? String.format("INC EAX in compatibility mode raised %s at %x", fault(out), out.rip)
                    : String.format("the far jump to 0x%x raised %s", USER32_CS, fault(out)));
        if ((out.gpr[0] & 0xFFFF_FFFFL) != 0x8000_0000L || (out.rflags & Flags.OF) == 0 || out.rip != CODE + 1)
            return Capability.no(String.format("INC EAX (40) did not run under the 32-bit rules: EAX=%x, OF=%d, RIP=%x",
                    out.gpr[0] & 0xFFFF_FFFFL, (out.rflags & Flags.OF) != 0 ? 1 : 0, out.rip));
        return Capability.yes(String.format("INC EAX (40) ran through CS 0x%x and returned to 64-bit mode", USER32_CS));
    }

    /**
     * LOOP $ from RCX = {@link #NT_LOOPS} with NT set: long enough for the host to interrupt the process a few
     * times (timer ticks), after which Linux's IRET has put NT back.
     */
    private static Capability ntKept(MachineState out) {
        String ran = String.format("NT set at CPL 3 around LOOP $ for 0x%x iterations", NT_LOOPS);
        if (out.trap != MachineState.NO_TRAP || out.gpr[1] != 0)
            return Capability.no(ran + String.format(": the loop did not complete (%s, RCX=%x)",
                    out.trap == MachineState.NO_TRAP ? "no trap" : fault(out), out.gpr[1]));
        return (out.rflags & Flags.NT) != 0 ? Capability.yes(ran + ": still set")
                : Capability.no(ran + ": cleared by the host in between");
    }

    /** SGDT [rbx] at CPL 3: Linux's fake GDTR under UMIP, a fault, or the real table register. */
    private static Umip umip(MachineState out) {
        if (out.trap != MachineState.NO_TRAP)
            return new Umip(UmipBehaviour.FAULTS, "SGDT raised " + fault(out));
        ByteBuffer b = ByteBuffer.wrap(out.mem, SGDT_AT - HostHarness.WIN_OFF, 10).order(ByteOrder.LITTLE_ENDIAN);
        int limit = b.getShort() & 0xFFFF;
        long base = b.getLong();
        String saw = String.format("SGDT stored base %x, limit %x", base, limit);
        return new Umip(base == UMIP_DUMMY_GDT_BASE && limit == 0 ? UmipBehaviour.EMULATED : UmipBehaviour.NATIVE, saw);
    }

    /**
     * What INT v did when that differs from Linux's IDT ({@link LinuxUserEnvironment}: DPL-3 gates for 3 and 4,
     * trapping with RIP after the instruction; #GP(v * 8 + 2) at the instruction for every other vector), or null.
     */
    static String intDeviation(int v, MachineState out) {
        long after = CODE + 2;
        boolean linux = v == 3 || v == 4
                ? out.trap == v && out.rip == after
                : out.trap == Exceptions.GP && out.err == v * 8 + 2 && out.rip == CODE;
        if (linux) return null;
        if (out.trap == MachineState.NO_TRAP) return "no exception";
        return fault(out) + (out.rip == CODE ? "" : out.rip == after ? " after the instruction" : String.format(" at %x", out.rip));
    }

    /** "#GP(0x20)" for the vectors whose error code Linux passes through, else the vector's name. */
    static String fault(MachineState out) {
        String n = HostCpuOracleTest.trapName(out.trap);
        return SystemForms.errorCodeCompared(out.trap) ? String.format("%s(0x%x)", n, out.err) : n;
    }

    /** The INT vectors that are not Linux's, as printed: "0x17 (#GP(0x0) after the instruction), 0x1a (no exception)". */
    String intVectorsDescribed() {
        return intVectors.entrySet().stream().map(e -> String.format("0x%x (%s)", e.getKey(), e.getValue()))
                .collect(Collectors.joining(", "));
    }
}
