package dev.polyvisor.cpu.mmu;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.Flags;
import dev.polyvisor.cpu.Platform;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.memory.MmioRegion;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

import static dev.polyvisor.memory.GuestMemory.U16;
import static dev.polyvisor.memory.GuestMemory.U32;
import static dev.polyvisor.memory.GuestMemory.U64;
import static dev.polyvisor.memory.GuestMemory.U8;

/**
 * Linear-address access for one vCPU (reference/cpu-design.md 1.6).
 *
 * <p>The TLB is direct-mapped, one set for supervisor and one for user accesses, each with read,
 * write and fetch tags and a common addend (RAM offset minus linear page). A tag holds the page's
 * linear address; an invalid tag has bit 0 set so it never equals a page address, and non-canonical
 * addresses are never entered, so the fast path is one compare and one load. A write tag is entered
 * only when the PTE's dirty bit is already set and the page holds no decoded code, so the first
 * write to a clean or code page takes the slow path (QEMU's TLB_NOTDIRTY).
 */
public final class Mmu {
    public static final int READ = 0, WRITE = 1, FETCH = 2;
    private static final int BITS = 10, SIZE = 1 << BITS, MASK = SIZE - 1;
    private static final long INVALID = 1;
    private static final long PG_P = 1, PG_RW = 2, PG_US = 4, PG_A = 0x20, PG_D = 0x40, PG_PS = 0x80, PG_G = 0x100;
    private static final long PG_NX = 1L << 63;
    /** Protection-key rights bits (SDM Vol. 3A 4.6.2) and the #PF error code's PK flag (bit 5, SDM 4.7). */
    private static final int KEY_AD = 1, KEY_WD = 2, PFEC_PK = 0x20;
    /** MAXPHYADDR is 40 (CPUID 0x80000008); bits 51:40 of a paging entry are reserved. */
    private static final long ADDR_MASK = 0x000F_FFFF_FFFF_F000L & ((1L << 40) - 1);
    private static final long RSVD_HIGH = 0x000F_FF00_0000_0000L;

    private final Cpu cpu;
    private final GuestMemory mem;
    private final MemorySegment ram;
    private CodePages codePages;

    private final long[] sRd = new long[SIZE], sWr = new long[SIZE], sEx = new long[SIZE], sAdd = new long[SIZE];
    private final long[] uRd = new long[SIZE], uWr = new long[SIZE], uEx = new long[SIZE], uAdd = new long[SIZE];
    private long[] rd = sRd, wr = sWr, ex = sEx, add = sAdd;
    /**
     * Per index: every valid entry there maps a global page (CR4.PGE and the leaf's G bit), so a CR3 load
     * keeps it (SDM Vol. 3A 4.10.4.1: MOV to CR3 invalidates the non-global translations only). Linux's
     * kernel mappings are global, and a boot loads CR3 about 18,000 times (text_poke's temporary mm at every
     * jump-label patch, then the first processes): flushing everything made about one page walk per 67
     * instructions.
     */
    private final boolean[] sGlobal = new boolean[SIZE], uGlobal = new boolean[SIZE];
    /** Per index: some entry there came from a 2 MiB / 4 MiB / 1 GiB page, which INVLPG of any of its addresses drops. */
    private final boolean[] sLarge = new boolean[SIZE], uLarge = new boolean[SIZE];
    private boolean[] global = sGlobal, fromLarge = sLarge;
    private boolean user;
    /** A large page was entered as 4 KiB entries: INVLPG must then drop every entry tagged {@link #fromLarge}. */
    private boolean largePagesCached;
    /**
     * Fetch epochs carry their vCPU in the low {@link #EPOCH_OWNER_BITS} bits above a per-vCPU sequence, so
     * the epochs of a VM's vCPUs never coincide (a trace chained by one never matches another) without a
     * counter shared by the vCPU threads, and {@link #epochOwner} tells whose a chain slot is.
     */
    public static final int EPOCH_OWNER_BITS = 8;
    private long epochSequence;
    private long nextEpoch() { return (++epochSequence << EPOCH_OWNER_BITS) | (cpu.id & ((1 << EPOCH_OWNER_BITS) - 1)); }

    /** The vCPU (its id modulo 256; a VM has at most 64) whose fetch epoch {@code epoch} is; epoch 0 is nobody's. */
    public static int epochOwner(long epoch) { return (int) (epoch & ((1 << EPOCH_OWNER_BITS) - 1)); }
    /**
     * The epoch of the TLB set in use: changes whenever a linear-to-physical fetch mapping or fetch permission
     * this vCPU cached in that set may have changed (TLB flush, INVLPG), when the decode mode changed
     * (Cpu.updateMode), and with the set on a privilege switch. The run loop chains traces by linear address and
     * trusts a chain only within one epoch (QEMU's tb_jmp_cache is flushed at the same events).
     */
    public long fetchEpoch;
    /**
     * Each TLB set's own epoch. A privilege switch selects the other set's epoch instead of starting a new one,
     * so a process's chains and jump-cache entries survive its system calls and interrupts (QEMU keys its jump
     * cache by privilege instead of flushing it); every invalidation above starts new epochs for both sets.
     */
    private long userEpoch, supervisorEpoch;
    /**
     * The epoch of the supervisor set's global fetch translations: as {@link #fetchEpoch}, but a CR3 load, which keeps
     * global translations (SDM Vol. 3A 4.10.4.1), does not change it. The run loop may key a jump-cache entry or a
     * chain with it when the trace lies in one global page ({@link #fetchesGlobal}), so that the kernel's chains
     * survive the context switches of a multi-process guest: a Debian rootfs boot to login loaded CR3 34,000 times.
     */
    private long supervisorGlobalEpoch;
    /** {@link #supervisorGlobalEpoch} in supervisor mode; {@link #NO_EPOCH}, which nothing is keyed with, in user mode. */
    public long globalFetchEpoch;
    public static final long NO_EPOCH = -1L;

