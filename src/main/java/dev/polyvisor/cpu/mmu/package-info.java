/**
 * The soft MMU: linear to physical translation (32-bit, PAE and 4-level paging; SDM Vol. 3A ch. 4),
 * the per-vCPU TLB with separate read, write and fetch tags per privilege, A/D bit updates, #PF
 * error codes, and the code-page tracking that detects self-modifying code.
 *
 * <p>May import {@code cpu} (the state it translates for) and {@code memory}.
 */
package dev.polyvisor.cpu.mmu;
