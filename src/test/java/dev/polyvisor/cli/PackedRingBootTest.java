package dev.polyvisor.cli;

import dev.polyvisor.guest.GuestImages;
import dev.polyvisor.guest.ProbeReport;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code --virtio-ring packed}: Debian's virtio_ring takes VIRTIO_F_RING_PACKED for every device it is offered
 * on (virtio 1.2 2.8), and the devices work through packed rings as through split ones: a disk read whole and
 * written (the bytes land in the image), a 1 MiB download through virtio-net and passt (receive buffers that the
 * device takes back when no frame waits), and entropy from virtio-rng.
 */
@Tag("linux")
class PackedRingBootTest {
    @BeforeAll
    static void prepareGuest() throws Exception { GuestImages.defaultGuest(); }

    @TempDir Path dir;

    @Test
    void everyDeviceRunsOnPackedRings() throws Exception {
        byte[] disk = new byte[8 << 20];
        new Random(34).nextBytes(disk);
        Path img = dir.resolve("packed.img");
        Files.write(img, disk);
        try (BlobServer http = BlobServer.start(InetAddress.getLoopbackAddress(), 1 << 20, 35)) {
            CliRun.Result r = CliRun.run(600, "run", "--virtio-ring", "packed", "--disk", img.toString(), "--net", "user",
                    "--device", "virtio-rng", "--exec", String.join("; ",
                            // Bit 34 of the negotiated features (the sysfs string's 35th character).
                            "echo packed $(for f in /sys/bus/virtio/devices/*/features; do cut -c35 $f; done | sort | uniq -c | tr -s ' ')",
                            "sha256sum < /dev/vda",
                            "printf packed-ring-write | dd of=/dev/vda bs=512 seek=100 conv=fsync 2>/dev/null",
                            "gw=$(ip route | awk '/^default/ {print $3}')",
                            "wget -q -O /tmp/blob http://$gw:" + http.port() + "/blob",
                            "sha256sum < /tmp/blob",
                            "head -c 65536 /dev/hwrng | wc -c"));
            assertEquals(0, r.status(), r.err() + r.out());
            assertEquals("packed 3 1\n" + BlobServer.sha256(disk) + "  -\n" + http.sha256() + "  -\n65536\n", r.out(), r.err());
            assertFalse(r.err().contains("needs reset"), r.err());
        }
        byte[] after = Files.readAllBytes(img);
        assertEquals("packed-ring-write", new String(after, 51200, 17, StandardCharsets.US_ASCII));
        assertArrayEquals(Arrays.copyOf(disk, 51200), Arrays.copyOf(after, 51200), "nothing else changed before it");
    }

    /** The probe names the virtio features each driver negotiated: the ring layout is one of them. */
    @Test
    void theProbeShowsTheRingLayoutTheDriverBound() {
        for (String layout : new String[] {"split", "packed"}) {
            CliRun.Result r = CliRun.run(600, "run", "--virtio-ring", layout, "--device", "virtio-rng", "--probe");
            assertEquals(0, r.status(), r.err() + r.out());
            ProbeReport probe = ProbeReport.parse(r.out());
            assertEquals(1, probe.virtioDevices().size(), r.out());
            ProbeReport.VirtioDevice rng = probe.virtioDevices().getFirst();
            assertEquals("0x0004", rng.device(), r.out());
            assertEquals("virtio_rng", rng.driver(), r.out());
            List<String> expected = new ArrayList<>(List.of("INDIRECT_DESC", "EVENT_IDX", "VERSION_1"));
            if (layout.equals("packed")) expected.add("RING_PACKED");
            assertEquals(expected, rng.transportFeatures(), layout + ": " + rng.features());
        }
    }

    @Test
    void anUnknownLayoutIsAUsageError() {
        CliRun.Result r = CliRun.run("run", "--virtio-ring", "ring", "--exec", "true");
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("--virtio-ring ring: the layouts are split and packed"), r.err());
    }
}