    // Result of the last translation (slow path).
    private long walkFlags;
    private boolean walkLarge;
    /** The last walk's page size, when {@link #walkLarge}. */
    private long walkSize;
    /** The last walk's leaf was global: its G bit set with CR4.PGE. */
    private boolean walkGlobal;
    /** The leaf's protection-key rights (AD in bit 0, WD in bit 1) that applied to the last walk; 0 without keys. */
    private int walkKeyRights;
    /**
     * Set while the CPU makes an implicit supervisor-mode access (descriptor tables, IDT, TSS): SMAP denies
     * those to user-mode pages whatever EFLAGS.AC says (SDM Vol. 3A 4.6.1).
     */
    public boolean implicitSupervisor;

    public Mmu(Cpu cpu, GuestMemory mem) {
        this.cpu = cpu;
        this.mem = mem;
        this.ram = mem.ram;
        newFetchEpoch();
        this.codePages = new CodePages(mem.ramSize);
        codePages.attach(this);
        flushAll();
    }

    /** Shares one code-page tracker between all vCPUs of a VM. */
    public void setCodePages(CodePages cp) { this.codePages = cp; cp.attach(this); flushAll(); }

    /** Drops every write entry (both privilege sets) that maps physical page {@code ppage}. */
    void dropWriteEntries(long ppage) {
        for (int i = 0; i < SIZE; i++) {
            if (sWr[i] != INVALID && sWr[i] + sAdd[i] == ppage) sWr[i] = INVALID;
            if (uWr[i] != INVALID && uWr[i] + uAdd[i] == ppage) uWr[i] = INVALID;
        }
    }

    public CodePages codePages() { return codePages; }

    /** Starts a new fetch epoch: traces chained so far are not trusted any more (see {@link #fetchEpoch}). */
    public void newFetchEpoch() {
        supervisorGlobalEpoch = nextEpoch();
        newNonGlobalFetchEpoch();
    }

    /** A CR3 load: new epochs for both sets, the global translations' epoch kept. */
    private void newNonGlobalFetchEpoch() {
        userEpoch = nextEpoch();
        supervisorEpoch = nextEpoch();
        fetchEpoch = user ? userEpoch : supervisorEpoch;
        globalFetchEpoch = user ? NO_EPOCH : supervisorGlobalEpoch;
    }

    /**
     * Whether the fetch translation of {@code la}'s page is cached as global in the supervisor set now (after a
     * {@link #fetchPhys} of it): a trace within that page may be keyed with {@link #globalFetchEpoch}.
     */
    public boolean fetchesGlobal(long la) {
        int i = (int) (la >>> 12) & MASK;
        return !user && global[i] && ex[i] == (la & ~0xFFFL);
    }

    /** Selects the user (CPL 3) or supervisor TLB set. */
    public void setPrivilege(boolean userMode) {
        user = userMode;
        fetchEpoch = userMode ? userEpoch : supervisorEpoch;
        globalFetchEpoch = userMode ? NO_EPOCH : supervisorGlobalEpoch;
        if (userMode) { rd = uRd; wr = uWr; ex = uEx; add = uAdd; global = uGlobal; fromLarge = uLarge; }
        else { rd = sRd; wr = sWr; ex = sEx; add = sAdd; global = sGlobal; fromLarge = sLarge; }
    }

    public void flushAll() {
        for (long[] t : new long[][] {sRd, sWr, sEx, uRd, uWr, uEx}) Arrays.fill(t, INVALID);
        largePagesCached = false;
        clearFetched();
        fetchedHuge = false;
        newFetchEpoch();
    }

    /**
     * The linear pages (hashed, {@link #FETCHED_BITS} bits) whose fetch translation was walked since the last flush,
     * plus the global ones a CR3 write kept: a superset of the pages that the jump cache and chain slots of the
     * current fetch epoch may name. INVLPG of a page outside it changes no fetch mapping the run loop relies on, so
     * it keeps the epoch (QEMU's tlb_flush_page likewise clears only that page's jump-cache entries). In a Debian
     * rootfs boot to login, 11,900 INVLPGs started a new epoch each, only 17 of them for a page code had been
     * fetched from: every one emptied the vCPU's jump cache and chains.
     */
    private final long[] fetchedPages = new long[FETCHED_BITS / 64];
    static final int FETCHED_BITS = 4096;

