package dev.polyvisor.vmm;

import dev.polyvisor.cpu.Platform.MsrResult;

/**
 * MSRs the CPU does not own (hypervisor MSRs of a personality, platform MSRs). The default,
 * {@link #NONE}, claims nothing: RDMSR and WRMSR then raise #GP(0) as on hardware (SDM Vol. 2B, RDMSR).
 */
public interface MsrSource {
    MsrResult rdmsr(int vcpuId, int index);

    /** Returns false when the MSR is unknown or the value is rejected (the CPU raises #GP(0)). */
    boolean wrmsr(int vcpuId, int index, long value);

    MsrSource NONE = new MsrSource() {
        @Override public MsrResult rdmsr(int vcpuId, int index) { return MsrResult.gp(); }
        @Override public boolean wrmsr(int vcpuId, int index, long value) { return false; }
    };
}
