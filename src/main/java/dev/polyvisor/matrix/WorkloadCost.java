package dev.polyvisor.matrix;

/**
 * What one micro-workload cost the guest between its start and stop markers.
 *
 * @param instructions guest instructions retired (all vCPUs)
 * @param exits        VM exits (requests the vCPUs made of the VMM)
 */
public record WorkloadCost(long instructions, long exits) {}
