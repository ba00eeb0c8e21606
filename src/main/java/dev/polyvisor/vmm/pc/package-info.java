/**
 * The PC board a Linux guest boots on: wires the standard device set, the ACPI tables and the e820
 * map into a VM and loads the kernel. Part of {@code vmm}; imports {@code devices}, {@code vmm.acpi},
 * {@code vmm.boot.linux}.
 */
package dev.polyvisor.vmm.pc;
