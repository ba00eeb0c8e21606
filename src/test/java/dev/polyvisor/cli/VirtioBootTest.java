package dev.polyvisor.cli;

import dev.polyvisor.guest.GuestImages;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Debian's kernel drives Polyvisor's virtio devices through its own virtio_pci (modern transport,
 * MSI-X), virtio_blk and virtio_rng drivers (issue #13): a disk image written from the guest holds the
 * bytes on the host after sync; a read-only disk refuses writes; the entropy device feeds /dev/hwrng.
 */
@Tag("linux")
class VirtioBootTest {
    static final int MIB = 1 << 20;
    @TempDir Path dir;

    @BeforeAll
    static void prepareGuest() throws Exception { GuestImages.defaultGuest(); }

    private static CliRun.Result run(String... args) { return CliRun.run(900, args); }

    private static byte[] pattern() {
        byte[] line = "polyvisor-virtio-pattern\n".getBytes(StandardCharsets.US_ASCII);
        byte[] p = new byte[MIB];
        for (int i = 0; i < p.length; i++) p[i] = line[i % line.length];
        return p;
    }

    @Test
    void theGuestWritesTheDiskDurablyAndReadsEntropyFromTheHost() throws Exception {
        Path img = dir.resolve("disk.img");
        Files.write(img, new byte[16 * MIB]);
        CliRun.Result r = run("run", "--disk", img.toString(), "--device", "virtio-rng", "--append", "loglevel=7", "--exec", String.join("; ",
                "set -e",
                "ls /dev/vda",
                "yes polyvisor-virtio-pattern | head -c 1048576 > /tmp/p",
                "dd if=/tmp/p of=/dev/vda bs=64k seek=16 2>/dev/null",
                "sync",
                "echo 3 > /proc/sys/vm/drop_caches",
                "dd if=/dev/vda bs=64k skip=16 count=16 2>/dev/null | sha256sum",
                "cat /sys/class/misc/hw_random/rng_current",
                "head -c 1048576 /dev/hwrng | wc -c",
                "grep -c PCI-MSI.*virtio /proc/interrupts",
                "grep -c -E '^(virtio_blk|virtio_rng|virtio_net|vsock|virtio_console) ' /proc/modules"));
        assertEquals(0, r.status(), r.err() + r.out());
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(pattern()));
        // /init loaded the drivers of the functions present (disk, entropy), not those of absent net, vsock or console.
        assertEquals("/dev/vda\n" + sha + "  -\nvirtio_rng.0\n1048576\n4\n2\n", r.out(), r.err());
        byte[] disk = Files.readAllBytes(img);
        assertArrayEquals(pattern(), Arrays.copyOfRange(disk, MIB, 2 * MIB), "the image holds the guest's bytes at 1 MiB");
        assertArrayEquals(new byte[MIB], Arrays.copyOfRange(disk, 0, MIB), "and nothing before them");
        assertTrue(r.err().contains("[vda] 32768 512-byte logical blocks"), r.err());
        assertFalse(r.err().contains("needs reset"), r.err());
        // The VMM's BAR assignment is what Linux claims, and MSI-X is what the driver uses.
        assertTrue(r.err().contains("pci 0000:00:02.0: BAR 4 [mem 0xfe010000-0xfe017fff 64bit]"), r.err());
        var bad = java.util.regex.Pattern.compile("BUG:|Oops|WARNING:|Call Trace|Kernel panic").matcher(r.err());
        assertFalse(bad.find(), () -> "kernel log has '" + bad.group() + "':\n" + r.err());
    }

    @Test
    void withMsiOffTheDriversUseIntxThroughTheAcpiRoutingTable() throws Exception {
        // pci=nomsi: Linux enables no MSI-X, so virtio-pci falls back to INTA#, which it finds through
        // PCI0's _PRT (slot 1, the entropy device: GSI 17; slot 2, the disk: GSI 18) as level-triggered pins.
        Path img = dir.resolve("intx.img");
        Files.write(img, new byte[4 * MIB]);
        CliRun.Result r = run("run", "--disk", img.toString(), "--device", "virtio-rng-pci", "--append", "pci=nomsi", "--exec", String.join("; ",
                "set -e",
                "yes polyvisor-virtio-pattern | head -c 1048576 > /tmp/p",
                "dd if=/tmp/p of=/dev/vda bs=64k 2>/dev/null",
                "sync",
                "echo 3 > /proc/sys/vm/drop_caches",
                "dd if=/dev/vda bs=64k count=16 2>/dev/null | sha256sum",
                "head -c 4096 /dev/hwrng | wc -c",
                "grep -c PCI-MSI /proc/interrupts || true",
                "awk '/virtio/ {print $1, $(NF-2), $(NF-1), $NF}' /proc/interrupts"));
        assertEquals(0, r.status(), r.err() + r.out());
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(pattern()));
        assertEquals(sha + "  -\n4096\n0\n17: IO-APIC 17-fasteoi virtio0\n18: IO-APIC 18-fasteoi virtio1\n", r.out(), r.err());
        assertArrayEquals(pattern(), Arrays.copyOfRange(Files.readAllBytes(img), 0, MIB));
    }

    @Test
    void aReadOnlyDiskRefusesWrites() throws Exception {
        Path img = dir.resolve("ro.img");
        byte[] content = new byte[4 * MIB];
        Arrays.fill(content, (byte) 'r');
        Files.write(img, content);
        CliRun.Result r = run("run", "--disk", img + ",readonly=on,serial=pv-ro-disk,format=raw", "--exec",
                "cat /sys/block/vda/ro; if dd if=/dev/zero of=/dev/vda bs=512 count=1 conv=fsync 2>/dev/null; then echo written; "
                        + "else echo refused; fi; head -c 8 /dev/vda; echo; echo $(cat /sys/block/vda/serial)");
        assertEquals(0, r.status(), r.err() + r.out());
        assertEquals("1\nrefused\nrrrrrrrr\npv-ro-disk\n", r.out(), r.err());
        assertArrayEquals(content, Files.readAllBytes(img));
    }

    /**
     * A host block device is a disk as an image file is (QEMU's and Firecracker's raw block devices): a loop device over a
     * 16 MiB file, which the guest sees at that size and writes through to the file. Needs root and the loop driver:
     * skipped, saying so, where losetup cannot attach one.
     */
    @Test
    void aHostBlockDeviceIsADisk() throws Exception {
        Path img = dir.resolve("backing.img");
        Files.write(img, new byte[16 * MIB]);
        Process attach = new ProcessBuilder("losetup", "-f", "--show", img.toString()).redirectErrorStream(true).start();
        String loop;
        try {
            loop = new String(attach.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            org.junit.jupiter.api.Assumptions.assumeTrue(attach.waitFor() == 0 && loop.startsWith("/dev/loop"),
                    "losetup could not attach a loop device here (needs root and the loop driver): " + loop);
        } catch (java.io.IOException e) {
            org.junit.jupiter.api.Assumptions.abort("no losetup on this host: " + e.getMessage());
            return;
        }
        try {
            CliRun.Result r = run("run", "--disk", loop, "--exec", String.join("; ",
                    "set -e",
                    "cat /sys/block/vda/size",
                    "yes polyvisor-virtio-pattern | head -c 1048576 > /tmp/p",
                    "dd if=/tmp/p of=/dev/vda bs=64k seek=16 2>/dev/null",
                    "sync"));
            assertEquals(0, r.status(), r.err() + r.out());
            assertEquals("32768\n", r.out(), r.err());
            byte[] disk = Files.readAllBytes(img);
            assertArrayEquals(pattern(), Arrays.copyOfRange(disk, MIB, 2 * MIB));
        } finally {
            new ProcessBuilder("losetup", "-d", loop).inheritIO().start().waitFor();
        }
    }
}
