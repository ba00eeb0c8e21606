package dev.polyvisor.vmm.boot;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class ElfImageTest {
    @Test
    void parsesElf32LoadSegmentAndEntry() throws Exception {
        byte[] img = TestImages.elf32(0x100000, 0x100010, new byte[] {1, 2, 3, 4}, 16, false);
        ElfImage e = ElfImage.parse(img, "k");
        assertFalse(e.elf64());
        assertEquals(0x100010, e.entry());
        assertEquals(1, e.segments().size());
        assertEquals(0x100000, e.segments().getFirst().paddr());
        assertEquals(4, e.segments().getFirst().fileSize());
        assertEquals(20, e.segments().getFirst().memSize());
    }

    @Test
    void rejectsMalformedHeaders() {
        byte[] good = TestImages.elf32(0x100000, 0x100000, new byte[] {1}, 0, false);
        assertEquals("k: not an ELF file", assertThrows(LoadException.class, () -> ElfImage.parse(new byte[64], "k")).getMessage());
        assertEquals("k: truncated ELF header", assertThrows(LoadException.class, () -> ElfImage.parse(Arrays.copyOf(good, 30), "k")).getMessage());
        byte[] be = good.clone();
        be[5] = 2;
        assertEquals("k: not a little-endian ELF", assertThrows(LoadException.class, () -> ElfImage.parse(be, "k")).getMessage());
        byte[] arm = good.clone();
        arm[18] = 40;
        assertTrue(assertThrows(LoadException.class, () -> ElfImage.parse(arm, "k")).getMessage().contains("is not i386"));
        byte[] seg = good.clone();
        seg[52 + 16] = 0x7F; // filesz far past the end of the file
        assertTrue(assertThrows(LoadException.class, () -> ElfImage.parse(seg, "k")).getMessage().contains("past the end of the file"));
        byte[] ph = Arrays.copyOf(good, 70);
        assertEquals("k: truncated ELF program headers", assertThrows(LoadException.class, () -> ElfImage.parse(ph, "k")).getMessage());
    }
}