    private static int fetchedBit(long la) { return (int) ((la >>> 12) ^ (la >>> 24)) & (FETCHED_BITS - 1); }

    private void markFetched(long la) {
        int b = fetchedBit(la);
        fetchedPages[b >>> 6] |= 1L << b;
    }

    /**
     * The 2 MiB regions (hashed) that a large page code was fetched from covers, every one of them: INVLPG of any
     * address in a large page changes the whole page's mapping. Linux maps its text with 2 MiB pages, so without
     * these every INVLPG of a Debian rootfs boot counted (7,792 of 7,792, against 418 for its 4 KiB page alone).
     * A fetch from a larger page (1 GiB) is only remembered as such ({@link #fetchedHuge}): every INVLPG counts then.
     */
    private final long[] fetchedRegions = new long[FETCHED_BITS / 64];
    private boolean fetchedHuge;

    private static int regionBit(long la) { return (int) ((la >>> 21) ^ (la >>> 33)) & (FETCHED_BITS - 1); }

    private void markFetchedLarge(long la, long size) {
        if (size > 4L << 20) { fetchedHuge = true; return; }
        for (long r = la & -size, end = r + size; r < end; r += 2L << 20) {
            int b = regionBit(r);
            fetchedRegions[b >>> 6] |= 1L << b;
        }
    }

    /** Whether a fetch translation of the page of {@code la}, or of a large page around it, may be relied on now. */
    boolean mayHaveFetched(long la) {
        int b = fetchedBit(la), r = regionBit(la);
        return fetchedHuge || (fetchedPages[b >>> 6] & 1L << b) != 0 || (fetchedRegions[r >>> 6] & 1L << r) != 0;
    }

    private void clearFetched() {
        Arrays.fill(fetchedPages, 0);
        Arrays.fill(fetchedRegions, 0);
    }

    /**
     * Drops every read and write entry, keeping the fetch entries: the data permissions changed without a
     * paging-structure change (WRPKRU, WRMSR IA32_PKRS), which affects no instruction fetch (protection keys
     * govern data accesses only, SDM Vol. 3A 4.6.2).
     */
    public void flushData() {
        for (long[] t : new long[][] {sRd, sWr, uRd, uWr}) Arrays.fill(t, INVALID);
    }

    /**
     * MOV to CR3 (and INVPCID types 1 and 3): drops every translation but those of global pages (SDM Vol. 3A
     * 4.10.4.1). The fetch epoch changes: user code at the same linear address may now be other code.
     */
    public void flushNonGlobal() {
        // The new epoch relies on the fetch entries kept below, and on later walks. A kept piece of a large page is
        // marked for a 4 MiB page around it, the largest but 1 GiB (fetchedHuge stays as it is).
        clearFetched();
        for (int i = 0; i < SIZE; i++) {
            if (!sGlobal[i]) { sRd[i] = INVALID; sWr[i] = INVALID; sEx[i] = INVALID; }
            else if (sEx[i] != INVALID) { markFetched(sEx[i]); if (sLarge[i]) markFetchedLarge(sEx[i], 4L << 20); }
            if (!uGlobal[i]) { uRd[i] = INVALID; uWr[i] = INVALID; uEx[i] = INVALID; }
            else if (uEx[i] != INVALID) { markFetched(uEx[i]); if (uLarge[i]) markFetchedLarge(uEx[i], 4L << 20); }
        }
        newNonGlobalFetchEpoch();
    }

    /**
     * INVLPG: drops the page in every set, global or not (SDM Vol. 3A, 4.10.4.1). Entries are 4 KiB pieces, so
     * when pieces of large pages are cached, every one of them goes too (the large page containing
     * {@code lin} may have left pieces at any index); pieces of 4 KiB pages elsewhere stay.
     */
    public void invalidatePage(long lin) {
        if (mayHaveFetched(lin)) newFetchEpoch();
        int i = (int) (lin >>> 12) & MASK;
        long page = lin & ~0xFFFL;
        for (long[] t : new long[][] {sRd, sWr, sEx, uRd, uWr, uEx}) if (t[i] == page) t[i] = INVALID;
        if (!largePagesCached) return;
        for (int j = 0; j < SIZE; j++) {
            if (sLarge[j]) { sRd[j] = INVALID; sWr[j] = INVALID; sEx[j] = INVALID; sLarge[j] = false; }
            if (uLarge[j]) { uRd[j] = INVALID; uWr[j] = INVALID; uEx[j] = INVALID; uLarge[j] = false; }
        }
        largePagesCached = false;
    }

    // ------------------------------------------------------------------ fast paths
    // A multi-byte access compares the tag with the page of its LAST byte: that equals the entry's page
    // (the page of the first byte, which selected the entry) only when the access does not cross a page,
    // so one compare covers both the hit and the page-crossing test.

