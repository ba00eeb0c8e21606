package dev.polyvisor.vmm.boot.linux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.vmm.boot.LoadException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The streamed vmlinux loader: what the bzImage's decompressor would leave in RAM, from one pass over the payload. */
class VmlinuxStreamTest {
    static final long RAM = 64L << 20;

    /**
     * A vmlinux larger than one LZ4 legacy block (8 MiB) with two PT_LOAD segments whose program headers list
     * them in reverse file order, a .bss tail, and a trailer after the segments (the relocation table).
     */
    static byte[] bigVmlinux() {
        int seg1 = 0x1000, len1 = 9 << 20, seg2 = seg1 + len1 + 0x1000, len2 = 0x3000;
        byte[] elf = new byte[seg2 + len2 + 0x800];
        ByteBuffer b = ByteBuffer.wrap(elf).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {0x7F, 'E', 'L', 'F', 2, 1, 1});
        b.putShort(0x10, (short) 2).putShort(0x12, (short) 62).putInt(0x14, 1);
        b.putLong(0x18, 0x1000000L).putLong(0x20, 0x40);
        b.putShort(0x34, (short) 64).putShort(0x36, (short) 56).putShort(0x38, (short) 2);
        // Program header 0: the second segment (at 0x2000000, memsz with .bss); header 1: the first (0x1000000).
        b.putInt(0x40, 1).putLong(0x48, seg2).putLong(0x58, 0x2000000).putLong(0x60, len2).putLong(0x68, len2 + 0x2000);
        b.putInt(0x78, 1).putLong(0x80, seg1).putLong(0x90, 0x1000000).putLong(0x98, len1).putLong(0xA0, len1);
        Random r = new Random(7);
        for (int i = 0; i < len1; i++) elf[seg1 + i] = (byte) (i % 97 < 60 ? i % 7 : r.nextInt());
        for (int i = 0; i < len2; i++) elf[seg2 + i] = (byte) (0xA0 + i % 5);
        Arrays.fill(elf, seg2 + len2, elf.length, (byte) 0xEE); // must not reach RAM
        return elf;
    }

    @Test
    void copiesEverySegmentFromAMultiBlockLz4PayloadAndZeroesBss() throws LoadException {
        byte[] elf = bigVmlinux();
        byte[] bz = SyntheticKernels.bzImageWithPayload(KernelPayloadTest.lz4Legacy(elf, true));
        try (GuestMemory mem = new GuestMemory(RAM); VmlinuxStream v = VmlinuxStream.of(bz)) {
            mem.st64(0x2000000 + 0x3000 + 0x100, -1L); // what .bss must not keep
            assertEquals(0x1000000L, v.lowestAddress());
            assertEquals(0x2000000L + 0x5000, v.highestAddress());
            assertEquals(0x1000000L, v.entry);
            v.loadInto(mem);
            assertArrayEquals(Arrays.copyOfRange(elf, 0x1000, 0x1000 + (9 << 20)), mem.readBytes(0x1000000, 9 << 20), "segment 1");
            assertArrayEquals(Arrays.copyOfRange(elf, 0x1000 + (9 << 20) + 0x1000, 0x1000 + (9 << 20) + 0x4000),
                    mem.readBytes(0x2000000, 0x3000), "segment 2");
            assertEquals(0, mem.ld64(0x2000000 + 0x3000 + 0x100), ".bss zeroed");
            assertEquals(0, mem.ld8(0x2000000 + 0x5000), "nothing past memsz");
        }
    }

    @Test
    void aZstdPayloadIsCheckedAgainstItsTrailerThoughTheGapsBetweenSegmentsAreSkipped() throws Exception {
        byte[] elf = bigVmlinux();
        byte[] bz = SyntheticKernels.bzImageWithPayload(KernelPayloadTest.kernelZstd(elf, 23));
        try (GuestMemory mem = new GuestMemory(RAM); VmlinuxStream v = VmlinuxStream.of(bz)) {
            v.loadInto(mem); // skips the gaps, reads to the end and checks the size the build appended
            assertArrayEquals(Arrays.copyOfRange(elf, 0x1000 + (9 << 20) + 0x1000, 0x1000 + (9 << 20) + 0x4000),
                    mem.readBytes(0x2000000, 0x3000), "segment 2, after a skipped gap");
        }
    }

    @Test
    void aTruncatedPayloadIsALoadErrorNamingTheSegment() {
        byte[] elf = Arrays.copyOf(bigVmlinux(), 0x1000 + (4 << 20)); // cut inside the first segment
        String m = loadError(KernelPayloadTest.lz4Legacy(elf, true));
        assertTrue(m.startsWith("vmlinux truncated: segment at file offset 0x1000"), m);
    }

    /** The message of the LoadException that loading a bzImage with this payload into fresh RAM ends with. */
    private static String loadError(byte[] payload) {
        byte[] bz = SyntheticKernels.bzImageWithPayload(payload);
        try (GuestMemory mem = new GuestMemory(RAM)) {
            return assertThrows(LoadException.class, () -> {
                try (VmlinuxStream v = VmlinuxStream.of(bz)) { v.loadInto(mem); }
            }).getMessage();
        }
    }

    @Test
    void aWrongSizeTrailerIsReportedAfterTheSegmentsAreCopied() {
        byte[] packed = KernelPayloadTest.lz4Legacy(SyntheticKernels.vmlinux(false), true);
        packed[packed.length - 4] ^= 1;
        String m = loadError(packed);
        assertTrue(m.startsWith("corrupt lz4 kernel payload: decompressed 0x400 bytes but the trailer says"), m);
    }

    @Test
    void overlappingSegmentsAndANonElfPayloadAreRefused() {
        byte[] elf = SyntheticKernels.vmlinux(false);
        ByteBuffer b = ByteBuffer.wrap(elf).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0x78, 1).putLong(0x80, 0x280).putLong(0x90, 0x1100000).putLong(0x98, 0x40).putLong(0xA0, 0x40); // inside segment 0's bytes
        String m = assertThrows(LoadException.class, () -> VmlinuxStream.of(SyntheticKernels.bzImageWithPayload(elf))).getMessage();
        assertEquals("corrupt vmlinux: segments at file offsets 0x200 and 0x280 overlap", m);
        byte[] junk = KernelPayloadTest.lz4Legacy(new byte[200], true);
        assertEquals("vmlinux is not an ELF image",
                assertThrows(LoadException.class, () -> VmlinuxStream.of(SyntheticKernels.bzImageWithPayload(junk))).getMessage());
    }

    @Test
    void aSegmentWhoseEndWrapsIsRefusedBeforeAnythingIsCopied() {
        byte[] elf = SyntheticKernels.vmlinux(false);
        ByteBuffer.wrap(elf).order(ByteOrder.LITTLE_ENDIAN).putLong(0x40 + 40, Long.MAX_VALUE); // memsz: paddr + memsz wraps
        String m = assertThrows(LoadException.class, () -> VmlinuxStream.of(SyntheticKernels.bzImageWithPayload(elf))).getMessage();
        assertEquals("corrupt vmlinux: segment 0 at 0x1000000+0x7fffffffffffffff is outside the physical address space", m);
        assertEquals(m, assertThrows(LoadException.class, () -> ElfKernel.parse(elf)).getMessage(), "the PVH loader's parse says the same");
    }

    @Test
    void kaslrIsOffOnlyForTheWholeWordNokaslr() {
        assertTrue(LinuxBoot.kaslrDisabled("console=ttyS0 nokaslr quiet"));
        assertTrue(LinuxBoot.kaslrDisabled("nokaslr"));
        assertEquals(false, LinuxBoot.kaslrDisabled("console=ttyS0 nokaslrx"));
        assertEquals(false, LinuxBoot.kaslrDisabled("kaslr"));
        assertEquals(false, LinuxBoot.kaslrDisabled(null));
    }
}
