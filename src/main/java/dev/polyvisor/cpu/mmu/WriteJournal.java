package dev.polyvisor.cpu.mmu;

import dev.polyvisor.memory.GuestMemory;

import java.util.Arrays;

/**
 * The RAM writes an {@link Mmu} made while journaling, with the bytes they replaced, so that a run can
 * be undone (the JIT's self-check runs a trace twice from the same state). While a journal is active the
 * MMU installs no TLB write entries, so every store takes the slow path and is recorded here.
 */
public final class WriteJournal {
    private long[] addr = new long[16], old = new long[16], now = new long[16];
    private int[] size = new int[16];
    private int count;

    void record(GuestMemory mem, long pa, int sz) {
        if (count == addr.length) {
            int n = count * 2;
            addr = Arrays.copyOf(addr, n);
            old = Arrays.copyOf(old, n);
            now = Arrays.copyOf(now, n);
            size = Arrays.copyOf(size, n);
        }
        addr[count] = pa;
        size[count] = sz;
        old[count] = mem.readPhys(pa, sz);
        count++;
    }

    public int count() { return count; }

    public long address(int i) { return addr[i]; }

    public int size(int i) { return size[i]; }

    /** The value at write {@code i}'s location after the run (valid after {@link #captureCurrent}). */
    public long current(int i) { return now[i]; }

    /** Reads what the written locations hold now. */
    public void captureCurrent(GuestMemory mem) {
        for (int i = 0; i < count; i++) now[i] = mem.readPhys(addr[i], size[i]);
    }

    /** Puts back the replaced bytes, newest write first. */
    public void undo(GuestMemory mem) {
        for (int i = count - 1; i >= 0; i--) mem.writePhys(addr[i], size[i], old[i]);
    }
}
