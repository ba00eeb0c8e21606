package dev.polyvisor.matrix;

import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImageException;
import dev.polyvisor.guest.Workloads;
import dev.polyvisor.vmm.Vm;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The matrix's micro-workloads ({@link Workloads}: clock reads, IPI round trips, TLB shootdowns,
 * contended locks, sched_yield, idle wake-ups), measured by the VMM's console markers
 * ({@code vmm.ConsoleMarkers}): instructions retired and VM exits between each workload's begin and end
 * lines, deterministic under icount.
 */
public final class PvWorkloads implements CellWorkload {
    private final String id;

    private PvWorkloads(String id) { this.id = id; }

    /**
     * The workloads and the image to boot them with: {@code image} with pv-workloads appended to its
     * initramfs (built with the host gcc on first use).
     */
    public static Prepared prepare(GuestImage image) throws GuestImageException {
        var initramfs = Workloads.initramfs(image);
        GuestImage withWorkloads = new GuestImage(image.kernel(), initramfs, image.kernelRelease(), image.kernelPackage(),
                image.kernelVersion(), image.busyboxVersion());
        // The cache key follows the program: its binary's directory is named by the source hash.
        return new Prepared(new PvWorkloads("pv-workloads/" + Workloads.binary().getParent().getFileName()), withWorkloads);
    }

    /** A workload set and the guest image that carries it. */
    public record Prepared(PvWorkloads workload, GuestImage image) {}

    @Override public String id() { return id; }

    @Override public String command() { return Workloads.command(); }

    @Override
    public Session attach(Vm vm) {
        return console -> {
            Map<String, WorkloadCost> out = new LinkedHashMap<>();
            vm.markers().costs().forEach((name, c) -> out.put(name, new WorkloadCost(c.instructions(), c.exits())));
            return out;
        };
    }
}