    public int read8(long la) { return read8(ram, la); }
    public int read16(long la) { return read16(ram, la); }
    public int read32(long la) { return read32(ram, la); }
    public long read64(long la) { return read64(ram, la); }
    public void write8(long la, int v) { write8(ram, la, v); }
    public void write16(long la, int v) { write16(ram, la, v); }
    public void write32(long la, int v) { write32(ram, la, v); }
    public void write64(long la, long v) { write64(ram, la, v); }

    // The same accesses with the RAM segment given: {@link #compiledRam()} by compiled code, which holds it as a
    // constant, so that C2 folds the segment's checks (see GuestMemory#ramForCompiledCode); the RAM otherwise.

    public int read8(MemorySegment ram, long la) {
        int i = (int) (la >>> 12) & MASK;
        if (rd[i] == (la & ~0xFFFL)) return ram.get(U8, add[i] + la) & 0xFF;
        return (int) readSlow(la, 1);
    }

    public int read16(MemorySegment ram, long la) {
        int i = (int) (la >>> 12) & MASK;
        if (rd[i] == ((la + 1) & ~0xFFFL)) return ram.get(U16, add[i] + la) & 0xFFFF;
        return (int) readSlow(la, 2);
    }

    public int read32(MemorySegment ram, long la) {
        int i = (int) (la >>> 12) & MASK;
        if (rd[i] == ((la + 3) & ~0xFFFL)) return ram.get(U32, add[i] + la);
        return (int) readSlow(la, 4);
    }

    public long read64(MemorySegment ram, long la) {
        int i = (int) (la >>> 12) & MASK;
        if (rd[i] == ((la + 7) & ~0xFFFL)) return ram.get(U64, add[i] + la);
        return readSlow(la, 8);
    }

    public void write8(MemorySegment ram, long la, int v) {
        int i = (int) (la >>> 12) & MASK;
        if (wr[i] == (la & ~0xFFFL)) { ram.set(U8, add[i] + la, (byte) v); return; }
        writeSlow(la, 1, v);
    }

    public void write16(MemorySegment ram, long la, int v) {
        int i = (int) (la >>> 12) & MASK;
        if (wr[i] == ((la + 1) & ~0xFFFL)) { ram.set(U16, add[i] + la, (short) v); return; }
        writeSlow(la, 2, v);
    }

    public void write32(MemorySegment ram, long la, int v) {
        int i = (int) (la >>> 12) & MASK;
        if (wr[i] == ((la + 3) & ~0xFFFL)) { ram.set(U32, add[i] + la, v); return; }
        writeSlow(la, 4, v);
    }

    public void write64(MemorySegment ram, long la, long v) {
        int i = (int) (la >>> 12) & MASK;
        if (wr[i] == ((la + 7) & ~0xFFFL)) { ram.set(U64, add[i] + la, v); return; }
        writeSlow(la, 8, v);
    }

    /** Guest RAM for compiled code ({@link GuestMemory#ramForCompiledCode}): the memory the TLB's entries point into. */
    public MemorySegment compiledRam() { return mem.ramForCompiledCode; }

    /** Reads {@code size} (1, 2, 4, 8) bytes, zero-extended. */
    public long read(long la, int size) {
        return switch (size) {
            case 1 -> read8(la);
            case 2 -> read16(la);
            case 4 -> read32(la) & 0xFFFF_FFFFL;
            default -> read64(la);
        };
    }

    public void write(long la, int size, long v) {
        switch (size) {
            case 1 -> write8(la, (int) v);
            case 2 -> write16(la, (int) v);
            case 4 -> write32(la, (int) v);
            default -> write64(la, v);
        }
    }

    /** Physical address of an instruction byte, for the trace cache; raises #PF/#GP like a fetch. */
    public long fetchPhys(long la) {
        int i = (int) (la >>> 12) & MASK;
        if (ex[i] == (la & ~0xFFFL)) return add[i] + la;
        return translateFill(la, FETCH);
    }

    public int fetch8(long la) {
        long pa = fetchPhys(la);
        return (int) mem.readPhys(pa, 1);
    }

    /**
     * Translates for an access of kind {@code acc} by the current privilege, raising #PF on failure.
     * Used by instructions that must check a whole destination before writing any of it.
     */
    public long translate(long la, int acc) {
        // The TLB first, as an access would: an entry exists only where that access kind was checked (and A/D
        // set) by an earlier walk. Walking every time made each 64-bit indirect CALL (its push is probed before
        // the branch) a page walk: a third of the boot's ten million walks.
        int i = (int) (la >>> 12) & MASK;
        long[] t = switch (acc) { case READ -> rd; case WRITE -> wr; default -> ex; };
        if (t[i] == (la & ~0xFFFL)) return add[i] + la;
        return translateFill(la, acc);
    }

    /**
     * Supervisor read translation without side effects or faults; -1 when not mapped. The VMM reading guest
     * memory is no guest access: SMAP and protection keys do not apply.
     */
    public long probe(long la) {
        if ((cpu.efer & Cpu.EFER_LMA) != 0 && ((la << 16) >> 16) != la) return -1;
        probing = true;
        try {
            return walk(la, READ, false, false);
        } catch (PageFault pf) {
            return -1;
        } finally {
            probing = false;
        }
    }

