package dev.polyvisor.devices.virtio;

import java.security.SecureRandom;

/**
 * virtio entropy device (virtio 1.2, 5.4): one request queue; the device fills each device-writable
 * buffer with random bytes from the host's {@link SecureRandom}. No features, no configuration.
 */
public final class VirtioRng implements VirtioDevice {
    public static final int TYPE = 4;
    /** The most bytes one request gets (a larger buffer is filled partly; the driver asks again). */
    static final int MAX_REQUEST = 64 * 1024;
    private final SecureRandom random;
    private final GuestDma dma;

    public VirtioRng(GuestDma dma) { this(dma, new SecureRandom()); }

    public VirtioRng(GuestDma dma, SecureRandom random) { this.dma = dma; this.random = random; }

    @Override public int deviceType() { return TYPE; }
    @Override public String name() { return "virtio-rng"; }
    @Override public int pciClass() { return 0xFF0000; } // unclassified device, as QEMU's virtio-rng-pci
    @Override public long features() { return 0; }
    @Override public int queueCount() { return 1; }
    @Override public int queueMaxSize(int queue) { return 256; }
    @Override public int configSize() { return 0; }
    @Override public long configRead(int offset, int size) { return 0; }

    @Override
    public long handle(int queue, DescriptorChain chain) {
        int n = (int) Math.min(chain.writableBytes(), MAX_REQUEST);
        byte[] b = new byte[n];
        random.nextBytes(b);
        return chain.write(0, b, 0, n);
    }
}
