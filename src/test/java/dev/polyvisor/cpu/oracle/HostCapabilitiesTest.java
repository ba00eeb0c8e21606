package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.decode.OpcodeTable;
import dev.polyvisor.cpu.decode.OpcodeTable.Entry;
import dev.polyvisor.cpu.exec.Isa;
import org.junit.jupiter.api.Test;
import org.opentest4j.TestAbortedException;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The host probe's consequences, with the probe's answer forced, so that what the oracle does on a host
 * without a capability is checked on any host: which forms it skips and why, that every form stays
 * accounted for by the coverage guard, and that a capable host skips none of them.
 */
class HostCapabilitiesTest {
    private static final List<Entry> TABLE = Isa.table().entries();
    private static final String NO_COMPAT = "the far jump to 0x23 raised #GP(0x20)";

    private static final HostCapabilities CAPABLE = HostCapabilities.complete("forced present by the test");
    private static final HostCapabilities NO_COMPAT_HOST = CAPABLE.withCompat(HostCapabilities.Capability.no(NO_COMPAT));

    private static Set<String> ids(OraclePlan p, OraclePlan.Modes m) {
        return p.forms().stream().filter(f -> f.modes() == m).map(f -> HostCpuOracleTest.formId(f.entry())).collect(Collectors.toSet());
    }

    private static Set<String> planned(OraclePlan p) {
        return p.forms().stream().map(f -> HostCpuOracleTest.formId(f.entry())).collect(Collectors.toSet());
    }

    @Test
    void aHostWithCompatibilityModeRunsTheCompatibilityFormsAndSkipsNothingForTheHost() {
        OraclePlan p = OraclePlan.of(TABLE, null, CAPABLE);
        assertEquals(List.of(), p.hostSkipped());
        assertEquals(List.of(), p.hostLines());
        assertEquals(List.of(), p.unaccounted(TABLE, null), "every form is planned or skipped with a reason");
        Set<String> compatOnly = ids(p, OraclePlan.Modes.COMPAT);
        for (String m : List.of("DAA ", "AAM ", "INC "))
            assertTrue(compatOnly.stream().anyMatch(id -> id.startsWith(m)), "the NO64 forms run in compatibility mode: " + compatOnly);
        assertFalse(ids(p, OraclePlan.Modes.BOTH).isEmpty(), "forms valid in both modes get a compatibility-mode share");
        for (String why : p.skipped().values()) assertFalse(why.contains("compatibility mode ("), why);
    }

    @Test
    void aHostWithoutCompatibilityModeSkipsExactlyItsCasesWithTheProbeResult() {
        OraclePlan full = OraclePlan.of(TABLE, null, CAPABLE);
        OraclePlan none = OraclePlan.of(TABLE, null, NO_COMPAT_HOST);
        String reason = "host cannot enter 32-bit compatibility mode (" + NO_COMPAT + ")";

        // The compatibility-only forms are skipped for the host reason, and nothing else is newly skipped.
        Set<String> compatOnly = ids(full, OraclePlan.Modes.COMPAT);
        assertEquals(compatOnly, Set.copyOf(none.hostSkipped()));
        Map<String, String> expected = new TreeMap<>(full.skipped());
        for (String id : compatOnly) expected.put(id, reason);
        assertEquals(expected, new TreeMap<>(none.skipped()), "skipped forms and their reasons");

        // The forms that had a compatibility-mode share keep all their cases, in 64-bit mode.
        Set<String> both = ids(full, OraclePlan.Modes.BOTH);
        assertEquals(Set.of(), ids(none, OraclePlan.Modes.BOTH));
        assertEquals(Set.of(), ids(none, OraclePlan.Modes.COMPAT));
        Set<String> stillPlanned = new HashSet<>(planned(full));
        stillPlanned.removeAll(compatOnly);
        assertEquals(stillPlanned, planned(none));
        assertTrue(ids(none, OraclePlan.Modes.LONG).containsAll(both));

        // The coverage guard still accounts for every form.
        assertEquals(List.of(), none.unaccounted(TABLE, null));
        assertEquals(TABLE.stream().filter(e -> e.has(OpcodeTable.ORACLE) || SystemForms.handles(e)).map(HostCpuOracleTest::formId)
                        .collect(Collectors.toSet()),
                union(planned(none), none.skipped().keySet()));

        // One printed line names the capability, the probe's answer and what is skipped.
        List<String> lines = none.hostLines().stream().filter(l -> l.contains("compatibility mode")).toList();
        assertEquals(1, lines.size(), none.hostLines().toString());
        assertEquals(String.format("oracle: %s: %d compatibility-only forms are skipped, and the other %d forms with a"
                + " compatibility-mode share run all their cases in 64-bit mode", reason, compatOnly.size(), both.size()), lines.get(0));
    }

