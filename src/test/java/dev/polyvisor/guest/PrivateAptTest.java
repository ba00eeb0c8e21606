package dev.polyvisor.guest;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The private apt configuration per suite (PrivateApt) and the apt-side parsing of DebianPackages; no network. */
class PrivateAptTest {
    @TempDir Path dir;

    private PrivateApt apt(String suite) {
        return new PrivateApt(suite, dir.resolve(suite), PrivateApt.DEFAULT_MIRROR, PrivateApt.DEFAULT_SECURITY_MIRROR);
    }

    private static final String SIGNED = "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ";

    @Test
    void sourcesCarryTheSuiteAndWhatItBuildsOn() {
        assertEquals(List.of(SIGNED + "http://deb.debian.org/debian bookworm main",
                        SIGNED + "http://deb.debian.org/debian bookworm-updates main",
                        SIGNED + "http://deb.debian.org/debian-security bookworm-security main"),
                debLines(apt("bookworm").sourcesList()));
        assertEquals(List.of(SIGNED + "http://deb.debian.org/debian bookworm main",
                        SIGNED + "http://deb.debian.org/debian bookworm-updates main",
                        SIGNED + "http://deb.debian.org/debian bookworm-backports main",
                        SIGNED + "http://deb.debian.org/debian-security bookworm-security main"),
                debLines(apt("bookworm-backports").sourcesList()));
        assertEquals(List.of(SIGNED + "http://deb.debian.org/debian trixie main",
                        SIGNED + "http://deb.debian.org/debian trixie-updates main",
                        SIGNED + "http://deb.debian.org/debian-security trixie-security main"),
                debLines(apt("trixie").sourcesList()));
        assertEquals(List.of(SIGNED + "http://deb.debian.org/debian sid main"), debLines(apt("sid").sourcesList()));
        assertEquals(List.of(SIGNED + "http://deb.debian.org/debian sid main", SIGNED + "http://deb.debian.org/debian experimental main"),
                debLines(apt("experimental").sourcesList()));
        PrivateApt mirrored = new PrivateApt("sid", dir, "http://mirror.example/debian", "http://mirror.example/security");
        assertEquals(List.of(SIGNED + "http://mirror.example/debian sid main"), debLines(mirrored.sourcesList()));
    }

    private static List<String> debLines(String sources) {
        return sources.lines().filter(l -> l.startsWith("deb ")).toList();
    }

    @Test
    void everyDirectoryAptWritesOrReadsSourcesFromIsPrivate() {
        PrivateApt a = apt("trixie");
        Map<String, String> conf = parseConf(a.aptConf());
        Path d = dir.resolve("trixie");
        assertEquals(d.resolve("state").toString(), conf.get("Dir::State"));
        assertEquals(d.resolve("state/lists") + "/", conf.get("Dir::State::lists"));
        assertEquals(d.resolve("state/status").toString(), conf.get("Dir::State::status"));
        assertEquals(d.resolve("cache").toString(), conf.get("Dir::Cache"));
        assertEquals(d.resolve("cache/archives") + "/", conf.get("Dir::Cache::archives"));
        assertEquals(d.resolve("sources.list").toString(), conf.get("Dir::Etc::sourcelist"));
        assertEquals(d.resolve("sources.list.d").toString(), conf.get("Dir::Etc::sourceparts"));
        assertEquals(d.resolve("preferences").toString(), conf.get("Dir::Etc::preferences"));
        assertEquals(d.resolve("preferences.d").toString(), conf.get("Dir::Etc::preferencesparts"));
        // The host's apt.conf.d (proxy, Check-Valid-Until, ...) is left alone: Dir::Etc::parts is not set.
        assertFalse(conf.containsKey("Dir::Etc::parts"));
        assertFalse(conf.containsKey("Dir::Etc::main"));
        for (var e : conf.entrySet())
            if (e.getKey().startsWith("Dir::")) assertTrue(e.getValue().isEmpty() || e.getValue().startsWith(d.toString()), e.toString());
        assertNull(conf.get("APT::Default-Release"), "stable suites take apt's normal priorities (security updates win)");
        assertEquals("bookworm-backports", parseConf(apt("bookworm-backports").aptConf()).get("APT::Default-Release"));
        assertEquals("experimental", parseConf(apt("experimental").aptConf()).get("APT::Default-Release"));
        assertEquals(List.of("apt-get", "-c", d.resolve("apt.conf").toString(), "update"), a.command("apt-get", "update"));
    }

    /** The key "value"; lines of the generated file. */
    private static Map<String, String> parseConf(String text) {
        Map<String, String> m = new HashMap<>();
        for (String l : text.lines().toList()) {
            if (l.startsWith("//") || l.isBlank()) continue;
            int sp = l.indexOf(' ');
            assertTrue(l.endsWith("\";") && l.charAt(sp + 1) == '"', l);
            m.put(l.substring(0, sp), l.substring(sp + 2, l.length() - 2));
        }
        return m;
    }