    // Data breakpoints (see dev.polyvisor.cpu.Breakpoints): DRn enabled for data (bit n), write-only ones,
    // and each one's first and last linear byte. Pages holding one are never entered in the TLB.
    private int dataBreakpoints, writeOnlyBreakpoints;
    private final long[] bpStart = new long[4], bpEnd = new long[4];
    /** The data breakpoints (bit n = DRn) that accesses hit since the run loop last cleared this. */
    public int dataBreakpointHits;

    /** Installs the enabled data breakpoints; drops the TLB so that their pages are no longer cached. */
    public void setDataBreakpoints(int enabled, int writeOnly, long[] start, long[] end) {
        if (enabled == 0 && dataBreakpoints == 0) return;
        dataBreakpoints = enabled;
        writeOnlyBreakpoints = writeOnly;
        System.arraycopy(start, 0, bpStart, 0, 4);
        System.arraycopy(end, 0, bpEnd, 0, 4);
        flushAll();
    }

    /** Whether a data breakpoint lies on the 4 KiB linear page {@code page}. */
    private boolean breakpointOnPage(long page) {
        for (int n = 0; n < 4; n++)
            if ((dataBreakpoints & (1 << n)) != 0 && bpStart[n] <= page + 0xFFF && bpEnd[n] >= page) return true;
        return false;
    }

    /** Records the data breakpoints an access of {@code size} bytes at {@code la} matches (SDM 18.3.1.2). */
    private void checkDataBreakpoints(long la, int size, boolean write) {
        long last = la + size - 1;
        for (int n = 0; n < 4; n++) {
            int bit = 1 << n;
            if ((dataBreakpoints & bit) == 0 || (!write && (writeOnlyBreakpoints & bit) != 0)) continue;
            if (la <= bpEnd[n] && last >= bpStart[n]) dataBreakpointHits |= bit;
        }
    }

    /** Set during {@link #probe}: only the paging-structure rights apply. */
    private boolean probing;

    // ------------------------------------------------------------------ slow paths

    /**
     * An access that crosses into the non-canonical half is #GP(0) before any page is walked: the host
     * faults it even when the first page is not present (canonical checks precede paging, SDM Vol. 3A 4.1.4).
     */
    private void canonicalEnd(long last) {
        if ((cpu.efer & Cpu.EFER_LMA) != 0 && ((last << 16) >> 16) != last) throw cpu.gp0();
    }

    private long readSlow(long la, int size) {
        if (dataBreakpoints != 0) checkDataBreakpoints(la, size, false);
        if (((la & 0xFFF) + size) > 0x1000) {
            canonicalEnd(la + size - 1);
            long pa1 = translateFill(la, READ);
            long pa2 = translateFill((la + size - 1) & ~0xFFFL, READ);
            long v = 0;
            int first = (int) (0x1000 - (la & 0xFFF));
            for (int b = 0; b < size; b++) {
                long pa = b < first ? pa1 + b : pa2 + (b - first);
                v |= physRead(pa, 1) << (8 * b);
            }
            return v;
        }
        return physRead(translateFill(la, READ), size);
    }

    private void writeSlow(long la, int size, long v) {
        if (dataBreakpoints != 0) checkDataBreakpoints(la, size, true);
        if (((la & 0xFFF) + size) > 0x1000) {
            // Translate both pages before writing a byte, so a #PF on the second leaves memory unchanged.
            canonicalEnd(la + size - 1);
            long pa1 = translateFill(la, WRITE);
            long pa2 = translateFill((la + size - 1) & ~0xFFFL, WRITE);
            int first = (int) (0x1000 - (la & 0xFFF));
            for (int b = 0; b < size; b++) physWrite(b < first ? pa1 + b : pa2 + (b - first), 1, v >>> (8 * b));
            return;
        }
        physWrite(translateFill(la, WRITE), size, v);
    }

    /** Records RAM writes while set ({@link #startJournal}); null normally. */
    private WriteJournal journal;

    /**
     * Starts recording every RAM write this MMU makes (the JIT's self-check): drops the TLB write entries
     * so that stores take the slow path, where {@link #physWrite} records them.
     */
    public WriteJournal startJournal() {
        journal = new WriteJournal();
        Arrays.fill(sWr, INVALID);
        Arrays.fill(uWr, INVALID);
        return journal;
    }

    public void stopJournal() { journal = null; }

    /** Device MMIO accesses this vCPU made (each would be a VM exit on hardware virtualization). */
    public long mmioAccesses;

    private long physRead(long pa, int size) {
        MmioRegion r = mem.mmioAt(pa);
        Platform p = cpu.platform;
        if (r != null) {
            mmioAccesses++;
            return (p == null ? r.handler().read(pa - r.base(), size) : p.mmioRead(r, pa - r.base(), size)) & GuestMemory.mask(size);
        }
        if (mem.backed(pa, size)) return mem.readPhys(pa, size);
        long v = p == null ? -1L : p.unassignedMmio(new VcpuExit.Mmio(pa, size, false, 0));
        return v & GuestMemory.mask(size);
    }