    @Test
    void theOnlyFilterKeepsTheGuardWhole() {
        OraclePlan p = OraclePlan.of(TABLE, "DAA", NO_COMPAT_HOST);
        assertEquals(List.of(), p.forms());
        assertEquals(Set.of("DAA [27]"), p.skipped().keySet());
        assertEquals(List.of(), p.unaccounted(TABLE, "DAA"));
    }

    private static Set<String> union(Set<String> a, Set<String> b) {
        Set<String> u = new HashSet<>(a);
        u.addAll(b);
        return u;
    }

    @Test
    void thePropertyForcesTheAnswerAndKeepsTheProbes() {
        HostCapabilities probed = CAPABLE.withCompat(HostCapabilities.Capability.no(NO_COMPAT));
        assertSame(probed, HostCapabilities.overridden(probed, new Properties()));
        Properties p = new Properties();
        p.setProperty("oracle.host.compat", "absent");
        HostCapabilities absent = HostCapabilities.overridden(CAPABLE, p);
        assertFalse(absent.compat().present());
        assertTrue(absent.compat().observed().contains("forced by -Doracle.host.compat=absent"), absent.compat().observed());
        assertEquals(CAPABLE.user32Cs(), absent.user32Cs(), "only the compatibility-mode answer is forced");
        p.setProperty("oracle.host.compat", "present");
        HostCapabilities present = HostCapabilities.overridden(probed, p);
        assertTrue(present.compat().present());
        assertTrue(present.compat().observed().contains(NO_COMPAT), "the probe's own answer is kept in the text");
        p.setProperty("oracle.host.compat", "maybe");
        assertThrows(IllegalArgumentException.class, () -> HostCapabilities.overridden(probed, p));
    }

    @Test
    void withoutTheHarnessTheOracleIsSkippedNotPassed() {
        String why = "gcc, which builds src/test/native/oracle_harness.c, cannot be run (no such file)";
        HostCapabilities.Capability none = HostCapabilities.Capability.no("not probed: " + why);
        HostCapabilities noGcc = new HostCapabilities(HostCapabilities.Capability.no(why), none, none, none,
                new HostCapabilities.Umip(HostCapabilities.UmipBehaviour.NOT_PROBED, why), new TreeMap<>());
        TestAbortedException e = assertThrows(TestAbortedException.class, () -> HostCapabilities.assumeRunnable(noGcc));
        assertTrue(e.getMessage().contains(why), e.getMessage());
        assertNull(CAPABLE.cannotRunLine());
        HostCapabilities.assumeRunnable(CAPABLE); // does not abort
    }

