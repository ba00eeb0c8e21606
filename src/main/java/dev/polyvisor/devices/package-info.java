/**
 * Device models, each a small class that reads like its datasheet: PIC, PIT, RTC/CMOS, LAPIC, IOAPIC,
 * 16550A UART, i8042, PCI host bridge (with its memory window for BARs), ACPI PM, POST port; and the
 * port-I/O bus they attach to. Virtio devices live in {@code devices.virtio}.
 * Imports {@code memory}, {@code clock} and {@code cpu.InterruptSource} (the LAPIC and PIC are the
 * vCPU's interrupt source); never {@code personality} or {@code cpu.exec}. {@link
 * dev.polyvisor.devices.PcPlatformDevices} builds and attaches the whole PC set in one call.
 */
package dev.polyvisor.devices;
