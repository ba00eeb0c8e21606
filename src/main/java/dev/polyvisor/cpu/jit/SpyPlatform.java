package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Platform;
import dev.polyvisor.cpu.VcpuExit;

/**
 * Forwards every call to the VM's platform and remembers that one happened: a trace that reached the
 * platform (port I/O, CPUID, MSRs, hypercalls, TSC, ...) has effects outside the CPU and memory, so the
 * self-check must not run it a second time.
 */
final class SpyPlatform implements Platform {
    private final Platform p;
    boolean used;

    SpyPlatform(Platform p) { this.p = p; }

    @Override public long portIn(int port, int size) { used = true; return p.portIn(port, size); }
    @Override public void portOut(int port, int size, long value) { used = true; p.portOut(port, size, value); }
    @Override public int[] cpuid(int vcpuId, int leaf, int subleaf) { used = true; return p.cpuid(vcpuId, leaf, subleaf); }
    @Override public MsrResult rdmsr(int vcpuId, int index) { used = true; return p.rdmsr(vcpuId, index); }
    @Override public boolean wrmsr(int vcpuId, int index, long value) { used = true; return p.wrmsr(vcpuId, index, value); }
    @Override public MsrResult rdpmc(int vcpuId, int index) { used = true; return p.rdpmc(vcpuId, index); }
    @Override public boolean hypercall(VcpuExit.Hypercall call) { used = true; return p.hypercall(call); }
    @Override public long tsc(int vcpuId) { used = true; return p.tsc(vcpuId); }
    @Override public void apicBaseWritten(int vcpuId, long value) { used = true; p.apicBaseWritten(vcpuId, value); }
    @Override public int taskPriorityClass(int vcpuId) { used = true; return p.taskPriorityClass(vcpuId); }
    @Override public void setTaskPriorityClass(int vcpuId, int pc) { used = true; p.setTaskPriorityClass(vcpuId, pc); }
    @Override public long unassignedMmio(VcpuExit.Mmio access) { used = true; return p.unassignedMmio(access); }
    @Override public void pause(int vcpuId) { used = true; p.pause(vcpuId); }
    // MMIO never counted as platform use here (it did not pass through the platform before); forwarded for the VMM's lock.
    @Override public long mmioRead(dev.polyvisor.memory.MmioRegion r, long offset, int size) { return p.mmioRead(r, offset, size); }
    @Override public void mmioWrite(dev.polyvisor.memory.MmioRegion r, long offset, int size, long v) { p.mmioWrite(r, offset, size, v); }
}
