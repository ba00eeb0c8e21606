/**
 * Device models, each a small class that reads like its datasheet: PIC, PIT, RTC/CMOS, LAPIC, IOAPIC,
 * 16550A UART, i8042, PCI host bridge, ACPI PM, debug-exit; and the port-I/O bus they attach to.
 * Imports {@code memory} and {@code clock}; never {@code personality} or {@code cpu.exec}.
 */
package dev.polyvisor.devices;
