/**
 * The virtual machine monitor: {@code VmConfig} to a running {@code Vm}: memory map, vCPUs, the exit
 * dispatch that answers {@link dev.polyvisor.cpu.Platform} calls from the I/O bus, the CPUID table and
 * the personalities; boot loaders (Linux boot protocol, PVH, multiboot, flat binaries); ACPI and e820
 * builders; lifecycle. Wires {@code devices} and {@code personality}, which never import each other.
 */
package dev.polyvisor.vmm;
