package dev.polyvisor.matrix;

import dev.polyvisor.vmm.Vm;

import java.util.Map;

/**
 * What each cell runs once the guest has booted, and how its costs are measured: the hook through which
 * the micro-workload program (clock reads, IPI round trips, TLB shootdowns, contended locks, sched_yield,
 * idle wake-ups) plugs into the matrix. {@link #NONE} runs {@code true} and measures nothing, so the
 * cells' {@code workloads} maps stay empty.
 */
public interface CellWorkload {
    /** Names the workload set and its version; part of every cell's cache key. */
    String id();

    /** The shell command the default guest's /init runs after boot (then the guest powers off). */
    String command();

    /**
     * Called with each cell's VM after it is built and before it runs (on the thread that will run it);
     * the session returned collects that cell's costs.
     */
    Session attach(Vm vm);

    /** One cell's measurement. */
    interface Session {
        /**
         * After the run, before the VM is closed, with everything the guest printed on the console: the cost
         * of each workload by name (empty when none ran).
         */
        Map<String, WorkloadCost> finish(String console);
    }

    /** No workload: the command is {@code true}. */
    CellWorkload NONE = new CellWorkload() {
        @Override public String id() { return "none"; }

        @Override public String command() { return "true"; }

        @Override public Session attach(Vm vm) { return console -> Map.of(); }
    };
}