    @Test
    void writeCreatesTheTreeAndAptReadsItOverTheHostConfiguration() throws Exception {
        PrivateApt a = apt("sid");
        a.write();
        Path d = dir.resolve("sid");
        for (String p : new String[] {"apt.conf", "sources.list", "preferences", "state/status"}) assertTrue(Files.isRegularFile(d.resolve(p)), p);
        for (String p : new String[] {"sources.list.d", "preferences.d", "state/lists/partial", "cache/archives/partial"})
            assertTrue(Files.isDirectory(d.resolve(p)), p);
        assertEquals(a.sourcesList(), Files.readString(d.resolve("sources.list")));
        assertFalse(a.hasLists());
        a.write(); // idempotent
        // apt-config reads the configuration as apt-get will (no network): our -c file wins over /etc/apt.
        Process p;
        try {
            p = new ProcessBuilder(a.command("apt-config", "dump")).redirectErrorStream(true).start();
        } catch (java.io.IOException noApt) {
            assumeTrue(false, "apt-config is not installed here: " + noApt.getMessage());
            return;
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        assertTrue(out.contains("Dir::Etc::sourcelist \"" + d.resolve("sources.list") + "\";"), out);
        assertTrue(out.contains("Dir::State::lists \"" + d.resolve("state/lists") + "/\";"), out);
        assertTrue(out.contains("Dir::Cache::archives \"" + d.resolve("cache/archives") + "/\";"), out);
    }

    @Test
    void unknownSuitesAreRefusedNamingTheValidOnes() {
        String m = assertThrows(IllegalArgumentException.class, () -> apt("buster")).getMessage();
        assertEquals("unknown suite 'buster': valid suites are bookworm, bookworm-backports, trixie, sid, experimental", m);
        assertEquals(m, assertThrows(IllegalArgumentException.class, () -> KernelSource.parse("linux-image-cloud-amd64", "buster")).getMessage());
    }

    @Test
    void kernelSourcesParseAptsNameEqualsVersionNotation() {
        assertEquals(new KernelSource("linux-image-cloud-amd64", null, "bookworm"), KernelSource.parse(null, null));
        assertEquals(new KernelSource("linux-image-cloud-amd64", "7.2.13-1", "sid"), KernelSource.parse("linux-image-cloud-amd64=7.2.13-1", "sid"));
        assertEquals("linux-image-6.12.118+deb13-cloud-amd64", KernelSource.parse("linux-image-6.12.118+deb13-cloud-amd64", "trixie").aptSpec());
        assertEquals("linux-image-cloud-amd64=1:2.0~rc1-1", KernelSource.parse("linux-image-cloud-amd64=1:2.0~rc1-1", "experimental").aptSpec());
        assertThrows(IllegalArgumentException.class, () -> KernelSource.parse("linux image", "sid"));
        assertThrows(IllegalArgumentException.class, () -> KernelSource.parse("linux-image-cloud-amd64=", "sid"));
        assertThrows(IllegalArgumentException.class, () -> KernelSource.parse("-o=Dir::Etc=/tmp", "sid"));
    }

    @Test
    void onlyKernelPartsOfTheDependsFieldAreFollowed() {
        // sid's 7.x: the empty image package depends on its binary, modules and base packages (exact versions).
        List<String[]> d = DebianPackages.kernelDepends("dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, "
                + "linux-base-7.2.13+deb14-cloud-amd64 (= 7.2.13-1), linux-binary-7.2.13+deb14-cloud-amd64 (= 7.2.13-1), "
                + "linux-modules-7.2.13+deb14-cloud-amd64 (= 7.2.13-1)");
        assertEquals(List.of("linux-base-7.2.13+deb14-cloud-amd64=7.2.13-1", "linux-binary-7.2.13+deb14-cloud-amd64=7.2.13-1",
                "linux-modules-7.2.13+deb14-cloud-amd64=7.2.13-1"), d.stream().map(x -> x[0] + "=" + x[1]).toList());
        // bookworm's 6.1: kmod, the linux-base helper package and initramfs tools are not kernel parts.
        assertEquals(List.of(), DebianPackages.kernelDepends("kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool"));
        // A metapackage: its versioned image, unversioned when the field says so.
        List<String[]> meta = DebianPackages.kernelDepends("linux-image-6.12.118+deb13-cloud-amd64");
        assertEquals(1, meta.size());
        assertEquals("linux-image-6.12.118+deb13-cloud-amd64", meta.getFirst()[0]);
        assertNull(meta.getFirst()[1]);
    }

    @Test
    void parsesAptCacheShowRecords() {
        var recs = DebianPackages.parseRecords(List.of("Package: a", "Version: 1", "Description: x", " more", "", "Package: b", "Version: 2", ""));
        assertEquals(2, recs.size());
        assertEquals("x\nmore", recs.get(0).get("Description"));
        assertEquals("2", recs.get(1).get("Version"));
    }
}
