/**
 * Xen HVM's ABI as data: CPUID leaves, hypercall numbers, sub-operations, errno values and structure
 * offsets from include/xen/interface/*.h and arch/x86/include/asm/xen/*.h, and the contract. Behaviour
 * lives in {@code dev.polyvisor.personality.XenPersonality}. Imports only {@code personality.core}.
 */
package dev.polyvisor.personality.xen;
