/**
 * The host ends of the virtio devices that talk to the outside world: the passt process and its
 * QEMU stream socket behind virtio-net ({@code --net user}), a host TAP device ({@code --net tap=IFNAME}),
 * and the Unix sockets behind virtio-vsock ({@code --vsock}, Firecracker's convention). Each runs its own
 * reader threads, which hand data to the device and wake the VM thread; the device state itself is only
 * touched on the VM thread. The network backends also own a writer thread each ({@code TransmitQueue}):
 * the VM thread only copies a transmitted frame into a bounded ring, so a host end that stalls makes
 * frames drop, never the VM hang. The vsock host end has a writer thread per connection
 * ({@code StreamOutbox}), whose bounded ring the device's credit keeps the guest within. Imports
 * {@code devices.virtio}; the VMM ({@code vmm.pc}) creates these and closes them when the VM ends.
 */
package dev.polyvisor.vmm.hostio;
