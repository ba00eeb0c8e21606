package dev.polyvisor.guest;

import java.util.List;

/**
 * Assembles the default guest's initramfs: the directory skeleton, the /dev/console node
 * (character device 5:1, which the kernel opens before running /init), busybox-static with its
 * applet links, the guest probe, udhcpc's event script, the chosen kernel modules with a modules.dep and a load-order list
 * (and the root filesystem's modules with their own list), and /init.
 *
 * <p>Each load-order line is a module's path followed by the roots that need it ({@code path root...}, dependencies
 * before the modules that need them), so that /init can load only what the devices present need: a module goes in
 * when any of its roots does ({@link GuestInit}).
 */
public final class GuestInitramfs {
    private GuestInitramfs() {}

    public static byte[] build(KernelPackage kernel, byte[] busybox, List<String> moduleRoots) throws GuestImageException {
        return build(kernel, busybox, moduleRoots, List.of());
    }

    /**
     * As {@link #build(KernelPackage, byte[], List)}, plus the modules a root filesystem on a disk needs
     * ({@code rootfsRoots}, e.g. {@link ModuleSet#ROOTFS_ROOTS}) and their dependencies, listed in
     * {@value GuestInit#ROOTFS_ORDER} and loaded by /init only when the command line names a {@code root=}:
     * the default guest does not pay for them. A root the kernel lacks as a module (built in, or absent)
     * is left out.
     */
    public static byte[] build(KernelPackage kernel, byte[] busybox, List<String> moduleRoots, List<String> rootfsRoots)
            throws GuestImageException {
        if (busybox.length < 4 || busybox[0] != 0x7F || busybox[1] != 'E')
            throw new GuestImageException("busybox is not an ELF executable");
        InitramfsBuilder b = new InitramfsBuilder();
        for (String d : new String[] {"/bin", "/sbin", "/dev", "/proc", "/sys", "/tmp", "/run", "/etc", "/root"})
            b.directory(d, d.equals("/tmp") ? 01777 : 0755);
        b.charDevice("/dev/console", 0600, 5, 1);
        b.charDevice("/dev/null", 0666, 1, 3);
        b.file("/bin/busybox", 0755, busybox);
        for (String applet : GuestInit.APPLETS) b.symlink("/bin/" + applet, "busybox");
        b.symlink("/sbin/poweroff", "../bin/busybox");

        List<KernelModule> modules = ModuleSet.closure(kernel.modules(), moduleRoots, kernel.builtin());
        java.util.Map<String, List<String>> neededBy = new java.util.HashMap<>();
        for (String root : moduleRoots)
            for (KernelModule m : ModuleSet.closure(kernel.modules(), List.of(root), kernel.builtin()))
                neededBy.computeIfAbsent(m.name(), n -> new java.util.ArrayList<>()).add(root);
        String base = "/lib/modules/" + kernel.release() + "/";
        StringBuilder order = new StringBuilder();
        for (KernelModule m : modules) {
            b.file(base + m.installedPath(), 0644, m.elf());
            order.append(m.installedPath()).append(' ').append(String.join(" ", neededBy.get(m.name()))).append('\n');
        }
        java.util.Set<String> loaded = new java.util.HashSet<>();
        for (KernelModule m : modules) loaded.add(m.name());
        List<KernelModule> all = new java.util.ArrayList<>(modules);
        StringBuilder rootfsOrder = new StringBuilder();
        for (String root : rootfsRoots) {
            if (!kernel.modules().containsKey(root)) continue;
            for (KernelModule m : ModuleSet.closure(kernel.modules(), List.of(root), kernel.builtin())) {
                if (!loaded.add(m.name())) continue;
                b.file(base + m.installedPath(), 0644, m.elf());
                rootfsOrder.append(m.installedPath()).append('\n');
                all.add(m);
            }
        }
        b.file(base + "modules.dep", 0644, ModuleSet.modulesDep(all));
        b.file(base + "load-order", 0644, order.toString());
        if (!rootfsRoots.isEmpty()) b.file(base + GuestInit.ROOTFS_ORDER, 0644, rootfsOrder.toString());
        b.file("/init", 0755, GuestInit.script());
        b.file(GuestProbe.PATH, 0755, GuestProbe.script());
        b.file(GuestInit.DHCP_SCRIPT, 0755, GuestInit.dhcpScript());
        return b.build();
    }
}
