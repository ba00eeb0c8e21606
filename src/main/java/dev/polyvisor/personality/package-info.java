/**
 * Hypervisor ABIs presented to the guest (bare, kvm, hyperv, xen, vmware): CPUID leaves at a base,
 * MSRs, hypercalls and shared guest structures, each described as data in an ABI contract whose
 * elements can be switched off one by one. Imports {@code cpu} (exit types, GuestContext),
 * {@code memory} and {@code clock}; never {@code devices}.
 */
package dev.polyvisor.personality;
