package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.kernel.KernelAddresses;
import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.vmm.boot.LoadException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.random.RandomGenerator;

/**
 * KASLR done by the VMM for a vmlinux it unpacked itself ({@link VmlinuxStream}): the virtual slot the bzImage's
 * decompressor would choose and the relocations it would apply (arch/x86/boot/compressed/kaslr.c,
 * find_random_virt_addr; misc.c, handle_relocations). The physical load address stays the bzImage's preferred one,
 * as when the decompressor finds no other physical slot; only the kernel's virtual base moves.
 *
 * <p>The build appends the relocation table to the vmlinux (arch/x86/tools/relocs, vmlinux.relocs): 32-bit values,
 * read backwards from the end of the decompressed image, each the sign-extended link-time virtual address of a
 * field to adjust: first the 32-bit fields (up to a zero), then the inverse 32-bit fields (up to a zero; they are
 * decreased), then the 64-bit fields (up to a zero).
 */
final class KernelRelocations {
    /** __START_KERNEL_map and KERNEL_IMAGE_SIZE (page_64_types.h): the kernel's virtual slots lie in the map's first GiB. */
    static final long START_KERNEL_MAP = KernelAddresses.START_KERNEL_MAP, KERNEL_IMAGE_SIZE = KernelAddresses.KERNEL_IMAGE_SIZE;

    private KernelRelocations() {}

    /**
     * A virtual offset as find_random_virt_addr picks it: one of {@code 1 + (KERNEL_IMAGE_SIZE - minimum - imageSize)
     * / align} slots, each {@code align} apart from {@code minimum} (the link address, LOAD_PHYSICAL_ADDR); 0 is the
     * link address itself.
     */
    static long randomDelta(RandomGenerator random, long minimum, long imageSize, long align) {
        long room = KERNEL_IMAGE_SIZE - minimum - imageSize;
        if (room < 0 || align <= 0) return 0;
        return random.nextLong(1 + room / align) * align;
    }

    /**
     * Whether {@code tail} ends with a relocation table whose every field lies in [{@code lo}, {@code hi}) of the image
     * loaded at its link address: three lists, each up to its zero terminator. A kernel built without
     * CONFIG_RANDOMIZE_BASE has no table (CONFIG_X86_NEED_RELOCS), and its decompressor does not randomize: such a
     * kernel, or one whose table is damaged, runs at its link address, as with nokaslr.
     */
    static boolean valid(byte[] tail, long lo, long hi) {
        if (tail.length < 12) return false; // not even the three terminators
        try {
            return walk(null, tail, 0, lo, hi) > 0; // three empty lists are three zero words, not a kernel's table
        } catch (LoadException e) {
            return false;
        }
    }

    /**
     * Adds {@code delta} to every field the table names in the image in guest RAM, which was loaded at its link
     * address ({@code virtual - START_KERNEL_MAP} is the field's physical address); a field outside
     * [{@code lo}, {@code hi}) means a corrupt image, as the decompressor's "relocation outside of kernel" error
     * (callers check {@link #valid} first, so nothing is half applied).
     *
     * @param tail the decompressed image's bytes after its last segment, ending with the relocation table
     */
    static void apply(GuestMemory mem, byte[] tail, long delta, long lo, long hi) throws LoadException {
        walk(mem, tail, delta, lo, hi);
    }

    /** The three lists, read backwards from the end; with {@code mem} null only checked. Returns the entries. */
    private static int walk(GuestMemory mem, byte[] tail, long delta, long lo, long hi) throws LoadException {
        ByteBuffer t = ByteBuffer.wrap(tail).order(ByteOrder.LITTLE_ENDIAN);
        Window w = mem == null ? null : new Window(mem);
        int end = tail.length - 4;
        int at = pass(w, t, end, delta, lo, hi, 4, "32-bit");
        at = pass(w, t, at - 4, -delta, lo, hi, 4, "inverse 32-bit");
        at = pass(w, t, at - 4, delta, lo, hi, 8, "64-bit");
        if (w != null) w.flush();
        return (end - at) / 4 - 2;
    }

    /** One list, read backwards from {@code at} up to its zero terminator; returns the terminator's index. */
    private static int pass(Window w, ByteBuffer t, int at, long delta, long lo, long hi, int width, String what)
            throws LoadException {
        for (;; at -= 4) {
            if (at < 0) throw new LoadException("corrupt vmlinux: its " + what + " relocation list has no end");
            long v = t.getInt(at); // sign-extended, as the decompressor's "long extended = *reloc"
            if (v == 0) return at;
            long pa = v - START_KERNEL_MAP;
            if (pa < lo || pa > hi - width)
                throw new LoadException(String.format("corrupt vmlinux: %s relocation at 0x%x is outside the kernel", what, v));
            if (w != null) w.add(pa, width, delta);
        }
    }

    /**
     * The fields are patched in a copy of up to 64 KiB of RAM at a time, moved when a field falls outside it: a
     * Debian kernel has about 100,000 of them, and this runs once per launch, before HotSpot has compiled anything,
     * where each guest-memory access through a VarHandle took 40-45 ms in all (async-profiler); a little-endian view
     * of an array and bulk copies cost a fraction of that. The lists are sorted and read backwards, so the window ends at the
     * page after the field that moves it; any order gives the same result.
     */
    private static final class Window {
        private static final int SIZE = 64 << 10;
        private final GuestMemory mem;
        private final byte[] bytes = new byte[SIZE];
        private final ByteBuffer view = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        private long base;
        private int length;
        private boolean dirty;

        Window(GuestMemory mem) { this.mem = mem; }

        void add(long pa, int width, long delta) {
            if (pa < base || pa + width > base + length) move(pa, width);
            int i = (int) (pa - base);
            if (width == 8) view.putLong(i, view.getLong(i) + delta);
            else view.putInt(i, (int) (view.getInt(i) + delta));
            dirty = true;
        }

        private void move(long pa, int width) {
            flush();
            long end = Math.min(mem.ramSize, (pa + width + 0xFFF) & ~0xFFFL);
            long start = Math.max(0, end - SIZE);
            while (!mem.backed(start, end - start)) start = (start + 0x1000) & ~0xFFFL; // never below the hole's end
            base = start;
            length = (int) (end - start);
            mem.copyOut(base, bytes, 0, length);
        }

        void flush() {
            if (dirty) mem.load(base, bytes, 0, length);
            dirty = false;
        }
    }
}
