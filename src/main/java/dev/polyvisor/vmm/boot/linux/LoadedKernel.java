package dev.polyvisor.vmm.boot.linux;

/**
 * Where a loader put things in guest memory, and the state to start the vCPU in.
 *
 * @param bootInfo physical address of boot_params (Linux protocol) or hvm_start_info (PVH)
 */
public record LoadedKernel(EntryState entry, long kernelStart, long kernelEnd, long initrdStart, long initrdSize,
                           long cmdlineAddr, long bootInfo) {}
