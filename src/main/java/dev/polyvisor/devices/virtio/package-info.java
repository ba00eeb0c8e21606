/**
 * Virtio 1.x devices (OASIS virtio 1.2): the modern virtio-over-PCI transport with MSI-X
 * ({@link dev.polyvisor.devices.virtio.VirtioPciFunction}), split virtqueues with indirect descriptors
 * and event index ({@link dev.polyvisor.devices.virtio.Virtqueue}), and the device types
 * ({@link dev.polyvisor.devices.virtio.VirtioBlk}, {@link dev.polyvisor.devices.virtio.VirtioRng}).
 * Imports {@code memory} and the parent {@code devices} package (PCI configuration space, MSI sink);
 * never {@code personality}, {@code cpu} or {@code vmm}: the VMM opens the backing files, picks the
 * slots and BAR addresses and wires MSI-X to the APIC bus and DMA writes to the trace cache.
 */
package dev.polyvisor.devices.virtio;
