/**
 * Hypervisor ABIs presented to the guest (bare, kvm, hyperv, xen, vmware, and an unknown one): CPUID leaves at a base,
 * MSRs, hypercalls and shared guest structures, each described as data in an ABI contract whose
 * elements can be switched off one by one.
 *
 * <p>This package holds the sealed {@link dev.polyvisor.personality.Personality} and its six
 * implementations, the {@link dev.polyvisor.personality.PersonalityStack} the VMM talks to, the
 * {@link dev.polyvisor.personality.CpuidTable} composition and the {@link
 * dev.polyvisor.personality.AbiCatalog}. Subpackages: {@code core} (contract types, pvclock, VMM
 * callbacks) and one per personality with its ABI numbers and contract.
 *
 * <p>Imports {@code cpu} (exit types, GuestContext, the CPU model), {@code memory} and {@code clock};
 * never {@code devices}.
 */
package dev.polyvisor.personality;
