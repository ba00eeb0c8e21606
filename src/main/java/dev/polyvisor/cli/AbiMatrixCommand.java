package dev.polyvisor.cli;

import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImageException;
import dev.polyvisor.matrix.CellResult;
import dev.polyvisor.matrix.CellWorkload;
import dev.polyvisor.matrix.PvWorkloads;
import dev.polyvisor.matrix.MatrixCompare;
import dev.polyvisor.matrix.MatrixHtml;
import dev.polyvisor.matrix.MatrixJson;
import dev.polyvisor.matrix.MatrixMarkdown;
import dev.polyvisor.matrix.MatrixPlan;
import dev.polyvisor.matrix.MatrixResult;
import dev.polyvisor.matrix.MatrixRunner;
import dev.polyvisor.matrix.MatrixSettings;
import dev.polyvisor.vmm.boot.LoadException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/**
 * {@code polyvisor abi matrix}: the coupling matrix (issue 10, docs/MATRIX.md). Boots the default guest
 * once per cell of the plan ({@link MatrixPlan}), writes matrix.json, matrix.md and matrix.html to
 * {@code --out}, and with {@code --compare A.json B.json} diffs two matrices instead of booting.
 */
@Command(name = "matrix", mixinStandardHelpOptions = true,
        description = "The ABI coupling matrix: for each personality a baseline boot and one boot per ABI element switched off, "
                + "plus the bare and unknown-hypervisor references; what the kernel bound (read from its memory), how much it used "
                + "each element, and how it ended. Writes matrix.json, matrix.md and matrix.html (see docs/MATRIX.md).")
final class AbiMatrixCommand implements Callable<Integer> {
    @Option(names = "--personality", split = ",", paramLabel = "NAME",
            description = "Personalities (comma separated; a stack such as hyperv+kvm is one). Default: kvm, hyperv, xen, vmware.")
    List<String> personalities = new ArrayList<>();

    @Option(names = "--elements", split = ",", paramLabel = "ID", description = "Only these elements' off cells (ids from 'polyvisor abi list').")
    List<String> elements = new ArrayList<>();

    @Option(names = "--jobs", paramLabel = "N", description = "VMs booted at once (default: the number of processors, ${DEFAULT-VALUE}).")
    int jobs = Runtime.getRuntime().availableProcessors();

    @Option(names = "--out", paramLabel = "DIR", description = "Output directory; finished cells are cached in DIR/cells (default: ${DEFAULT-VALUE}).")
    Path out = Path.of("polyvisor-matrix");

    @Option(names = "--no-references", description = "Leave out the bare and unknown reference columns.")
    boolean noReferences;

    @Option(names = "--append", paramLabel = "ARGS", description = "Extra kernel parameters for every cell.")
    String append = "";

    @Option(names = "--timeout", paramLabel = "SECONDS", description = "Virtual seconds after which a cell hangs (default: ${DEFAULT-VALUE}).")
    long virtualTimeout = MatrixSettings.defaults().virtualTimeout().toSeconds();

    @Option(names = "--wall-timeout", paramLabel = "SECONDS", description = "Host seconds after which a cell hangs (default: ${DEFAULT-VALUE}).")
    long wallTimeout = MatrixSettings.defaults().wallTimeout().toSeconds();

    @Mixin KernelPackageOptions kernelPackage = new KernelPackageOptions();

    @Option(names = "--kernel", paramLabel = "FILE",
            description = "Boot this bzImage instead of the default guest's (with the default guest's initramfs unless --initrd is given).")
    Path kernel;

    @Option(names = "--initrd", paramLabel = "FILE",
            description = "The initramfs to boot with --kernel; its /init must run the pv.exec command and power off, as the default guest's does.")
    Path initrd;

    @Option(names = "--no-workloads", description = "Boot and read the tables only: leave out the micro-workloads (pv-workloads, built with the host gcc).")
    boolean noWorkloads;

    @Option(names = "--compare", arity = "2", paramLabel = "MATRIX.json",
            description = "Compare two matrix.json files, or two --out directories (e.g. two kernels' matrices): couplings that appeared, "
                    + "disappeared or moved. Boots nothing.")
    List<Path> compare;

