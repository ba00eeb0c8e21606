package dev.polyvisor.cli;

import dev.polyvisor.vmm.VmConfig;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The flags of the virtio devices with a host end, spelled as users know them: {@code --net
 * user[,hostfwd=tcp:127.0.0.1:HOSTPORT-:GUESTPORT]} as QEMU's {@code -nic user,hostfwd=...} (QEMU
 * net/slirp.c slirp_hostfwd: {@code tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT}), {@code --net
 * tap=IFNAME} as QEMU's {@code -nic tap,ifname=IFNAME,script=no}, and
 * {@code --vsock cid=N,uds=PATH} as Firecracker's vsock device (guest_cid, uds_path). Each problem is an
 * {@link IllegalArgumentException} with a one-line message.
 */
final class LinkFlags {
    /** Context IDs 0-2 are reserved (hypervisor, local, host: virtio 1.2 5.10.4), and the ID is 32 bits in Linux's uapi. */
    static final long MIN_CID = 3, MAX_CID = 0xFFFF_FFFEL;

    private LinkFlags() {}

    static VmConfig.Net net(String spec) {
        String[] p = spec.split(",");
        if (p[0].toLowerCase(Locale.ROOT).startsWith("tap=")) {
            String ifname = p[0].substring("tap=".length());
            if (p.length > 1) throw new IllegalArgumentException("--net " + spec + ": tap takes no options (hostfwd= is user's)");
            if (!dev.polyvisor.vmm.hostio.TapNetwork.validName(ifname))
                throw new IllegalArgumentException("--net " + spec + ": '" + ifname + "' is not an interface name (1-15 characters, no '/', ':' or spaces)");
            return new VmConfig.Net.Tap(ifname);
        }
        if (!p[0].equalsIgnoreCase("user"))
            throw new IllegalArgumentException("--net " + spec + ": 'user' (passt) or 'tap=IFNAME' (a host TAP interface)");
        List<VmConfig.HostForward> fwd = new ArrayList<>();
        for (int i = 1; i < p.length; i++) {
            if (!p[i].toLowerCase(Locale.ROOT).startsWith("hostfwd="))
                throw new IllegalArgumentException("--net " + spec + ": unknown option '" + p[i] + "' (only hostfwd=)");
            fwd.add(hostForward(spec, p[i].substring("hostfwd=".length())));
        }
        return new VmConfig.Net.User(fwd);
    }

    /** tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT; passt forwards to the guest's own address, so GUESTADDR must be empty. */
    static VmConfig.HostForward hostForward(String spec, String rule) {
        String bad = "--net " + spec + ": hostfwd=" + rule + " is not tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT";
        int c1 = rule.indexOf(':'), dash = rule.indexOf('-');
        if (c1 < 0 || dash < 0) throw new IllegalArgumentException(bad);
        String proto = c1 == 0 ? "tcp" : rule.substring(0, c1).toLowerCase(Locale.ROOT);
        if (!proto.equals("tcp") && !proto.equals("udp")) throw new IllegalArgumentException(bad);
        String host = rule.substring(c1 + 1, dash), guest = rule.substring(dash + 1);
        int hc = host.lastIndexOf(':'), gc = guest.lastIndexOf(':');
        if (hc < 0 || gc < 0) throw new IllegalArgumentException(bad);
        if (gc > 0) throw new IllegalArgumentException("--net " + spec + ": hostfwd to a guest address is not offered "
                + "(passt forwards to the guest's own address): write -:" + guest.substring(gc + 1));
        String addr = host.substring(0, hc);
        if (!addr.isEmpty() && !addr.matches("[0-9.]+|\\[?[0-9a-fA-F:]+]?")) throw new IllegalArgumentException(bad);
        return new VmConfig.HostForward(proto.equals("udp"), addr.replace("[", "").replace("]", ""),
                port(bad, host.substring(hc + 1)), port(bad, guest.substring(gc + 1)));
    }

    private static int port(String bad, String s) {
        try {
            int p = Integer.parseInt(s);
            if (p >= 1 && p <= 65535) return p;
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException(bad + " (ports are 1-65535)");
    }

    static VmConfig.Vsock vsock(String spec) {
        Long cid = null;
        Path uds = null;
        for (String part : spec.split(",")) {
            int eq = part.indexOf('=');
            String k = eq < 0 ? part : part.substring(0, eq).toLowerCase(Locale.ROOT), v = eq < 0 ? "" : part.substring(eq + 1);
            switch (k) {
                case "cid", "guest-cid", "guest_cid" -> {
                    try {
                        cid = Long.parseLong(v);
                    } catch (NumberFormatException e) {
                        throw new IllegalArgumentException("--vsock " + spec + ": cid must be a number, got '" + v + "'");
                    }
                    if (cid < MIN_CID || cid > MAX_CID)
                        throw new IllegalArgumentException("--vsock " + spec + ": cid must be between " + MIN_CID + " and " + MAX_CID);
                }
                case "uds", "uds_path", "path" -> {
                    if (v.isEmpty()) throw new IllegalArgumentException("--vsock " + spec + ": uds needs a path");
                    uds = Path.of(v);
                }
                default -> throw new IllegalArgumentException("--vsock " + spec + ": unknown option '" + part + "' (cid=N,uds=PATH)");
            }
        }
        if (cid == null || uds == null) throw new IllegalArgumentException("--vsock " + spec + ": needs cid=N,uds=PATH");
        Path parent = uds.toAbsolutePath().getParent();
        if (parent != null && !java.nio.file.Files.isDirectory(parent))
            throw new IllegalArgumentException("--vsock " + spec + ": no directory " + parent);
        return new VmConfig.Vsock(cid, uds);
    }
}
