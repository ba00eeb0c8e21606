package dev.polyvisor.guest;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class AptCacheTest {
    @Test
    void aptCacheKeepsItsBinaryCacheInPolyvisorsCacheAndAnswersAsApt() throws Exception {
        String[] cmd = DebianPackages.aptCache("policy", "busybox-static");
        Path cache = GuestCache.directory().resolve("apt-host").resolve("pkgcache.bin");
        assertEquals(List.of("apt-cache", "-o", "Dir::Cache::pkgcache=" + cache, "-o", "Dir::Cache::srcpkgcache=", "policy", "busybox-static"),
                List.of(cmd));
        Assumptions.assumeTrue(onPath("apt-cache"), "no apt-cache on this host: the query itself is not run (skipped)");
        // The same candidate as apt's own configuration gives, and the cache file is there for the next query.
        String plain = candidate(new ProcessBuilder("apt-cache", "policy", "busybox-static"));
        String cached = candidate(new ProcessBuilder(cmd));
        assertEquals(plain, cached);
        assertTrue(Files.size(cache) > 0, cache + " was not written");
        assertEquals(plain, "Candidate: " + DebianPackages.candidateVersion("busybox-static"));
    }

    private static String candidate(ProcessBuilder pb) throws Exception {
        Process p = pb.redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), out);
        return out.lines().map(String::strip).filter(l -> l.startsWith("Candidate:")).findFirst().orElse("none: " + out);
    }

    private static boolean onPath(String tool) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":"))
            if (Files.isExecutable(Path.of(d, tool))) return true;
        return false;
    }
}
