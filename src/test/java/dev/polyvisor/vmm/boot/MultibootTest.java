package dev.polyvisor.vmm.boot;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.TestPlatform;
import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class MultibootTest {
    static final byte[] CODE = {(byte) 0xF4, (byte) 0x90, (byte) 0x90, (byte) 0x90};
    @TempDir Path dir;

    private static String cstring(GuestMemory m, long a) {
        byte[] b = m.readBytes(a, 256);
        int n = 0;
        while (b[n] != 0) n++;
        return new String(b, 0, n, StandardCharsets.UTF_8);
    }

    @Test
    void elfKernelEntersProtectedModeWithMagicAndBootInfo() throws Exception {
        byte[] img = TestImages.elf32(0x100000, 0x10000C, CODE, 0x1000, true);
        Path k = Files.write(dir.resolve("k.elf"), img);
        Path mod = Files.write(dir.resolve("mod.bin"), "module-data".getBytes());
        try (GuestMemory m = new GuestMemory(16 << 20)) {
            Cpu c = new Cpu(0, m, new TestPlatform());
            var r = Multiboot.load(m, c, k, "console=ttyS0 quiet", List.of(new Multiboot.Module(mod, "mod.bin arg")));
            assertEquals(0x10000C, c.rip);
            assertEquals(0x2BADB002L, c.r[Cpu.RAX]);
            assertEquals(r.mbi(), c.r[Cpu.RBX]);
            assertEquals(Cpu.CR0_PE, c.cr0 & (Cpu.CR0_PE | Cpu.CR0_PG));
            assertEquals(4, c.defOpSize);
            assertEquals(0, c.cpl);
            assertFalse(c.interruptsEnabled());
            for (int s = 0; s < 6; s++) {
                assertEquals(0, c.segBase[s]);
                assertEquals(0xFFFF_FFFFL, c.segLimit[s]);
            }
            assertEquals(BootCpu.CODE32, c.segSel[Cpu.CS]);
            // The GDT in memory matches the cached descriptors.
            assertEquals(0x00CF_9B00_0000_FFFFL, m.ld64(c.gdtBase + BootCpu.CODE32));
            assertEquals(0x00CF_9300_0000_FFFFL, m.ld64(c.gdtBase + BootCpu.DATA));
            // Code and BSS.
            assertArrayEquals(CODE, m.readBytes(0x10000C, 4));
            assertTrue(r.kernelEnd() >= 0x100000 + 12 + 4 + 0x1000);
            long mbi = r.mbi();
            int flags = m.ld32(mbi);
            assertEquals(Multiboot.MBI_MEM | Multiboot.MBI_CMDLINE | Multiboot.MBI_MODS | Multiboot.MBI_MMAP | Multiboot.MBI_LOADER_NAME, flags);
            assertEquals(639, m.ld32(mbi + 4));
            assertEquals(15 * 1024, m.ld32(mbi + 8));
            assertEquals(k + " console=ttyS0 quiet", cstring(m, m.ld32(mbi + 16)));
            assertEquals("polyvisor", cstring(m, m.ld32(mbi + 64)));
            assertEquals(1, m.ld32(mbi + 20));
            long modEntry = m.ld32(mbi + 24);
            long modStart = m.ld32(modEntry) & 0xFFFF_FFFFL, modEnd = m.ld32(modEntry + 4) & 0xFFFF_FFFFL;
            assertEquals(0, modStart & 0xFFF, "modules are page aligned");
            assertTrue(modStart >= r.kernelEnd());
            assertEquals("module-data", new String(m.readBytes(modStart, (int) (modEnd - modStart))));
            assertEquals("mod.bin arg", cstring(m, m.ld32(modEntry + 8)));
            // Memory map: 4 entries of 24 bytes; the last covers RAM above 1 MiB.
            assertEquals(96, m.ld32(mbi + 44));
            long mm = m.ld32(mbi + 48);
            assertEquals(20, m.ld32(mm));
            assertEquals(0, m.ld64(mm + 4));
            assertEquals(0x9FC00, m.ld64(mm + 12));
            assertEquals(1, m.ld32(mm + 20));
            assertEquals(0x100000, m.ld64(mm + 72 + 4));
            assertEquals(15 << 20, m.ld64(mm + 72 + 12));
        }
    }

    @Test
    void aoutKludgeLoadsAtTheHeaderAddressesAndZeroesBss() throws Exception {
        byte[] img = TestImages.aout(0x200000, CODE, 64);
        try (GuestMemory m = new GuestMemory(8 << 20)) {
            m.ram.asSlice(0x200000, 0x100).fill((byte) 0xAA);
            Cpu c = new Cpu(0, m, new TestPlatform());
            var r = Multiboot.load(m, c, img, "k", "k", List.of());
            assertEquals(0x200020, c.rip);
            assertArrayEquals(CODE, m.readBytes(0x200020, 4));
            byte[] bss = m.readBytes(0x200024, 64);
            assertArrayEquals(new byte[64], bss);
            assertEquals(0x200024 + 64, r.kernelEnd());
        }
    }

    @Test
    void headerIsFoundOnlyInTheFirst8KiB() throws Exception {
        byte[] pad = new byte[8192];
        byte[] img = TestImages.concat(pad, TestImages.multibootHeader(Multiboot.HF_AOUT_KLUDGE));
        LoadException e = assertThrows(LoadException.class, () -> Multiboot.findHeader(img, "k"));
        assertTrue(e.getMessage().contains("no multiboot header"), e.getMessage());
        byte[] near = TestImages.concat(new byte[8180], TestImages.multibootHeader(0));
        assertEquals(8180, Multiboot.findHeader(near, "k").offset());
    }

    @Test
    void badChecksumIsReported() {
        byte[] h = TestImages.multibootHeader(0);
        h[8] ^= 1;
        LoadException e = assertThrows(LoadException.class, () -> Multiboot.findHeader(h, "k"));
        assertEquals("k: multiboot header at offset 0 has a bad checksum", e.getMessage());
    }

    @Test
    void missingFileIsAOneLineError() throws Exception {
        try (GuestMemory m = new GuestMemory(4 << 20)) {
            Cpu c = new Cpu(0, m, new TestPlatform());
            LoadException e = assertThrows(LoadException.class,
                    () -> Multiboot.load(m, c, dir.resolve("nope.elf"), "", List.of()));
            assertEquals("kernel " + dir.resolve("nope.elf") + ": no such file", e.getMessage());
        }
    }

    @Test
    void truncatedAndOversizedImagesAreRejected() throws Exception {
        try (GuestMemory m = new GuestMemory(4 << 20)) {
            Cpu c = new Cpu(0, m, new TestPlatform());
            byte[] img = TestImages.aout(0x100000, CODE, 0);
            byte[] cut = Arrays.copyOf(img, 20);
            assertTrue(assertThrows(LoadException.class, () -> Multiboot.load(m, c, cut, "k", "k", List.of()))
                    .getMessage().contains("truncated"));
            // a.out whose load_end_addr points past the end of the file
            byte[] longer = img.clone();
            java.nio.ByteBuffer.wrap(longer).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(20, 0x100000 + 4096);
            assertTrue(assertThrows(LoadException.class, () -> Multiboot.load(m, c, longer, "k", "k", List.of()))
                    .getMessage().contains("truncated"));
            // ELF segment beyond the 4 MiB of RAM
            byte[] high = TestImages.elf32(0x1000000, 0x100000C, CODE, 0, true);
            assertTrue(assertThrows(LoadException.class, () -> Multiboot.load(m, c, high, "k", "k", List.of()))
                    .getMessage().contains("outside guest RAM"));
            // ELF with the program header table cut off
            byte[] elf = TestImages.elf32(0x100000, 0x10000C, CODE, 0, true);
            byte[] elfCut = Arrays.copyOf(elf, 60);
            byte[] hdrOnly = TestImages.concat(elfCut, new byte[0]);
            // the multiboot header sits at 0x100, past the cut: so no header is found at all
            assertTrue(assertThrows(LoadException.class, () -> Multiboot.load(m, c, hdrOnly, "k", "k", List.of()))
                    .getMessage().contains("no multiboot header"));
        }
    }

    @Test
    void neitherElfNorAoutIsRejected() throws Exception {
        byte[] img = TestImages.concat(TestImages.multibootHeader(0), CODE);
        try (GuestMemory m = new GuestMemory(4 << 20)) {
            Cpu c = new Cpu(0, m, new TestPlatform());
            LoadException e = assertThrows(LoadException.class, () -> Multiboot.load(m, c, img, "k", "k", List.of()));
            assertTrue(e.getMessage().contains("neither ELF nor"), e.getMessage());
        }
    }

    @Test
    void unsupportedRequiredFeatureBitsAreRejected() throws Exception {
        byte[] img = TestImages.concat(TestImages.multibootHeader(1 << 5), CODE);
        try (GuestMemory m = new GuestMemory(4 << 20)) {
            Cpu c = new Cpu(0, m, new TestPlatform());
            LoadException e = assertThrows(LoadException.class, () -> Multiboot.load(m, c, img, "k", "k", List.of()));
            assertTrue(e.getMessage().contains("unsupported features (flags 0x20)"), e.getMessage());
        }
    }
}
