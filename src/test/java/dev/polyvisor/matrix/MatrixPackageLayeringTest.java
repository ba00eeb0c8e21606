package dev.polyvisor.matrix;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** package-info.java's rule: dev.polyvisor.matrix never imports the CLI (the kernel command line builder is passed in). */
class MatrixPackageLayeringTest {
    @Test
    void importsNoCli() throws Exception {
        Path dir = Path.of("src/main/java/dev/polyvisor/matrix");
        assertTrue(Files.isDirectory(dir), "run from the project root: " + dir.toAbsolutePath());
        List<String> bad;
        try (Stream<Path> files = Files.list(dir)) {
            bad = files.filter(p -> p.toString().endsWith(".java")).flatMap(p -> {
                try {
                    return Files.readAllLines(p).stream().map(String::strip)
                            .filter(l -> (l.startsWith("import ") && l.contains("dev.polyvisor.cli")) || l.contains("dev.polyvisor.cli."))
                            .map(l -> p.getFileName() + ": " + l);
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }).toList();
        }
        assertEquals(List.of(), bad);
    }
}