    @Test
    void theUmipReasonsComeFromTheProbe() {
        for (HostCapabilities.UmipBehaviour b : HostCapabilities.UmipBehaviour.values()) {
            String saw = "SGDT stored base 1234, limit 7f (" + b + ")";
            HostCapabilities h = new HostCapabilities(CAPABLE.harness(), CAPABLE.compat(), CAPABLE.user32Cs(), CAPABLE.ntKept(),
                    new HostCapabilities.Umip(b, saw), new TreeMap<>());
            Map<String, String> skipped = OraclePlan.of(TABLE, null, h).skipped();
            for (String id : List.of("SGDT / VMCALL [0F 01 /0]", "SIDT / CLAC / STAC [0F 01 /1]", "SMSW [0F 01 /4]", "SLDT [0F 00 /0]", "STR [0F 00 /1]")) {
                assertTrue(skipped.containsKey(id), id + " in " + skipped.keySet());
                assertTrue(skipped.get(id).contains(saw), skipped.get(id));
            }
            String sgdt = skipped.get("SGDT / VMCALL [0F 01 /0]");
            switch (b) {
                case EMULATED -> assertTrue(sgdt.contains("Linux emulates"), sgdt);
                case NATIVE -> assertTrue(sgdt.contains("natively"), sgdt);
                case FAULTS -> assertTrue(sgdt.contains("faults"), sgdt);
                case NOT_PROBED -> assertTrue(sgdt.contains("not probed"), sgdt);
            }
        }
    }

    @Test
    void theHostsOwnIntVectorsAreNeverGenerated() {
        TreeMap<Integer, String> odd = new TreeMap<>(Map.of(0x17, "#GP(0x0) after the instruction", 0x1A, "no exception"));
        HostCapabilities h = new HostCapabilities(CAPABLE.harness(), CAPABLE.compat(), CAPABLE.user32Cs(), CAPABLE.ntKept(),
                CAPABLE.umip(), odd);
        Entry intN = TABLE.stream().filter(e -> e.map() == OpcodeTable.MAP_1BYTE && e.opcode() == 0xCD).findFirst().orElseThrow();
        Set<Long> drawnCapable = new HashSet<>(), drawnOdd = new HashSet<>();
        SplittableRandom r1 = new SplittableRandom(1), r2 = new SplittableRandom(1);
        for (int i = 0; i < 20_000; i++) {
            drawnCapable.add(SystemForms.encode(intN, r1, CAPABLE).imm());
            drawnOdd.add(SystemForms.encode(intN, r2, h).imm());
        }
        assertTrue(drawnCapable.contains(0x17L) && drawnCapable.contains(0x1AL), "a Linux host gets every vector but 0x80");
        assertFalse(drawnCapable.contains(0x80L));
        for (long v : List.of(0x17L, 0x1AL, 0x80L)) assertFalse(drawnOdd.contains(v), "vector " + v);
        List<String> lines = OraclePlan.of(TABLE, null, h).hostLines();
        assertEquals(1, lines.size(), lines.toString());
        assertTrue(lines.get(0).contains("0x17 (#GP(0x0) after the instruction), 0x1a (no exception)"), lines.get(0));
        assertEquals(List.of(), OraclePlan.of(TABLE, null, CAPABLE).hostLines());
    }

    @Test
    void intOutcomesAreComparedWithLinuxsIdt() {
        long at = HostHarness.CODE_ADDR + HostHarness.CODE_OFF;
        assertNull(HostCapabilities.intDeviation(0x21, outcome(Exceptions.GP, 0x21 * 8 + 2, at)), "DPL-0 gate: #GP(n*8+2)");
        assertNull(HostCapabilities.intDeviation(3, outcome(Exceptions.BP, 0, at + 2)), "INT 3: #BP after it");
        assertNull(HostCapabilities.intDeviation(4, outcome(Exceptions.OF, 0, at + 2)), "INT 4: #OF after it");
        assertEquals("#GP(0x0) after the instruction", HostCapabilities.intDeviation(0x17, outcome(Exceptions.GP, 0, at + 2)));
        assertEquals("#UD", HostCapabilities.intDeviation(0x1B, outcome(Exceptions.UD, 0, at)));
        assertEquals("no exception", HostCapabilities.intDeviation(0x1A, outcome(MachineState.NO_TRAP, 0, at + 2)));
    }

