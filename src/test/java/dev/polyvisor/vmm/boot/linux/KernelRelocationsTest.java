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

    /**
     * Thousands of fields over 2 MiB, in sorted order as the build writes them and shuffled, fields across page
     * boundaries among them: every field moves by exactly the delta, and no other byte changes (KernelRelocations
     * patches a copy of RAM window by window).
     */
    @Test
    void manyFieldsAcrossWindowsAndPagesMoveExactlyAsOneByOne() throws Exception {
        for (boolean sorted : new boolean[] {true, false}) {
            SplittableRandom r = new SplittableRandom(sorted ? 7 : 8);
            long lo = 0x10_0000, hi = 0x30_0000, delta = 7 * 0x20_0000L;
            java.util.List<Long> at64 = new java.util.ArrayList<>(), at32 = new java.util.ArrayList<>(), inv = new java.util.ArrayList<>();
            for (long pa = lo; pa + 8 <= hi; pa += 8 + r.nextInt(3) * 4) { // 4-byte steps: fields cross pages
                switch (r.nextInt(3)) {
                    case 0 -> at64.add(pa);
                    case 1 -> at32.add(pa);
                    default -> inv.add(pa);
                }
            }
            if (!sorted) for (var l : java.util.List.of(at64, at32, inv)) java.util.Collections.shuffle(l, new java.util.Random(9));
            try (GuestMemory mem = new GuestMemory(4 << 20); GuestMemory ref = new GuestMemory(4 << 20)) {
                byte[] image = new byte[(int) (hi - lo) + 0x1000];
                new java.util.Random(10).nextBytes(image);
                mem.load(lo - 0x800, image);
                ref.load(lo - 0x800, image);
                for (long pa : at64) ref.st64(pa, ref.ld64(pa) + delta);
                for (long pa : at32) ref.st32(pa, (int) (ref.ld32(pa) + delta));
                for (long pa : inv) ref.st32(pa, (int) (ref.ld32(pa) - delta));
                byte[] t = tail(virt(at64), virt(inv), virt(at32));
                assertTrue(KernelRelocations.valid(t, lo, hi));
                KernelRelocations.apply(mem, t, delta, lo, hi);
                assertEquals(-1, ref.ram.mismatch(mem.ram), (sorted ? "sorted" : "shuffled") + " lists: RAM differs");
                assertTrue(at64.size() + at32.size() + inv.size() > 100_000, "enough fields to cross many windows");
            }
        }
    }

    private static long[] virt(java.util.List<Long> pas) { return pas.stream().mapToLong(pa -> MAP + pa).toArray(); }

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