    /**
     * A write of {@code size} bytes at {@code pa} is about to land: the code pages it touches lose their traces,
     * and the vCPU's current trace ends after this instruction (the run loops test traceExit alone, not their
     * trace's validity, which is a volatile read per instruction). Another vCPU's write does not stop this one
     * mid-trace: cross-modifying code needs the executing processor to serialize first (SDM Vol. 3A 8.1.3).
     */
    private void codeWritten(long pa, int size) {
        boolean code = codePages.written(pa);
        if (size > 1) code |= codePages.written(pa + size - 1);
        if (code) cpu.traceExit = true;
    }

    private void physWrite(long pa, int size, long v) {
        codeWritten(pa, size);
        MmioRegion r = mem.mmioAt(pa);
        Platform p = cpu.platform;
        if (r != null) {
            mmioAccesses++;
            if (p == null) r.handler().write(pa - r.base(), size, v & GuestMemory.mask(size));
            else p.mmioWrite(r, pa - r.base(), size, v & GuestMemory.mask(size));
            return;
        }
        if (mem.backed(pa, size)) {
            if (journal != null) journal.record(mem, pa, size);
            mem.writePhys(pa, size, v);
            return;
        }
        if (p != null) p.unassignedMmio(new VcpuExit.Mmio(pa, size, true, v));
    }

    /** Walks, checks, fills the TLB when the page is RAM; returns the physical address of {@code la}. */
    private long translateFill(long la, int acc) {
        // No flush when the code-page generation moved: CodePages.mark drops the write entries of a page
        // that becomes code from every TLB itself, and the fence below covers a fill racing it. (A full flush
        // here cost 3,300 TLB refills per boot.)
        long pa;
        boolean wp, large;
        try {
            pa = walk(la, acc, user, true);
        } catch (PageFault pf) {
            cpu.cr2 = la;
            throw cpu.fault(Exceptions.PF, pf.errorCode);
        }
        if (acc == FETCH) { // cached or not (a page outside RAM is walked at every fetch)
            markFetched(la);
            if (walkLarge) markFetchedLarge(la, walkSize);
        }
        large = walkLarge;
        long flags = walkFlags;
        long page = la & ~0xFFFL, ppage = pa & ~0xFFFL;
        if (mem.isRamPage(ppage)) {
            int i = (int) (la >>> 12) & MASK;
            // A single entry caches one access kind's permission; keep the others if they map the same frame.
            boolean fresh = add[i] != ppage - page || (rd[i] == INVALID && wr[i] == INVALID && ex[i] == INVALID);
            if (add[i] != ppage - page) { rd[i] = INVALID; wr[i] = INVALID; ex[i] = INVALID; }
            add[i] = ppage - page;
            // The index's tags cover every entry at it: the others kept here may map another linear page.
            global[i] = walkGlobal && (fresh || global[i]);
            fromLarge[i] = large || (!fresh && fromLarge[i]);
            int generation = codePages.generation(); // read before isCode: see the fence below
            boolean canWrite = (flags & PG_RW) != 0 && (flags & PG_D) != 0 && !codePages.isCode(ppage) && journal == null
                    && (walkKeyRights & KEY_WD) == 0;
            // Under SMAP a supervisor data access to a user page depends on EFLAGS.AC and on whether the access
            // is implicit, neither of which flushes the TLB: such entries are not cached, each access is checked.
            boolean dataCached = (user || (flags & PG_US) == 0 || (cpu.cr4 & Cpu.CR4_SMAP) == 0)
                    && (dataBreakpoints == 0 || !breakpointOnPage(page));
            switch (acc) {
                case READ, WRITE -> { if (dataCached) { rd[i] = page; if (canWrite) wr[i] = page; } }
                default -> ex[i] = page;
            }
            if (large) largePagesCached = true;
            if (canWrite && acc != FETCH && wr[i] == page) {
                // With one host thread per vCPU another vCPU may have made the page a code page between the
                // isCode test and the store of the entry, its dropWriteEntries missing it. A Dekker pair
                // with CodePages.mark (mark: set, bump generation, drop entries; here: store entry, fence,
                // read generation) ensures one side sees the other; a mark seen here is re-checked for this
                // page alone (marks of other pages since the walk began concern other entries).
                java.lang.invoke.VarHandle.fullFence();
                if (generation != codePages.generation() && codePages.isCode(ppage)) wr[i] = INVALID;
            }
        }
        return pa;
    }