    private static MachineState outcome(int trap, int err, long rip) {
        MachineState s = new MachineState();
        s.trap = trap;
        s.err = err;
        s.rip = rip;
        return s;
    }

    /** Where the host drops NT, no generated POPF or IRET input carries it; the other inputs are drawn as before. */
    @Test
    void withoutNtTheStackImagesLoseIt() {
        HostCapabilities h = new HostCapabilities(CAPABLE.harness(), CAPABLE.compat(), CAPABLE.user32Cs(),
                HostCapabilities.Capability.no("NT cleared"), CAPABLE.umip(), new TreeMap<>());
        List<String> lines = OraclePlan.of(TABLE, null, h).hostLines();
        assertEquals(1, lines.size(), lines.toString());
        assertTrue(lines.get(0).startsWith("oracle: host does not keep RFLAGS.NT at CPL 3 (NT cleared)"), lines.get(0));
        int images = 0;
        for (Entry e : TABLE) {
            boolean popf = e.map() == OpcodeTable.MAP_1BYTE && e.opcode() == 0x9D, iret = e.map() == OpcodeTable.MAP_1BYTE && e.opcode() == 0xCF;
            if (!(popf || iret) || !Flow.covers(e)) continue;
            SplittableRandom r = new SplittableRandom(7);
            for (int i = 0; i < 2000; i++) {
                Encoding enc = Encoder.encode(e, r);
                MachineState in = HostCpuOracleTest.input(r, e, enc);
                Flow.clearNt(e, enc, in);
                assertEquals(0, in.rflags & Flags.NT);
                long image = in.gpr[4] + (iret ? 2L * enc.opSize() : 0);
                long off = image - HostHarness.DATA_ADDR - HostHarness.WIN_OFF;
                if (off < 0 || off + 1 >= MachineState.WINDOW) continue;
                assertEquals(0, in.mem[(int) off + 1] & (Flags.NT >>> 8), "NT in the popped image of " + enc.hex());
                images++;
            }
        }
        assertTrue(images > 1000, "images checked: " + images);
    }

    /** Without a 32-bit user code segment the emulator's GDT mirror behaves as such a host does at CPL 3. */
    @Test
    void theGdtMirrorFollowsTheProbedUserCodeSegment() {
        for (boolean user32 : new boolean[] {true, false}) {
            try (EmulatedHost emu = new EmulatedHost(user32)) {
                MachineState in = new MachineState();
                in.gpr[1] = 0x23;
                MachineState lar = emu.run(new byte[] {0x0F, 0x02, (byte) 0xC1}, in);          // lar eax, ecx
                assertEquals(MachineState.NO_TRAP, lar.trap);
                assertEquals(user32, (lar.rflags & Flags.ZF) != 0, "LAR 0x23 with user32Cs=" + user32);
                MachineState load = emu.run(new byte[] {(byte) 0x8E, (byte) 0xD9}, in);        // mov ds, ecx
                assertEquals(user32 ? MachineState.NO_TRAP : Exceptions.GP, load.trap);
                if (!user32) assertEquals(0x20, load.err, "#GP(selector) as the host reports it");
            }
        }
    }

    /** The probe on this host: whatever it finds, the plan accounts for every form. */
    @Test
    void thisHostsPlanAccountsForEveryForm() throws Exception {
        String os = System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        org.junit.jupiter.api.Assumptions.assumeTrue(os.contains("linux") && (arch.equals("amd64") || arch.equals("x86_64")),
                "needs an x86-64 Linux host");
        HostCapabilities h = HostCapabilities.assumeHarness();
        OraclePlan p = OraclePlan.of(TABLE, null, h);
        assertEquals(List.of(), p.unaccounted(TABLE, null));
        assertEquals(h.compat().present(), p.hostSkipped().isEmpty(), "compatibility-only forms are skipped exactly when the host lacks the mode");
    }
}