    @Override
    public Integer call() {
        if (compare != null) return compare();
        MatrixPlan plan;
        MatrixSettings settings;
        try {
            plan = MatrixPlan.of(personalities, elements, !noReferences);
            if (virtualTimeout < 1 || wallTimeout < 1) throw new IllegalArgumentException("timeouts must be at least 1 s");
            settings = MatrixSettings.defaults().withJobs(jobs).withAppend(append)
                    .withVirtualTimeout(Duration.ofSeconds(virtualTimeout)).withWallTimeout(Duration.ofSeconds(wallTimeout));
        } catch (IllegalArgumentException e) {
            System.err.println("polyvisor: " + e.getMessage());
            return RunCommand.USAGE;
        }
        try {
            kernelPackage.source(); // a bad --suite or --kernel-package is a usage error before anything is fetched
        } catch (IllegalArgumentException e) {
            System.err.println("polyvisor: " + e.getMessage());
            return RunCommand.USAGE;
        }
        if (kernelPackage.given() && kernel != null) {
            System.err.println("polyvisor: --kernel-package/--suite and --kernel both choose the kernel: give one");
            return RunCommand.USAGE;
        }
        if (initrd != null && kernel == null) {
            System.err.println("polyvisor: --initrd needs --kernel");
            return RunCommand.USAGE;
        }
        for (Path f : new Path[] {kernel, initrd})
            if (f != null && !Files.isRegularFile(f)) {
                System.err.println("polyvisor: " + f + ": no such file");
                return RunCommand.USAGE;
            }
        GuestImage image;
        try {
            image = kernelPackage.guest();
        } catch (GuestImageException e) {
            if (!kernelPackage.given()) {
                System.err.println("polyvisor: the default guest: " + e.getMessage());
                return 1;
            }
            // An unknown package or version is the user's to fix (the message names what apt offers).
            System.err.println("polyvisor: cannot prepare the Linux guest for " + kernelPackage.source() + ": " + e.getMessage());
            return RunCommand.USAGE;
        }
        if (kernel != null)
            image = new GuestImage(kernel, initrd != null ? initrd : image.initramfs(), release(kernel), null, null, image.busyboxVersion());
        CellWorkload workload = CellWorkload.NONE;
        if (!noWorkloads) {
            try {
                PvWorkloads.Prepared p = PvWorkloads.prepare(image);
                workload = p.workload();
                image = p.image();
            } catch (GuestImageException e) {
                System.err.println("polyvisor: " + e.getMessage() + " (--no-workloads runs the matrix without them)");
                return RunCommand.USAGE;
            }
        }
        try {
            MatrixRunner runner = new MatrixRunner(image, settings, workload, RunCommand::linuxCommandLine, out,
                    System.err, stderrIsTerminal());
            System.err.printf("polyvisor: %d cells, %d at a time, kernel %s%n", plan.cells().size(), settings.jobs(), image.kernelRelease());
            MatrixResult m = runner.run(plan);
            write(out, m);
            Map<String, Integer> kinds = new TreeMap<>();
            for (CellResult c : m.cells()) kinds.merge(c.outcome().kind(), 1, Integer::sum);
            System.out.printf("%d cells (%d booted, %d from the cache) in %.1f s: %s%n", m.cells().size(), m.host().cellsRun(),
                    m.host().cellsCached(), m.host().wallMillis() / 1000.0, kinds);
            System.out.println("wrote " + out.resolve("matrix.json") + ", " + out.resolve("matrix.md") + ", " + out.resolve("matrix.html"));
            return 0;
        } catch (LoadException | IOException e) {
            System.err.println("polyvisor: " + e.getMessage());
            return 1;
        }
    }

    /** Writes matrix.json, matrix.md and matrix.html into {@code dir}. */
    static void write(Path dir, MatrixResult m) throws IOException {
        Files.createDirectories(dir);
        Files.write(dir.resolve("matrix.json"), MatrixJson.write(m));
        Files.writeString(dir.resolve("matrix.md"), MatrixMarkdown.render(m), StandardCharsets.UTF_8);
        Files.writeString(dir.resolve("matrix.html"), MatrixHtml.render(m), StandardCharsets.UTF_8);
    }

    private Integer compare() {
        if (!personalities.isEmpty() || !elements.isEmpty()) {
            System.err.println("polyvisor: --compare reads two matrix.json files; it takes no --personality or --elements");
            return RunCommand.USAGE;
        }
        MatrixResult a, b;
        try {
            a = MatrixJson.read(matrixJson(compare.get(0)));
            b = MatrixJson.read(matrixJson(compare.get(1)));
        } catch (IOException e) {
            System.err.println("polyvisor: " + e.getMessage());
            return RunCommand.USAGE;
        }
        System.out.print(MatrixCompare.render(a, b, compare.get(0).toString(), compare.get(1).toString()));
        return 0;
    }

    /** A matrix.json, or a matrix's output directory (its matrix.json). */
    private static Path matrixJson(Path p) {
        return Files.isDirectory(p) ? p.resolve("matrix.json") : p;
    }

    /** The release in a bzImage's banner ("Linux version 6.1.0-57-cloud-amd64 (...)"), or null when it cannot be read. */
    private static String release(Path bzImage) {
        try {
            String banner = dev.polyvisor.kernel.KernelImage.of(dev.polyvisor.vmm.boot.linux.KernelPayload.vmlinux(Files.readAllBytes(bzImage))).banner();
            String[] w = banner.split("\\s+");
            return w.length > 2 && banner.startsWith("Linux version ") ? w[2] : null;
        } catch (Exception e) {
            return null;
        }
    }

    /** Java cannot ask about stderr alone: a console on stdin/stdout and a TERM that draws stand in for it. */
    private static boolean stderrIsTerminal() {
        java.io.Console c = System.console();
        String term = System.getenv("TERM");
        return c != null && c.isTerminal() && term != null && !term.equals("dumb") && System.getenv("CI") == null;
    }
}
