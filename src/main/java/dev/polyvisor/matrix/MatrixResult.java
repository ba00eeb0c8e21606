package dev.polyvisor.matrix;

import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A whole matrix: what was booted, how, and every cell (schema {@value #SCHEMA}, docs/MATRIX.md).
 *
 * @param schema      {@value #SCHEMA}
 * @param planVersion {@link MatrixPlan#VERSION}
 * @param kernel      the kernel booted
 * @param settings    how each cell ran
 * @param cells       the cells, in plan order
 * @param host        host-side facts (not compared)
 */
public record MatrixResult(String schema, int planVersion, Kernel kernel, Settings settings, List<CellResult> cells, Host host) {
    public static final String SCHEMA = "polyvisor-matrix/1";

    public MatrixResult { cells = List.copyOf(cells); }

    /**
     * @param sha256  of the bzImage
     * @param release {@code uname -r}, when known
     * @param pkg     the Debian package, when known
     * @param version the package version, when known
     */
    public record Kernel(String sha256, String release, String pkg, String version) {}

    /** The cells' run settings as recorded: vCPUs, RAM, the full kernel command line, the workload id, the virtual timeout. */
    public record Settings(int smp, int memoryMiB, String commandLine, String workload, long virtualTimeoutSeconds) {}

    /** Host-side facts: when, how long, how many jobs, which cells came from the cache. */
    public record Host(String generatedAt, long wallMillis, int jobs, int cellsRun, int cellsCached, Map<String, String> kernelPaths) {}

    public Optional<CellResult> cell(String id) { return cells.stream().filter(c -> c.id().equals(id)).findFirst(); }
}
