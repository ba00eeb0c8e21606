/**
 * Virtio 1.x devices (OASIS virtio 1.2): the modern virtio-over-PCI transport with MSI-X
 * ({@link dev.polyvisor.devices.virtio.VirtioPciFunction}), split virtqueues with indirect descriptors
 * and event index ({@link dev.polyvisor.devices.virtio.Virtqueue}), and the device types
 * ({@link dev.polyvisor.devices.virtio.VirtioBlk}, {@link dev.polyvisor.devices.virtio.VirtioRng},
 * {@link dev.polyvisor.devices.virtio.VirtioNet}, {@link dev.polyvisor.devices.virtio.VirtioConsole},
 * {@link dev.polyvisor.devices.virtio.VirtioVsock}). Devices with receive queues fill them through
 * {@link dev.polyvisor.devices.virtio.DeviceQueues} when host data arrives; their host ends (passt,
 * Unix sockets, the console) live in the VMM and hand data over from their own threads.
 * Imports {@code memory} and the parent {@code devices} package (PCI configuration space, MSI sink);
 * never {@code personality}, {@code cpu} or {@code vmm}: the VMM opens the backing files, picks the
 * slots and BAR addresses and wires MSI-X to the APIC bus and DMA writes to the trace cache.
 */
package dev.polyvisor.devices.virtio;
