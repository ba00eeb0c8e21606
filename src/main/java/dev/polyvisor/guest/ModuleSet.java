package dev.polyvisor.guest;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Dependency closure of kernel modules, ordered so that every module follows its dependencies. */
public final class ModuleSet {
    /**
     * A virtio module that binds PCI functions of vendor 0x1AF4: the transport ({@code virtio_pci}, every
     * virtio function) or a device driver with the device IDs it serves (virtio 1.2, 4.1.2.1: 0x1040 plus the
     * device type, and the transitional ID where the spec defines one).
     */
    public record VirtioDriver(String module, List<Integer> pciDeviceIds) {
        public VirtioDriver { pciDeviceIds = List.copyOf(pciDeviceIds); }

        /** The modern device ID of a virtio device type, and a transitional one when {@code legacy >= 0}. */
        static VirtioDriver of(String module, int deviceType, int legacy) {
            return new VirtioDriver(module, legacy < 0 ? List.of(0x1040 + deviceType) : List.of(0x1040 + deviceType, legacy));
        }

        /** True for the transport, which every virtio PCI function needs. */
        public boolean transport() { return pciDeviceIds.isEmpty(); }
    }

    /** The virtio PCI vendor ID (virtio 1.2, 4.1.2). */
    public static final int VIRTIO_PCI_VENDOR = 0x1AF4;

    /**
     * The virtio drivers a Polyvisor guest may meet: the PCI transport (modern and legacy), block, net, console,
     * entropy, balloon, and the virtio vsock transport (device types 2, 1, 3, 4, 5 and 19, virtio 1.2 5). Their
     * dependencies (virtio, virtio_ring, net_failover, failover, vsock, ...) come in through the closure.
     */
    public static final List<VirtioDriver> VIRTIO_DRIVERS = List.of(
            new VirtioDriver("virtio_pci", List.of()),
            VirtioDriver.of("virtio_blk", 2, 0x1001),
            VirtioDriver.of("virtio_net", 1, 0x1000),
            VirtioDriver.of("virtio_console", 3, 0x1003),
            VirtioDriver.of("virtio_rng", 4, 0x1005),
            VirtioDriver.of("virtio_balloon", 5, 0x1002),
            VirtioDriver.of("vmw_vsock_virtio_transport", 19, -1));

    /** The module names of {@link #VIRTIO_DRIVERS}: the default guest's module roots. */
    public static final List<String> VIRTIO_ROOTS = VIRTIO_DRIVERS.stream().map(VirtioDriver::module).toList();

    /**
     * What mounting an ext4 root from a virtio disk and running systemd on it need before the root's
     * own modules are reachable: ext4 (jbd2, mbcache, crc16 through the closure), crc32c_generic for
     * metadata_csum, which mke2fs enables by default and which ext4 asks the crypto API for by name
     * (fs/ext4/super.c, crypto_alloc_shash("crc32c")), and unix, for systemd's own sockets.
     */
    public static final List<String> ROOTFS_ROOTS = List.of("ext4", "crc32c_generic", "unix");

    private ModuleSet() {}

    /** The modules named in {@code roots} plus everything they depend on, dependencies first. */
    public static List<KernelModule> closure(Map<String, KernelModule> byName, List<String> roots) throws GuestImageException {
        return closure(byName, roots, Set.of());
    }

    /**
     * As {@link #closure(Map, List)}, where a name in {@code builtin} (the kernel's modules.builtin:
     * compiled into the image, e.g. virtio_pci and virtio_console in Debian's 7.x cloud kernel) is
     * already present and is neither loaded nor required to exist as a file.
     */
    public static List<KernelModule> closure(Map<String, KernelModule> byName, List<String> roots, Set<String> builtin)
            throws GuestImageException {
        Set<String> done = new LinkedHashSet<>();
        for (String b : builtin) if (!byName.containsKey(b)) done.add(b);
        List<KernelModule> order = new ArrayList<>();
        for (String root : roots) visit(byName, root, null, done, new HashSet<>(), order);
        return order;
    }

    private static void visit(Map<String, KernelModule> byName, String name, String neededBy, Set<String> done,
                              Set<String> onPath, List<KernelModule> order) throws GuestImageException {
        if (done.contains(name)) return;
        if (!onPath.add(name)) throw new GuestImageException("kernel modules have a dependency cycle through " + name);
        KernelModule m = byName.get(name);
        if (m == null)
            throw new GuestImageException(neededBy == null ? "kernel package has no module " + name
                    : "module " + neededBy + " depends on " + name + ", which the kernel package lacks");
        for (String dep : m.depends()) visit(byName, dep, name, done, onPath, order);
        onPath.remove(name);
        done.add(name);
        order.add(m);
    }

    /** A modules.dep in depmod's format, so that modprobe(8) also works in the guest. */
    public static String modulesDep(List<KernelModule> modules) {
        Map<String, KernelModule> byName = new java.util.HashMap<>();
        for (KernelModule m : modules) byName.put(m.name(), m);
        StringBuilder sb = new StringBuilder();
        for (KernelModule m : modules) {
            sb.append(m.installedPath()).append(':');
            // depmod lists the full transitive closure, nearest first.
            List<String> all = new ArrayList<>();
            collect(byName, m, new LinkedHashSet<>(), all);
            for (String p : all) sb.append(' ').append(p);
            sb.append('\n');
        }
        return sb.toString();
    }

    private static void collect(Map<String, KernelModule> byName, KernelModule m, Set<String> seen, List<String> out) {
        for (String d : m.depends()) {
            KernelModule dm = byName.get(d);
            if (dm != null && seen.add(d)) {
                out.add(dm.installedPath());
                collect(byName, dm, seen, out);
            }
        }
    }
}
