package dev.polyvisor.tools;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.kernel.KernelImage;
import dev.polyvisor.kernel.KernelSymbols;
import dev.polyvisor.vmm.Outcome;
import dev.polyvisor.vmm.Vm;
import dev.polyvisor.vmm.VmConfig;
import dev.polyvisor.vmm.boot.linux.KernelPayload;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.locks.LockSupport;

/**
 * Debugging aid, not a test: where a Linux boot spends its guest instructions. Boots a guest image
 * (one vCPU, nokaslr so runtime addresses are link addresses) while a sampler thread reads vCPU 0's RIP
 * every 100 us, then prints the hottest kernel functions overall and per 100 million instructions,
 * symbolized with the kernel's own kallsyms ({@code dev.polyvisor.kernel}).
 *
 * <pre>java -cp target/classes:target/test-classes:target/lib/* dev.polyvisor.tools.BootProfile GUESTDIR PERSONALITY [APPEND]</pre>
 *
 * For a kernel whose kallsyms tables dev.polyvisor.kernel cannot read (7.x), take the symbols from the guest:
 * {@code polyvisor run --kernel-package ... --append nokaslr --exec 'cat /proc/kallsyms' > syms} and pass
 * {@code -Dprofile.symbols=syms}.
 */
public final class BootProfile {
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        String personality = args.length > 1 ? args[1] : "bare";
        String append = "console=ttyS0 panic=-1 cryptomgr.notests nokaslr " + (args.length > 2 ? args[2] : "")
                + " pv.exec=dHJ1ZQ==";
        byte[] bz = Files.readAllBytes(dir.resolve("vmlinuz"));
        // -Dprofile.symbols=FILE: a /proc/kallsyms taken from the same kernel booted with nokaslr, for kernels
        // whose in-image kallsyms tables dev.polyvisor.kernel cannot read yet.
        String symFile = System.getProperty("profile.symbols");
        KernelSymbols syms = symFile != null ? KernelSymbols.fromSystemMap(Files.readString(Path.of(symFile)))
                : KernelImage.of(vmlinux(bz)).symbols();
        VmConfig cfg = VmConfig.of(dir.resolve("vmlinuz"), VmConfig.BootKind.LINUX).withInitrd(dir.resolve("initramfs.cpio"))
                .withAppend(append).withSmp(1).withPersonalities(List.of(personality.split("\\+")), List.of());
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        Map<Long, Integer> hits = new HashMap<>();
        TreeMap<Long, Map<Long, Integer>> buckets = new TreeMap<>();
        long bucket = 100_000_000L;
        try (Vm vm = new Vm(cfg, console)) {
            Cpu c = vm.vcpus.getFirst().cpu;
            var stop = new java.util.concurrent.atomic.AtomicBoolean();
            Thread sampler = Thread.ofPlatform().daemon().start(() -> {
                long lastIcount = -1;
                while (!stop.get()) {
                    LockSupport.parkNanos(100_000);
                    long ic = c.instructionsRetired, rip = c.rip;
                    if (ic == lastIcount || c.halted) continue;
                    lastIcount = ic;
                    synchronized (hits) {
                        hits.merge(rip, 1, Integer::sum);
                        buckets.computeIfAbsent(ic / bucket, k -> new HashMap<>()).merge(rip, 1, Integer::sum);
                    }
                }
            });
            long t0 = System.nanoTime();
            Outcome o = vm.run();
            stop.set(true);
            sampler.join();
            System.out.printf("%s: %s, %d instructions, %.1f s%n", personality, o.kind(), o.instructions(), (System.nanoTime() - t0) / 1e9);
        }
        Files.writeString(Path.of(System.getProperty("profile.console", "/tmp/boot-profile-console.log")), console.toString(StandardCharsets.UTF_8));
        print("overall", fold(hits, syms), 45);
        for (var e : buckets.entrySet()) print(String.format("instructions %d-%d M", e.getKey() * 100, e.getKey() * 100 + 100), fold(e.getValue(), syms), 6);
    }

    /** The vmlinux; a zstd payload (Debian 6.12+) goes through the host's zstd, which the loader does not decode. */
    private static byte[] vmlinux(byte[] bz) throws Exception {
        byte[] payload = dev.polyvisor.vmm.boot.linux.BzImage.parse(bz).payload();
        if (KernelPayload.detect(payload) != KernelPayload.Format.ZSTD) return KernelPayload.vmlinux(bz);
        Process p = new ProcessBuilder("zstd", "-d", "-c", "-q").start();
        Thread.ofPlatform().start(() -> {
            try (var in = p.getOutputStream()) { in.write(payload); } catch (java.io.IOException ignored) { }
        });
        byte[] out = p.getInputStream().readAllBytes();
        p.waitFor();
        return out;
    }

    private static Map<String, Integer> fold(Map<Long, Integer> hits, KernelSymbols syms) {
        Map<String, Integer> f = new HashMap<>();
        for (var e : hits.entrySet()) {
            long rip = e.getKey();
            String name = rip >= 0 ? "[user]" : syms.nearest(rip).map(h -> h.symbol().name()).orElse(String.format("?%x", rip));
            f.merge(name, e.getValue(), Integer::sum);
        }
        return f;
    }

    private static void print(String title, Map<String, Integer> f, int top) {
        int total = f.values().stream().mapToInt(Integer::intValue).sum();
        System.out.println("== " + title + " (" + total + " samples)");
        f.entrySet().stream().sorted(Map.Entry.<String, Integer>comparingByValue().reversed()).limit(top)
                .forEach(e -> System.out.printf("  %5.1f%%  %s%n", 100.0 * e.getValue() / total, e.getKey()));
    }
}
