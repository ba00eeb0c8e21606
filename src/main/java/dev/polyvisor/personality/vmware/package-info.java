/**
 * VMware's backdoor ABI as data (arch/x86/kernel/cpu/vmware.c, arch/x86/include/asm/vmware.h): signature,
 * the 0x40000010 timing leaf, backdoor port, magic and commands, and the contract. Behaviour lives in
 * {@code dev.polyvisor.personality.VmwarePersonality}. Imports only {@code personality.core}.
 */
package dev.polyvisor.personality.vmware;
