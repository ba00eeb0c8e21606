package dev.polyvisor.matrix;

import dev.polyvisor.clock.TimerQueue;
import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.kernel.DispatchTables;
import dev.polyvisor.kernel.KernelAddresses;
import dev.polyvisor.kernel.KernelFormatException;
import dev.polyvisor.kernel.KernelImage;
import dev.polyvisor.kernel.KernelMemory;
import dev.polyvisor.kernel.PhysicalMemory;
import dev.polyvisor.personality.core.AbiUsage;
import dev.polyvisor.vmm.Outcome;
import dev.polyvisor.vmm.Vm;
import dev.polyvisor.vmm.VmConfig;
import dev.polyvisor.vmm.boot.LoadException;
import dev.polyvisor.vmm.boot.linux.KernelPayload;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BiFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs a {@link MatrixPlan}: each cell boots the guest in its own {@link Vm} (icount clock, {@code nokaslr},
 * the settings' vCPUs), with {@code jobs} VMs running at once on their own threads of this JVM (a VM shares
 * no mutable state with another: its RAM, clock, devices, trace cache and personalities are its own). When
 * the guest has powered off, or the run ended otherwise, the runner reads the kernel's dispatch tables
 * from guest memory, takes the personality layer's usage counters and classifies the outcome. A kernel
 * that panics, hangs or warns is a finding recorded in its cell; only a kernel Polyvisor cannot load at
 * all stops the matrix.
 *
 * <p>With an output directory, each finished cell is written to {@code DIR/cells/<key>.json} (and its
 * console to {@code <key>.log}), the key a hash of the kernel's sha256, the personality, the disabled
 * elements, {@link MatrixPlan#VERSION} and the settings, so a matrix run again, or resumed after an
 * interruption, boots only the cells it lacks. A cell ended by the wall-clock timeout is not cached: that
 * bound depends on the host.
 */
public final class MatrixRunner {
    /** Console lines that make a cell's outcome "warnings" (and are listed in it). */
    static final Pattern WARNING = Pattern.compile(
            "BUG:|kernel BUG at|WARNING:|unchecked MSR access|Call Trace|Kernel panic|Oops:|general protection fault|invalid opcode:");
    static final int MAX_WARNINGS = 20;
    private static final Pattern EXIT_MARKER = Pattern.compile("(?m)^polyvisor: exit status (\\d+)");
    private static final Pattern PRINTK_TIME = Pattern.compile("^\\[\\s*\\d+\\.\\d+\\]\\s*");
    private static final java.lang.management.ThreadMXBean THREADS = java.lang.management.ManagementFactory.getThreadMXBean();
    private static final String VIRTUAL_TIMEOUT = "virtual timeout: the guest ran for %d s of virtual time without powering off";

    private final GuestImage image;
    private final MatrixSettings settings;
    private final CellWorkload workload;
    private final BiFunction<String, String, String> commandLine;
    private final Path out;
    private final PrintStream progressOut;
    private final boolean terminal;
    private final String kernelSha;
    private volatile KernelImage kernelImage;
    private volatile String kernelImageError;

    /**
     * @param image       the guest to boot (a kernel and the default guest's initramfs, whose /init runs the command)
     * @param commandLine builds the kernel command line from (extra parameters, command), e.g. the CLI's
     *                    {@code RunCommand::linuxCommandLine}
     * @param out         the output directory whose {@code cells/} caches finished cells, or null for no cache
     * @param progress    where the progress bar goes (null: nowhere)
     * @param terminal    whether {@code progress} is a terminal (one line redrawn with \r) or not (a line per cell)
     */
    public MatrixRunner(GuestImage image, MatrixSettings settings, CellWorkload workload,
                        BiFunction<String, String, String> commandLine, Path out, PrintStream progress, boolean terminal)
            throws IOException {
        this.image = image;
        this.settings = settings;
        this.workload = workload;
        this.commandLine = commandLine;
        this.out = out;
        this.progressOut = progress;
        this.terminal = terminal;
        this.kernelSha = sha256(Files.readAllBytes(image.kernel()));
    }

    public String kernelSha256() { return kernelSha; }

    /** The kernel command line every cell boots with. */
    public String cellCommandLine() { return commandLine.apply(settings.fullAppend(), workload.command()); }

    /** Runs every cell of {@code plan} (from the cache where it has them) and assembles the matrix. */
    public MatrixResult run(MatrixPlan plan) throws IOException, LoadException {
        long t0 = System.nanoTime();
        Instant started = Instant.now();
        Path cellsDir = out == null ? null : out.resolve("cells");
        if (cellsDir != null) Files.createDirectories(cellsDir);
        List<CellSpec> specs = plan.cells();
        CellResult[] results = new CellResult[specs.size()];
        Progress progress = new Progress(progressOut, terminal, specs.size());
        List<Integer> toRun = new ArrayList<>();
        for (int i = 0; i < specs.size(); i++) {
            Optional<CellResult> c = cellsDir == null ? Optional.empty() : MatrixJson.readCell(cellsDir.resolve(key(specs.get(i)) + ".json"));
            if (c.isPresent() && c.get().id().equals(specs.get(i).id())) {
                CellResult.Host h = c.get().host();
                results[i] = c.get().withHost(new CellResult.Host(h == null ? 0 : h.wallMillis(), h == null ? 0 : h.cpuMillis(), true));
                progress.cached(results[i]);
            } else toRun.add(i);
        }
        AtomicInteger threads = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(settings.jobs(), r -> {
            // The interpreter recurses deeply on some paths: the same stack the launcher gives the main thread.
            Thread t = new Thread(null, r, "matrix-" + threads.incrementAndGet(), 16L << 20);
            t.setDaemon(true);
            return t;
        });
        try {
            List<Future<CellResult>> futures = new ArrayList<>();
            for (int i : toRun) {
                CellSpec spec = specs.get(i);
                futures.add(pool.submit(() -> {
                    CellResult r = runCell(spec, cellsDir);
                    progress.finished(r);
                    return r;
                }));
            }
            for (int k = 0; k < toRun.size(); k++) {
                try {
                    results[toRun.get(k)] = futures.get(k).get();
                } catch (ExecutionException e) {
                    Throwable c = e.getCause();
                    if (c instanceof LoadException le) throw le;
                    if (c instanceof IOException io) throw io;
                    if (c instanceof RuntimeException re) throw re;
                    throw new IllegalStateException(c);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted");
                }
            }
        } finally {
            pool.shutdownNow();
            progress.done();
        }
        List<String> ids = specs.stream().map(CellSpec::id).toList();
        List<CellResult> cells = new ArrayList<>();
        for (int i = 0; i < specs.size(); i++) cells.add(results[i].withReference(MatrixPlan.referenceOf(specs.get(i), ids).orElse(null)));
        Map<String, String> paths = new LinkedHashMap<>();
        paths.put("kernel", image.kernel().toString());
        paths.put("initramfs", image.initramfs().toString());
        return new MatrixResult(MatrixResult.SCHEMA, MatrixPlan.VERSION,
                new MatrixResult.Kernel(kernelSha, image.kernelRelease(), image.kernelPackage(), image.kernelVersion()),
                new MatrixResult.Settings(settings.smp(), settings.memoryMiB(), cellCommandLine(), workload.id(),
                        settings.virtualTimeout().toSeconds()),
                cells,
                new MatrixResult.Host(started.truncatedTo(ChronoUnit.SECONDS).toString(), (System.nanoTime() - t0) / 1_000_000,
                        settings.jobs(), toRun.size(), specs.size() - toRun.size(), paths));
    }

    /** The cache key of a cell: what determines its result. */
    public String key(CellSpec spec) {
        String text = String.join("\n", "plan " + MatrixPlan.VERSION, "kernel " + kernelSha, "personality " + spec.personality(),
                "disabled " + String.join(",", spec.disabled()), "cmdline " + cellCommandLine(), "workload " + workload.id(),
                "smp " + settings.smp(), "memory " + settings.memoryMiB(), "vtimeout " + settings.virtualTimeout().toSeconds());
        return sha256(text.getBytes(StandardCharsets.UTF_8)).substring(0, 32);
    }

    /** Boots one cell; a failing kernel is a result, a kernel that cannot be loaded an exception. */
    CellResult runCell(CellSpec spec, Path cellsDir) throws LoadException, IOException {
        long t0 = System.nanoTime(), cpu0 = THREADS.getCurrentThreadCpuTime();
        // The decompressor is skipped (the VMM unpacks the payload and enters at startup_64): it touches no
        // hypervisor ABI, and it was a tenth of a 6.1 cell's instructions and a third of a 7.x (zstd) cell's.
        VmConfig cfg = VmConfig.of(image.kernel(), VmConfig.BootKind.LINUX_VMLINUX)
                .withInitrd(image.initramfs())
                .withAppend(cellCommandLine())
                .withSmp(settings.smp())
                .withMemory(settings.memoryMiB())
                .withClock(VmConfig.ClockMode.ICOUNT)
                .withTimeout(settings.wallTimeout())
                .withPersonalities(List.of(spec.personality().split("\\+")), spec.disabled());
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        CellResult result;
        boolean wallTimeout;
        try (Vm vm = new Vm(cfg, console)) {
            long vlimit = settings.virtualTimeout().toNanos();
            TimerQueue.Timer watchdog = vm.clock.timers().newTimer(() -> vm.requestEnd(Outcome.Kind.TIMEOUT, Outcome.TIMEOUT_STATUS,
                    String.format(VIRTUAL_TIMEOUT, settings.virtualTimeout().toSeconds())));
            watchdog.arm(vlimit);
            CellWorkload.Session session = workload.attach(vm);
            AtomicReference<DispatchTables> initData = watchInitData(vm);
            Outcome o = vm.run();
            String text = console.toString(StandardCharsets.UTF_8);
            wallTimeout = o.kind() == Outcome.Kind.TIMEOUT && !o.message().startsWith("virtual timeout");
            Map<String, String> tables = readTables(vm, initData.get());
            List<CellResult.Usage> usage = vm.personalities.usage().snapshot().stream()
                    .map(c -> new CellResult.Usage(c.key().personality(), c.key().kind().label(), c.key().number(), c.key().subop(),
                            c.key().element(), c.count()))
                    .toList();
            Map<String, WorkloadCost> costs = session.finish(text);
            result = new CellResult(spec.id(), spec.personality(), spec.disabled(), spec.role().label(), null,
                    classify(o, text), tables.get("clocksource.name"), tables.get("clockevent[0].name"),
                    o.instructions(), vm.clock.nanos(), tables, usage, costs,
                    new CellResult.Host((System.nanoTime() - t0) / 1_000_000, (THREADS.getCurrentThreadCpuTime() - cpu0) / 1_000_000, false));
            if (cellsDir != null) {
                String key = key(spec);
                writeAtomically(cellsDir.resolve(key + ".log"), console.toByteArray());
                if (!wallTimeout) writeAtomically(cellsDir.resolve(key + ".json"), MatrixJson.writeCell(result));
            }
        }
        return result;
    }

    /**
     * Arms the read of the kernel's {@code __initdata} roots (x86_init) for the moment the guest first
     * executes free_initmem() (init/main.c, kernel_init; arch/x86/mm/init.c), which releases them:
     * a trace-cache watch at the function's physical address, so nothing is asked of the guest and
     * no other code path pays for it. The reference stays empty when the kernel cannot be read or
     * never gets there (a cell that hangs or panics earlier has its x86_init read at the end, live).
     */
    private AtomicReference<DispatchTables> watchInitData(Vm vm) {
        AtomicReference<DispatchTables> ref = new AtomicReference<>();
        KernelImage k = kernelImage();
        if (k == null) return ref;
        OptionalLong freeInitmem = k.symbols().address("free_initmem");
        if (freeInitmem.isEmpty()) return ref;
        KernelAddresses at = KernelAddresses.nokaslr();
        vm.traces.watchFirstBuild(at.symbolPhysical(freeInitmem.getAsLong()), () -> {
            synchronized (k) {
                try {
                    ref.set(DispatchTables.readInitData(new KernelMemory(PhysicalMemory.of(vm.memory), k, at)));
                } catch (RuntimeException e) {
                    // Runs inside the vCPU loop: a read that goes wrong must not end the guest's run. The root
                    // is then reported as freed, as without the watch.
                }
            }
        });
        return ref;
    }

    /**
     * The dispatch tables, read at the kernel's link addresses ({@code nokaslr}), x86_init from
     * {@code initData} once freed; one entry with the reason when impossible.
     */
    private Map<String, String> readTables(Vm vm, DispatchTables initData) {
        KernelImage k = kernelImage();
        Map<String, String> t = new LinkedHashMap<>();
        if (k == null) {
            t.put(CellResult.TABLES_UNREAD, "<" + kernelImageError + ">");
            return t;
        }
        DispatchTables tables;
        // KernelImage's symbol and BTF lookups are not documented as thread-safe: one reader at a time (a few ms).
        synchronized (k) {
            tables = DispatchTables.read(new KernelMemory(PhysicalMemory.of(vm.memory), k, KernelAddresses.nokaslr()), initData);
        }
        tables.entries().forEach((path, v) -> t.put(path, v.display()));
        return t;
    }

    private KernelImage kernelImage() {
        if (kernelImage == null && kernelImageError == null) {
            synchronized (this) {
                if (kernelImage == null && kernelImageError == null) {
                    try {
                        kernelImage = KernelImage.of(KernelPayload.vmlinux(Files.readAllBytes(image.kernel())));
                    } catch (KernelFormatException | LoadException | IOException e) {
                        kernelImageError = "cannot read the kernel's symbols and BTF: " + e.getMessage();
                    }
                }
            }
        }
        return kernelImage;
    }

    /** Boots, warnings, panics, hangs, fails or error, from how the VM ended and what the console says. */
    static CellResult.Outcome classify(Outcome o, String console) {
        List<String> warnings = new ArrayList<>();
        boolean panic = false;
        for (String line : console.split("\r?\n")) {
            if (!WARNING.matcher(line).find()) continue;
            String l = PRINTK_TIME.matcher(line.strip()).replaceFirst("");
            panic |= l.contains("Kernel panic");
            if (warnings.size() < MAX_WARNINGS) warnings.add(l);
        }
        Matcher m = EXIT_MARKER.matcher(console);
        Integer status = null;
        while (m.find()) status = Integer.parseInt(m.group(1));
        String kind;
        if (o.kind() == Outcome.Kind.ERROR) kind = CellResult.ERROR;
        else if (panic) kind = CellResult.PANICS;
        else if (o.kind() == Outcome.Kind.TIMEOUT || o.kind() == Outcome.Kind.STOPPED) kind = CellResult.HANGS;
        else if (o.kind() == Outcome.Kind.POWEROFF && status != null) kind = warnings.isEmpty() ? CellResult.BOOTS : CellResult.WARNINGS;
        else kind = CellResult.FAILS;
        String detail = o.message() == null ? "" : o.message();
        if (kind.equals(CellResult.FAILS) && detail.isEmpty()) detail = "the guest powered off without running the command";
        return new CellResult.Outcome(kind, detail, status, warnings);
    }

    private static void writeAtomically(Path file, byte[] bytes) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp" + Thread.currentThread().threadId());
        Files.write(tmp, bytes);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    static String sha256(byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The progress bar with ETA: one line redrawn with \r on a terminal, a line per finished cell otherwise. */
    static final class Progress {
        private final PrintStream out;
        private final boolean terminal;
        private final int total;
        private final long t0 = System.nanoTime();
        private int done, cached, fresh;

        Progress(PrintStream out, boolean terminal, int total) {
            this.out = out;
            this.terminal = terminal;
            this.total = total;
        }

        synchronized void cached(CellResult r) {
            done++;
            cached++;
            if (!terminal && out != null) out.println(line(r.id() + ": " + r.outcome().kind() + " (cached)"));
            else draw(r.id() + " (cached)");
        }

        synchronized void finished(CellResult r) {
            done++;
            fresh++;
            String what = r.id() + ": " + r.outcome().kind() + " in " + seconds(r.host().wallMillis() * 1_000_000L)
                    + String.format(" (%.1f s CPU)", r.host().cpuMillis() / 1000.0);
            if (!terminal && out != null) out.println(line(what));
            else draw(what);
        }

        synchronized void done() {
            if (terminal && out != null && total > 0) out.println();
            if (out != null) out.flush();
        }

        private void draw(String what) {
            if (out == null) return;
            String l = line(what);
            out.print("\r" + l + (l.length() < 118 ? " ".repeat(118 - l.length()) : ""));
            out.flush();
        }

        /** "[#####.....] 12/50 cells (3 cached), 1m02s, ETA 4m10s  last". */
        String line(String last) {
            int width = 20, filled = total == 0 ? width : done * width / total;
            long elapsed = System.nanoTime() - t0;
            String eta = fresh == 0 ? "ETA ?" : "ETA " + seconds(elapsed / fresh * (total - done));
            if (done == total) eta = "done";
            return String.format("matrix [%s%s] %d/%d cells%s, %s, %s  %s", "#".repeat(filled), ".".repeat(width - filled), done, total,
                    cached == 0 ? "" : " (" + cached + " cached)", seconds(elapsed), eta, last);
        }

        static String seconds(long nanos) {
            long s = Math.round(nanos / 1e9);
            return s >= 60 ? (s / 60) + "m" + String.format("%02d", s % 60) + "s" : s + "s";
        }
    }

    /** Total of one usage counter over sub-operations and elements (tests, reports). */
    public static long usage(CellResult cell, String personality, AbiUsage.Kind kind, long number) {
        return cell.usage().stream().filter(u -> u.personality().equals(personality) && u.kind().equals(kind.label()) && u.number() == number)
                .mapToLong(CellResult.Usage::count).sum();
    }
}
