package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.vmm.boot.LoadException;
import java.io.ByteArrayOutputStream;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class KernelRelocationsTest {
    private static final long MAP = KernelRelocations.START_KERNEL_MAP;

    /** A tail as the build appends it, written front to back: 0, 64-bit list, 0, inverse 32-bit list, 0, 32-bit list. */
    private static byte[] tail(long[] r64, long[] inv32, long[] r32) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.writeBytes(new byte[] {1, 2, 3}); // section headers or whatever precedes the table
        le32(b, 0);
        for (long v : r64) le32(b, v);
        le32(b, 0);
        for (long v : inv32) le32(b, v);
        le32(b, 0);
        for (long v : r32) le32(b, v);
        return b.toByteArray();
    }

    private static void le32(ByteArrayOutputStream b, long v) {
        for (int i = 0; i < 4; i++) b.write((int) (v >>> 8 * i));
    }

    @Test
    void eachListMovesItsFieldsByTheDelta() throws Exception {
        GuestMemory mem = new GuestMemory(4 << 20);
        long lo = 0x10_0000, hi = 0x30_0000, delta = 15 * 0x20_0000L; // fifteen 2 MiB slots up
        mem.st64(0x10_0008, MAP + 0x10_0000);     // a 64-bit pointer into the image
        mem.st32(0x20_0000, (int) (MAP + 0x12_3456)); // a sign-extended 32-bit absolute address
        mem.st32(0x20_0010, 0x1000);              // a per-CPU style offset the kernel subtracts its base from
        byte[] t = tail(new long[] {MAP + 0x10_0008}, new long[] {MAP + 0x20_0010}, new long[] {MAP + 0x20_0000});
        KernelRelocations.apply(mem, t, delta, lo, hi);
        assertEquals(MAP + 0x10_0000 + delta, mem.ld64(0x10_0008));
        assertEquals((int) (MAP + 0x12_3456 + delta), mem.ld32(0x20_0000));
        assertEquals((int) (0x1000 - delta), mem.ld32(0x20_0010));
    }

    @Test
    void aFieldOutsideTheKernelOrAListWithoutEndIsNoTable() {
        GuestMemory mem = new GuestMemory(4 << 20);
        byte[] outside = tail(new long[0], new long[0], new long[] {MAP + 0x3F_FFFE});
        assertFalse(KernelRelocations.valid(outside, 0x10_0000, 0x30_0000));
        LoadException e = assertThrows(LoadException.class, () -> KernelRelocations.apply(mem, outside, 0x20_0000, 0x10_0000, 0x30_0000));
        assertEquals("corrupt vmlinux: 32-bit relocation at 0xffffffff803ffffe is outside the kernel", e.getMessage());
        assertFalse(KernelRelocations.valid(tail(new long[] {MAP + 0x2F_FFFC}, new long[0], new long[0]), 0x10_0000, 0x30_0000),
                "a 64-bit field reaching past the image");
        byte[] endless = {8, 0, 0x10, (byte) 0x80};
        assertFalse(KernelRelocations.valid(endless, 0x10_0000, 0x30_0000));
        assertFalse(KernelRelocations.valid(new byte[0], 0x10_0000, 0x30_0000), "no table at all");
        assertFalse(KernelRelocations.valid(tail(new long[0], new long[0], new long[0]), 0x10_0000, 0x30_0000), "three zero words");
        assertTrue(KernelRelocations.valid(tail(new long[] {MAP + 0x10_0000}, new long[0], new long[0]), 0x10_0000, 0x30_0000));
    }

    @Test
    void theVirtualSlotIsAWholeAlignmentInsideTheKernelsGibibyte() {
        SplittableRandom r = new SplittableRandom(1);
        long min = 0x100_0000, size = 0x400_0000, align = 0x20_0000, slots = 1 + (KernelRelocations.KERNEL_IMAGE_SIZE - min - size) / align;
        java.util.Set<Long> seen = new java.util.HashSet<>();
        for (int i = 0; i < 2000; i++) {
            long d = KernelRelocations.randomDelta(r, min, size, align);
            assertEquals(0, d % align);
            assertTrue(d >= 0 && min + d + size <= KernelRelocations.KERNEL_IMAGE_SIZE, Long.toHexString(d));
            seen.add(d);
        }
        assertTrue(seen.size() > slots / 2, seen.size() + " of " + slots + " slots drawn");
        assertEquals(0, KernelRelocations.randomDelta(r, min, KernelRelocations.KERNEL_IMAGE_SIZE, align), "no room: the link address");
    }
}
