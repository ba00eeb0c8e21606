/**
 * ACPI firmware tables (ACPI Specification 6.5, chapter 5) and the e820 memory map the VMM hands the
 * guest: RSDP, XSDT, FADT, FACS, MADT and a minimal DSDT whose AML names \_S5 so Linux can power off.
 */
package dev.polyvisor.vmm.acpi;
