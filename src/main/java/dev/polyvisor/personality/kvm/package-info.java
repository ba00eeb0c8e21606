/**
 * KVM's paravirtual ABI as data: numbers from arch/x86/include/uapi/asm/kvm_para.h and
 * include/uapi/linux/kvm_para.h, the contract listing what each element enables in the 6.1 guest
 * (arch/x86/kernel/kvm.c, kvmclock.c), and the steal-time record layout. The behaviour lives in
 * {@code dev.polyvisor.personality.KvmPersonality}. Imports only {@code personality.core}.
 */
package dev.polyvisor.personality.kvm;
