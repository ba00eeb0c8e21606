package dev.polyvisor.personality.core;

import dev.polyvisor.cpu.GuestContext;
import dev.polyvisor.memory.GuestMemory;

/**
 * Reads and writes through the calling vCPU's page tables, for ABIs that pass guest-virtual pointers
 * (Xen HVM hypercall arguments, pv-abi.md 6.2). Each byte range is translated page by page; a linear
 * address that does not translate, or translates outside RAM, raises {@link Fault}, which the
 * hypercall dispatcher turns into -EFAULT. Never touches MMIO.
 */
public final class GuestVirtual {
    /** An untranslatable or non-RAM guest pointer. Stackless: it is control flow, not a VMM error. */
    public static final class Fault extends Exception {
        public final long address;

        public Fault(long address) {
            super("guest address 0x" + Long.toHexString(address) + " is not mapped to RAM", null, false, false);
            this.address = address;
        }
    }

    private final GuestContext ctx;
    private final GuestMemory mem;

    public GuestVirtual(GuestContext ctx, GuestMemory mem) {
        this.ctx = ctx;
        this.mem = mem;
    }

    /** Physical address of {@code gva}, checked to be RAM for {@code len} bytes within its page. */
    public long phys(long gva, int len) throws Fault {
        long pa = ctx.translate(gva);
        if (pa < 0 || Long.compareUnsigned(pa + len, mem.ramSize) > 0 || !mem.isRamPage(pa)) throw new Fault(gva);
        return pa;
    }

    public long read(long gva, int size) throws Fault {
        long v = 0;
        for (int i = 0; i < size; ) {
            long a = gva + i;
            int chunk = (int) Math.min(size - i, 4096 - (a & 0xFFF));
            long pa = phys(a, chunk);
            for (int j = 0; j < chunk; j++) v |= (long) mem.ld8(pa + j) << (8 * (i + j));
            i += chunk;
        }
        return v;
    }

    public void write(long gva, int size, long v) throws Fault {
        // Translate the whole range first so that a fault leaves guest memory untouched.
        long[] pas = new long[size];
        for (int i = 0; i < size; i++) pas[i] = ((gva + i) & 0xFFF) == 0 || i == 0 ? phys(gva + i, 1) : pas[i - 1] + 1;
        for (int i = 0; i < size; i++) mem.st8(pas[i], (int) (v >>> (8 * i)));
    }

    public void writeBytes(long gva, byte[] data) throws Fault {
        long[] pas = new long[data.length];
        for (int i = 0; i < data.length; i++) pas[i] = ((gva + i) & 0xFFF) == 0 || i == 0 ? phys(gva + i, 1) : pas[i - 1] + 1;
        for (int i = 0; i < data.length; i++) mem.st8(pas[i], data[i]);
    }
}
