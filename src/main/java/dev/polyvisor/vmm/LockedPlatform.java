package dev.polyvisor.vmm;

import dev.polyvisor.cpu.Platform;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.memory.MmioRegion;

import java.util.concurrent.locks.ReentrantLock;

/**
 * The platform as vCPUs on host threads of their own see it ({@link VcpuThreads}): every exit into the
 * VMM - port I/O, CPUID, MSRs, RDPMC, hypercalls and the personalities behind them, CR8/TPR, the APIC
 * base, device MMIO, unassigned accesses - runs holding the VM's big lock, as QEMU runs device emulation
 * under its BQL (system/cpus.c qemu_mutex_lock_iothread; accel/tcg takes it around io_readx/io_writex).
 * The device models, the LAPICs, IOAPIC and PIC, the timers and the personalities were written for one
 * thread; under this lock they still see one thread at a time. Guest RAM and the CPU core run outside it.
 *
 * <p>Not locked: the TSC (the clock is thread-safe) and PAUSE, which must stay cheap in a spin loop.
 * {@code LockedPlatformTest} checks that every method of {@link Platform} is overridden here, so a
 * new exit cannot silently bypass the lock.
 */
final class LockedPlatform implements Platform {
    private final Platform p;
    private final ReentrantLock bql;

    LockedPlatform(Platform p, ReentrantLock bql) {
        this.p = p;
        this.bql = bql;
    }

    @Override public long portIn(int port, int size) {
        bql.lock();
        try { return p.portIn(port, size); } finally { bql.unlock(); }
    }

    @Override public void portOut(int port, int size, long value) {
        bql.lock();
        try { p.portOut(port, size, value); } finally { bql.unlock(); }
    }

    @Override public int[] cpuid(int vcpuId, int leaf, int subleaf) {
        bql.lock();
        try { return p.cpuid(vcpuId, leaf, subleaf); } finally { bql.unlock(); }
    }

    @Override public MsrResult rdmsr(int vcpuId, int index) {
        bql.lock();
        try { return p.rdmsr(vcpuId, index); } finally { bql.unlock(); }
    }

    @Override public boolean wrmsr(int vcpuId, int index, long value) {
        bql.lock();
        try { return p.wrmsr(vcpuId, index, value); } finally { bql.unlock(); }
    }

    @Override public MsrResult rdpmc(int vcpuId, int index) {
        bql.lock();
        try { return p.rdpmc(vcpuId, index); } finally { bql.unlock(); }
    }

    @Override public boolean pseudoCounter(int index) {
        bql.lock();
        try { return p.pseudoCounter(index); } finally { bql.unlock(); }
    }

    @Override public boolean portOpenToAllPrivilegeLevels(int port) {
        bql.lock();
        try { return p.portOpenToAllPrivilegeLevels(port); } finally { bql.unlock(); }
    }

    @Override public boolean mmioFarPointersHonourRexW() {
        bql.lock();
        try { return p.mmioFarPointersHonourRexW(); } finally { bql.unlock(); }
    }

    @Override public boolean hypercall(VcpuExit.Hypercall call) {
        bql.lock();
        try { return p.hypercall(call); } finally { bql.unlock(); }
    }

    /** The virtual clock is thread-safe: RDTSC takes no lock. */
    @Override public long tsc(int vcpuId) { return p.tsc(vcpuId); }

    @Override public void apicBaseWritten(int vcpuId, long value) {
        bql.lock();
        try { p.apicBaseWritten(vcpuId, value); } finally { bql.unlock(); }
    }

    @Override public int taskPriorityClass(int vcpuId) {
        bql.lock();
        try { return p.taskPriorityClass(vcpuId); } finally { bql.unlock(); }
    }

    @Override public void setTaskPriorityClass(int vcpuId, int priorityClass) {
        bql.lock();
        try { p.setTaskPriorityClass(vcpuId, priorityClass); } finally { bql.unlock(); }
    }

    @Override public long mmioRead(MmioRegion region, long offset, int size) {
        bql.lock();
        try { return p.mmioRead(region, offset, size); } finally { bql.unlock(); }
    }

    @Override public void mmioWrite(MmioRegion region, long offset, int size, long value) {
        bql.lock();
        try { p.mmioWrite(region, offset, size, value); } finally { bql.unlock(); }
    }

    @Override public long unassignedMmio(VcpuExit.Mmio access) {
        bql.lock();
        try { return p.unassignedMmio(access); } finally { bql.unlock(); }
    }

    /** PAUSE in a spin loop: no lock (the VM answers it without touching shared state in threaded mode). */
    @Override public void pause(int vcpuId) { p.pause(vcpuId); }
}