    /**
     * A LOCK'd read-modify-write (and XCHG with memory, which is always locked): translated and checked as a
     * write (a #PF has the W bit, as on hardware: SDM Vol. 3A 4.7, a locked operation is a write access),
     * then done on RAM as one atomic update ({@link GuestMemory#atomicUpdate}), so vCPUs on other host
     * threads see either none or all of it. A page-crossing operand, MMIO, or armed data breakpoints take
     * the plain read-then-write under the memory's split lock. Returns the old value.
     */
    public long atomicRmw(long la, int size, GuestMemory.Update op, long x, long y) {
        if (dataBreakpoints == 0 && journal == null && ((la & 0xFFF) + size) <= 0x1000) {
            int i = (int) (la >>> 12) & MASK;
            long pa;
            if (wr[i] == (la & ~0xFFFL)) pa = add[i] + la;
            else {
                pa = translateFill(la, WRITE);
                if (mem.mmioAt(pa) != null || !mem.backed(pa, size)) pa = -1;
                else codeWritten(pa, size);
            }
            if (pa >= 0) return mem.atomicUpdate(pa, size, op, x, y);
        }
        synchronized (mem.splitLock()) {
            long old = read(la, size);
            write(la, size, op.apply(old, x, y));
            return old;
        }
    }

    /** Thrown inside the walker; converted to #PF by the caller. Stackless. */
    private static final class PageFault extends RuntimeException {
        final int errorCode;
        PageFault(int ec) { super(null, null, false, false); errorCode = ec; }
    }

    /**
     * The page walk (SDM Vol. 3A 4.3, 4.4, 4.5). Returns the physical address and leaves the combined
     * permissions in {@link #walkFlags} (RW, US, D as effective for the final page; NX in bit 63).
     * With {@code setAD}, sets accessed bits along the way and the dirty bit for writes, atomically.
     */
    private long walk(long la, int acc, boolean usr, boolean setAD) {
        long cr0 = cpu.cr0;
        if ((cr0 & Cpu.CR0_PG) == 0) {
            walkFlags = PG_RW | PG_US | PG_D;
            walkLarge = false;
            walkGlobal = false;
            walkKeyRights = 0;
            return cpu.long64 ? la : la & 0xFFFF_FFFFL;
        }
        long cr4 = cpu.cr4;
        boolean nxe = (cpu.efer & Cpu.EFER_NXE) != 0;
        // I/D (bit 4) for a fetch with NXE under PAE/4-level paging, or with SMEP in any paging mode (SDM Vol. 3A 4.7).
        boolean idFlag = ((cr4 & Cpu.CR4_PAE) != 0 && nxe) || (cr4 & Cpu.CR4_SMEP) != 0;
        int ecBase = (acc == WRITE ? 2 : 0) | (usr ? 4 : 0) | (acc == FETCH && idFlag ? 0x10 : 0);
        long rw = PG_RW, us = PG_US, nx = 0;
        long pa, entry, entryAddr;
        long size;
        if ((cr4 & Cpu.CR4_PAE) == 0) {
            // 32-bit paging: 4 KiB pages, or 4 MiB with CR4.PSE.
            long pdeAddr = (cpu.cr3 & 0xFFFFF000L) | ((la >>> 20) & 0xFFC);
            long pde = mem.readPhys(pdeAddr, 4);
            if ((pde & PG_P) == 0) throw new PageFault(ecBase);
            rw &= pde; us &= pde;
            if ((pde & PG_PS) != 0 && (cr4 & Cpu.CR4_PSE) != 0) {
                long base = (pde & 0xFFC00000L) | ((pde & 0x1FE000L) << 19);
                if ((pde & 0x200000L) != 0) throw new PageFault(ecBase | 9);
                checkAccess(acc, usr, rw, us, 0, ecBase, -1);
                setAccessed(pdeAddr, pde, acc == WRITE, setAD, 4);
                walkFlags = rw | us | (acc == WRITE || (pde & PG_D) != 0 ? PG_D : 0);
                walkLarge = true;
                walkSize = 4L << 20;
                walkGlobal = (pde & PG_G) != 0 && (cr4 & Cpu.CR4_PGE) != 0;
                return base | (la & 0x3FFFFF);
            }
            if (setAD && (pde & PG_A) == 0) mem.cmpxchg(pdeAddr, 4, pde, pde | PG_A);
            entryAddr = (pde & 0xFFFFF000L) | ((la >>> 10) & 0xFFC);
            entry = mem.readPhys(entryAddr, 4);
            if ((entry & PG_P) == 0) throw new PageFault(ecBase);
            rw &= entry; us &= entry;
            checkAccess(acc, usr, rw, us, 0, ecBase, -1);
            setAccessed(entryAddr, entry, acc == WRITE, setAD, 4);
            walkFlags = rw | us | (acc == WRITE || (entry & PG_D) != 0 ? PG_D : 0);
            walkLarge = false;
            walkGlobal = (entry & PG_G) != 0 && (cr4 & Cpu.CR4_PGE) != 0;
            return (entry & 0xFFFFF000L) | (la & 0xFFF);
        }
        long rsvd = RSVD_HIGH | (nxe ? 0 : PG_NX);
        int level;
        long tableAddr;
        if ((cpu.efer & Cpu.EFER_LMA) != 0) {
            // 4-level paging; the linear address must be canonical (bits 63:47 equal).
            if (((la << 16) >> 16) != la) throw cpu.gp0();
            level = 4;
            tableAddr = cpu.cr3 & ADDR_MASK;
        } else {
            // PAE: the PDPTE (SDM 4.4.1). Real CPUs cache these at CR3 load; reading them here is equivalent
            // for guests that do not modify live PDPTEs without reloading CR3.
            long pdpteAddr = (cpu.cr3 & 0xFFFFFFE0L) | ((la >>> 27) & 0x18);
            long pdpte = mem.readPhys(pdpteAddr, 8);
            if ((pdpte & PG_P) == 0) throw new PageFault(ecBase);
            if ((pdpte & (RSVD_HIGH | 0x1E6 | PG_NX)) != 0) throw new PageFault(ecBase | 9);
            level = 2;
            tableAddr = pdpte & ADDR_MASK;
            la &= 0xFFFF_FFFFL;
        }
        for (;;) {
            int shift = 12 + 9 * (level - 1);
            entryAddr = tableAddr | ((la >>> shift) & 0x1FF) << 3;
            entry = mem.readPhys(entryAddr, 8);
            if ((entry & PG_P) == 0) throw new PageFault(ecBase);
            boolean ps = (entry & PG_PS) != 0 && (level == 2 || level == 3);
            long r = rsvd;
            if (level == 4 && (entry & PG_PS) != 0) r |= PG_PS;
            if (ps) r |= ((1L << (shift - 13)) - 1) << 13;
            if ((entry & r) != 0) throw new PageFault(ecBase | 9 | (acc == WRITE ? 2 : 0));
            rw &= entry; us &= entry; nx |= entry & PG_NX;
            if (level == 1 || ps) {
                size = 1L << shift;
                // Protection keys exist only with IA-32e paging: the leaf's bits 62:59 (SDM Vol. 3A 4.6.2, Table 4-19).
                checkAccess(acc, usr, rw, us, nx, ecBase, (cpu.efer & Cpu.EFER_LMA) != 0 ? (int) (entry >>> 59) & 0xF : -1);
                setAccessed(entryAddr, entry, acc == WRITE, setAD, 8);
                walkFlags = rw | us | nx | (acc == WRITE || (entry & PG_D) != 0 ? PG_D : 0);
                walkLarge = ps;
                walkSize = size;
                walkGlobal = (entry & PG_G) != 0 && (cr4 & Cpu.CR4_PGE) != 0;
                pa = (entry & ADDR_MASK & ~(size - 1)) | (la & (size - 1));
                return pa;
            }
            if (setAD && (entry & PG_A) == 0) mem.cmpxchg(entryAddr, 8, entry, entry | PG_A);
            tableAddr = entry & ADDR_MASK;
            level--;
        }
    }

