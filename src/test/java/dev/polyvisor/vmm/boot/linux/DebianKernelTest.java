package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.vmm.boot.LoadException;
import static org.junit.jupiter.api.Assertions.*;

import dev.polyvisor.guest.DebianFixture;
import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.memory.GuestMemory;
import java.nio.file.Files;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The loaders against Debian's real cloud kernel (linux-image-cloud-amd64). */
@Tag("debian")
class DebianKernelTest {
    static final long RAM = 256 << 20;
    static GuestImage guest;
    static byte[] kernel;

    @BeforeAll
    static void fetch() throws Exception {
        guest = DebianFixture.defaultGuest();
        kernel = Files.readAllBytes(guest.kernel());
    }

    @Test
    void headerIsA64BitCapableRelocatableBzImage() throws LoadException {
        BzImage k = BzImage.parse(kernel);
        System.err.println("debian kernel: " + k.kernelVersionString() + ", boot protocol " + k.versionString()
                + ", payload " + KernelPayload.detect(k.payload()));
        assertTrue(k.version >= 0x020F, k.versionString()); // 6.1 speaks protocol 2.15
        assertTrue(k.supports64BitEntry());
        assertTrue(k.relocatable);
        assertEquals(0x1000000, k.prefAddress);
        assertTrue(k.initSize > k.kernelLength());
        assertTrue(k.kernelVersionString().contains(guest.kernelRelease()), k.kernelVersionString());
    }

    @Test
    void payloadDecompressesToAVmlinuxWithThePvhNote() throws LoadException {
        BzImage k = BzImage.parse(kernel);
        assertEquals(KernelPayload.Format.LZ4_LEGACY, KernelPayload.detect(k.payload())); // CONFIG_KERNEL_LZ4=y
        ElfKernel elf = Pvh.vmlinux(kernel);
        long entry = elf.pvhEntry().orElseThrow();
        assertEquals(0x1000000, elf.lowestAddress());
        assertTrue(entry > elf.lowestAddress() && entry < elf.highestAddress(), Long.toHexString(entry));
        assertTrue(elf.highestAddress() < RAM);
    }

    @Test
    void theVmmsKaslrFindsTheRelocationTableAndMovesTheKernelsPointers() throws Exception {
        try (VmlinuxStream v = VmlinuxStream.of(kernel); GuestMemory mem = new GuestMemory(RAM)) {
            v.loadInto(mem);
            byte[] relocs = v.relocationTable();
            // Debian's kernel has CONFIG_RANDOMIZE_BASE: the table is thousands of entries, all inside the image.
            assertTrue(relocs.length > 40_000, relocs.length + " bytes");
            assertTrue(KernelRelocations.valid(relocs, v.lowestAddress(), v.highestAddress()));
        }
        // A fixed slot: the loaded image differs from the one at the link address only in relocated fields, each moved by the slide.
        java.util.random.RandomGenerator fixed = new java.util.SplittableRandom(7);
        try (GuestMemory a = new GuestMemory(RAM); GuestMemory b = new GuestMemory(RAM)) {
            LinuxBoot.load(a, java.lang.foreign.MemorySegment.ofArray(kernel), true, null, null, "console=ttyS0", LinuxBootTest.e820(RAM), 0);
            LinuxBoot.load(b, java.lang.foreign.MemorySegment.ofArray(kernel), true, fixed, null, "console=ttyS0", LinuxBootTest.e820(RAM), 0);
            assertEquals(0, a.ld8(LinuxBoot.BOOT_PARAMS + BzImage.LOADFLAGS) & LinuxBoot.KASLR_FLAG);
            assertEquals(LinuxBoot.KASLR_FLAG, b.ld8(LinuxBoot.BOOT_PARAMS + BzImage.LOADFLAGS) & LinuxBoot.KASLR_FLAG);
            int changed = 0;
            for (long pa = 0x100_0000; pa < 0x100_0000 + (32 << 20); pa += 8) if (a.ld64(pa) != b.ld64(pa)) changed++;
            assertTrue(changed > 10_000, changed + " quadwords moved");
            // With nokaslr the same source leaves the image where it was linked.
            try (GuestMemory c = new GuestMemory(RAM)) {
                LinuxBoot.load(c, java.lang.foreign.MemorySegment.ofArray(kernel), true, fixed, null, "console=ttyS0 nokaslr", LinuxBootTest.e820(RAM), 0);
                for (long pa = 0x100_0000; pa < 0x100_0000 + (32 << 20); pa += 8) assertEquals(a.ld64(pa), c.ld64(pa));
            }
        }
    }

    @Test
    void linuxBootLoadsTheKernelAndInitramfs() throws Exception {
        byte[] initrd = Files.readAllBytes(guest.initramfs());
        try (GuestMemory mem = new GuestMemory(RAM)) {
            LoadedKernel lk = LinuxBoot.load(mem, kernel, initrd, "console=ttyS0", LinuxBootTest.e820(RAM));
            BzImage k = BzImage.parse(kernel);
            assertEquals(0x1000000, lk.kernelStart());
            assertEquals(0x1000200, lk.entry().rip());
            assertEquals(0x53726448, mem.ld32(LinuxBoot.BOOT_PARAMS + 0x202));
            assertEquals(k.initSize, mem.ld32(LinuxBoot.BOOT_PARAMS + 0x260) & 0xFFFF_FFFFL);
            assertTrue(lk.initrdStart() >= lk.kernelEnd());
            assertEquals(initrd.length, mem.ld32(LinuxBoot.BOOT_PARAMS + 0x21C));
            assertArrayEquals(java.util.Arrays.copyOf(initrd, 4096), mem.readBytes(lk.initrdStart(), 4096));
        }
    }

    @Test
    void pvhLoadsTheSegmentsAndStartInfo() throws Exception {
        byte[] initrd = Files.readAllBytes(guest.initramfs());
        ElfKernel elf = Pvh.vmlinux(kernel);
        try (GuestMemory mem = new GuestMemory(RAM)) {
            LoadedKernel lk = Pvh.load(mem, elf, initrd, "console=ttyS0", LinuxBootTest.e820(RAM), 0);
            assertEquals(elf.pvhEntry().orElseThrow(), lk.entry().rip());
            assertEquals(Pvh.START_INFO_MAGIC, mem.ld32(lk.bootInfo()));
            ElfKernel.Segment first = elf.loads.getFirst();
            assertArrayEquals(java.util.Arrays.copyOfRange(elf.image, (int) first.fileOffset(), (int) first.fileOffset() + 4096),
                    mem.readBytes(first.paddr(), 4096));
            assertTrue(lk.initrdStart() >= elf.highestAddress());
        }
    }
}
