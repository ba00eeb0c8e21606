/**
 * The common core every personality builds on: the ABI contract as data ({@link
 * dev.polyvisor.personality.core.AbiElement}, {@link dev.polyvisor.personality.core.AbiContract}) and
 * the gate that applies {@code --abi-disable} to it, MSR access results, the VMM callbacks a
 * personality needs ({@link dev.polyvisor.personality.core.InterruptInjector}), the pvclock layout
 * shared by KVM and Xen, and guest-virtual access for pointer-passing ABIs. Imports {@code cpu},
 * {@code memory}, {@code clock} only.
 */
package dev.polyvisor.personality.core;
