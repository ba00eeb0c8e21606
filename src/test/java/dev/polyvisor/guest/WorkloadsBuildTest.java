package dev.polyvisor.guest;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.junit.jupiter.api.Assertions.*;

class WorkloadsBuildTest {
    @Test
    void twoBuildersOnAFreshCacheBothGetTheBinary(@TempDir Path cache) throws Exception {
        Assumptions.assumeTrue(gccPresent(), "no gcc on this host: pv-workloads cannot be built (skipped)");
        String old = System.getProperty("polyvisor.cache");
        System.setProperty("polyvisor.cache", cache.toString());
        try {
            List<Path> got;
            try (ExecutorService pool = Executors.newFixedThreadPool(3)) {
                List<Future<Path>> f = Stream.of(1, 2, 3).map(i -> pool.submit(Workloads::binary)).toList();
                got = f.stream().map(x -> { try { return x.get(); } catch (Exception e) { throw new AssertionError(e); } }).toList();
            }
            assertEquals(1, got.stream().distinct().count(), got.toString());
            assertTrue(Files.isExecutable(got.getFirst()));
            try (Stream<Path> left = Files.list(got.getFirst().getParent())) {
                assertEquals(List.of("pv-workloads", "pv_workloads.c"), left.map(p -> p.getFileName().toString()).sorted().toList(),
                        "no builder's temporary files are left");
            }
        } finally {
            if (old == null) System.clearProperty("polyvisor.cache");
            else System.setProperty("polyvisor.cache", old);
        }
    }

    private static boolean gccPresent() {
        try {
            return new ProcessBuilder("gcc", "--version").redirectErrorStream(true).start().waitFor() == 0;
        } catch (Exception e) {
            return false;
        }
    }
}
