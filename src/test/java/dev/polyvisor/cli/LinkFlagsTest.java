package dev.polyvisor.cli;

import dev.polyvisor.vmm.VmConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** --net and --vsock as users spell them (QEMU's hostfwd, Firecracker's vsock). */
class LinkFlagsTest {
    @TempDir Path dir;

    @Test
    void netUserWithQemuHostForwards() {
        VmConfig.Net n = LinkFlags.net("user,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp::5353-:53,hostfwd=::8080-:80");
        assertEquals(new VmConfig.Net.User(List.of(new VmConfig.HostForward(false, "127.0.0.1", 2222, 22),
                new VmConfig.HostForward(true, "", 5353, 53),
                new VmConfig.HostForward(false, "", 8080, 80))), n);
        assertEquals(new VmConfig.Net.User(List.of()), LinkFlags.net("user"));
    }

    @Test
    void netTapNamesAHostInterface() {
        assertEquals(new VmConfig.Net.Tap("tap0"), LinkFlags.net("tap=tap0"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LinkFlags.net("tap=this-name-is-too-long"))
                .getMessage().contains("is not an interface name"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LinkFlags.net("tap="))
                .getMessage().contains("is not an interface name"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LinkFlags.net("tap=a/b"))
                .getMessage().contains("is not an interface name"));
        assertEquals("--net tap=tap0,hostfwd=tcp::1-:2: tap takes no options (hostfwd= is user's)",
                assertThrows(IllegalArgumentException.class, () -> LinkFlags.net("tap=tap0,hostfwd=tcp::1-:2")).getMessage());
    }

    @Test
    void badNetSpecsAreOneLine() {
        assertEquals("--net socket: 'user' (passt) or 'tap=IFNAME' (a host TAP interface)",
                assertThrows(IllegalArgumentException.class, () -> LinkFlags.net("socket")).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LinkFlags.net("user,hostfwd=tcp:127.0.0.1:70000-:22"))
                .getMessage().contains("ports are 1-65535"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LinkFlags.net("user,hostfwd=sctp::1-:2"))
                .getMessage().contains("is not tcp|udp"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LinkFlags.net("user,restrict=on"))
                .getMessage().contains("unknown option 'restrict=on'"));
    }

    @Test
    void vsockNeedsCidAndSocketPath() {
        Path uds = dir.resolve("v.sock");
        assertEquals(new VmConfig.Vsock(3, uds), LinkFlags.vsock("cid=3,uds=" + uds));
        assertEquals(new VmConfig.Vsock(7, uds), LinkFlags.vsock("guest_cid=7,uds_path=" + uds));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LinkFlags.vsock("cid=2,uds=" + uds))
                .getMessage().contains("cid must be between 3"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LinkFlags.vsock("cid=3"))
                .getMessage().contains("needs cid=N,uds=PATH"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LinkFlags.vsock("cid=3,uds=/no/such/dir/v.sock"))
                .getMessage().contains("no directory /no/such/dir"));
    }
}
