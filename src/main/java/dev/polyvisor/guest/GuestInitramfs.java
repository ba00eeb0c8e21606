package dev.polyvisor.guest;

import java.util.List;

/**
 * Assembles the default guest's initramfs: the directory skeleton, the /dev/console node
 * (character device 5:1, which the kernel opens before running /init), busybox-static with its
 * applet links, the guest probe, udhcpc's event script, the chosen kernel modules with a modules.dep and a load-order list, and /init.
 */
public final class GuestInitramfs {
    private GuestInitramfs() {}

    public static byte[] build(KernelPackage kernel, byte[] busybox, List<String> moduleRoots) throws GuestImageException {
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
        String base = "/lib/modules/" + kernel.release() + "/";
        StringBuilder order = new StringBuilder();
        for (KernelModule m : modules) {
            b.file(base + m.installedPath(), 0644, m.elf());
            order.append(m.installedPath()).append('\n');
        }
        b.file(base + "modules.dep", 0644, ModuleSet.modulesDep(modules));
        b.file(base + "load-order", 0644, order.toString());
        b.file("/init", 0755, GuestInit.script());
        b.file(GuestProbe.PATH, 0755, GuestProbe.script());
        b.file(GuestInit.DHCP_SCRIPT, 0755, GuestInit.dhcpScript());
        return b.build();
    }
}