    /**
     * Access rights of a present translation (SDM Vol. 3A 4.6): U/S, R/W with CR0.WP, NX, SMEP, SMAP and the
     * protection keys. {@code pkey} is the leaf's key under IA-32e paging, -1 otherwise. Leaves the key's
     * rights that applied in {@link #walkKeyRights}; a fault that the keys cause sets the PK flag, whether or
     * not another rule also denies the access (SDM 4.7, PK flag).
     */
    private void checkAccess(int acc, boolean usr, long rw, long us, long nx, int ecBase, int pkey) {
        long cr4 = cpu.cr4;
        boolean wp = (cpu.cr0 & Cpu.CR0_WP) != 0, userPage = us != 0;
        if (probing) return;
        boolean deny = acc == FETCH && nx != 0;
        if (usr) {
            deny |= !userPage || (acc == WRITE && rw == 0);
        } else {
            deny |= acc == WRITE && rw == 0 && wp;
            if (userPage) {
                // SMEP: no supervisor fetch from a user page; SMAP: no supervisor data access to one unless it is
                // explicit and EFLAGS.AC = 1 (SDM 4.6.1).
                if (acc == FETCH) deny |= (cr4 & Cpu.CR4_SMEP) != 0;
                else deny |= (cr4 & Cpu.CR4_SMAP) != 0 && (implicitSupervisor || (cpu.rflags & Flags.AC) == 0);
            }
        }
        int keyRights = 0;
        if (pkey >= 0 && acc != FETCH) {
            // PKRU governs user-mode pages with CR4.PKE, IA32_PKRS supervisor-mode pages with CR4.PKS (SDM 4.6.2).
            int rights = userPage ? ((cr4 & Cpu.CR4_PKE) != 0 ? cpu.pkru : 0) : ((cr4 & Cpu.CR4_PKS) != 0 ? cpu.pkrs : 0);
            keyRights = (rights >>> (2 * pkey)) & 3;
        }
        walkKeyRights = keyRights;
        boolean keyDeny = (keyRights & KEY_AD) != 0 || ((keyRights & KEY_WD) != 0 && acc == WRITE && (usr || wp));
        if (keyDeny) throw new PageFault(ecBase | 1 | PFEC_PK);
        if (deny) throw new PageFault(ecBase | 1);
    }

    private void setAccessed(long addr, long entry, boolean write, boolean setAD, int size) {
        if (!setAD) return;
        long want = entry | PG_A | (write ? PG_D : 0);
        if (want != entry) mem.cmpxchg(addr, size, entry, want);
    }
}
