package dev.polyvisor.matrix;

import dev.polyvisor.guest.GuestInit;

import java.time.Duration;

/**
 * How every cell is run. All of it (but the job count and the wall timeout) goes into the cells' cache key.
 *
 * @param smp             vCPUs (2: kvm_setup_pv_ipi and PV spinlocks want more than one)
 * @param memoryMiB       guest RAM
 * @param append          kernel parameters added to the default guest's command line ({@code nokaslr}
 *                        is always added, so the dispatch tables are read at the kernel's link addresses)
 * @param virtualTimeout  a cell whose guest has not powered off after this much virtual time hangs
 * @param wallTimeout     nor after this much host time (a guest spinning without progress in virtual
 *                        time; this bound depends on the host, see docs/MATRIX.md)
 * @param jobs            cells run at once
 */
public record MatrixSettings(int smp, int memoryMiB, String append, Duration virtualTimeout, Duration wallTimeout, int jobs) {
    /**
     * Always appended: fixed kernel addresses for reading, warnings on the console despite {@code quiet},
     * and no module loading by the default guest's /init ({@code pv.modules=0}, GuestInit.NO_MODULES): the
     * virtio, net and vsock modules serve devices a cell has none of, and verifying their signatures
     * (SHA-256 and RSA in the guest) was about a fifth of a cell's instructions.
     */
    public static final String MATRIX_APPEND = "nokaslr loglevel=5 " + GuestInit.NO_MODULES;

    public MatrixSettings {
        if (smp < 1 || smp > 64) throw new IllegalArgumentException("--smp must be 1..64, got " + smp);
        if (jobs < 1 || jobs > 64) throw new IllegalArgumentException("--jobs must be 1..64, got " + jobs);
        if (append == null) append = "";
    }

    public static MatrixSettings defaults() {
        return new MatrixSettings(2, 128, "", Duration.ofSeconds(60), Duration.ofSeconds(180), 1);
    }

    public MatrixSettings withJobs(int n) { return new MatrixSettings(smp, memoryMiB, append, virtualTimeout, wallTimeout, n); }

    public MatrixSettings withAppend(String a) { return new MatrixSettings(smp, memoryMiB, a, virtualTimeout, wallTimeout, jobs); }

    public MatrixSettings withWallTimeout(Duration d) { return new MatrixSettings(smp, memoryMiB, append, virtualTimeout, d, jobs); }

    public MatrixSettings withVirtualTimeout(Duration d) { return new MatrixSettings(smp, memoryMiB, append, d, wallTimeout, jobs); }

    /** The kernel parameters the matrix adds, then the user's. */
    public String fullAppend() { return (MATRIX_APPEND + " " + append).trim(); }
}
