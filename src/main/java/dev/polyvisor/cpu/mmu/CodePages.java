package dev.polyvisor.cpu.mmu;

/**
 * Which physical pages hold decoded code, shared by all vCPUs of a VM. A write to such a page goes
 * through the MMU's slow path (its TLB write entry is never installed), which tells the listener to
 * drop the decoded instructions of that page. Linux patches its own text through a second mapping
 * (text_poke), so the check must be by physical page (reference/cpu-design.md 4.4).
 */
public final class CodePages {
    public interface Listener { void codePageWritten(long physPage); }

    private final byte[] marked;
    private volatile Listener listener = p -> {};
    /** Bumped when a page becomes a code page: TLBs drop write entries they cached earlier. */
    private volatile int generation;

    public CodePages(long ramSize) { marked = new byte[(int) (ramSize >>> 12) + 1]; }

    public void setListener(Listener l) { listener = l; }

    /** TLBs whose write entries must drop a page the moment it becomes a code page. */
    private final java.util.List<Mmu> tlbs = new java.util.concurrent.CopyOnWriteArrayList<>();

    void attach(Mmu m) { if (!tlbs.contains(m)) tlbs.add(m); }

    public boolean isCode(long pa) {
        long ppn = pa >>> 12;
        return ppn < marked.length && marked[(int) ppn] != 0;
    }

    public void mark(long pa) {
        long ppn = pa >>> 12;
        if (ppn < marked.length && marked[(int) ppn] == 0) {
            marked[(int) ppn] = 1;
            generation++;
            // A write entry cached before the page held code would let stores bypass the slow path
            // and leave stale decoded instructions (QEMU's tlb_protect_code does the same).
            for (Mmu m : tlbs) m.dropWriteEntries(ppn << 12);
        }
    }

    public int generation() { return generation; }

    /**
     * Called by the MMU slow path before a write lands on a marked page. True when the page held decoded code,
     * whose traces are now invalid: the writing vCPU then ends the trace it runs ({@code Cpu.traceExit}), since
     * the rest of it may be the bytes just written (self-modifying code, SDM Vol. 3A 8.1.3).
     */
    public boolean written(long pa) {
        long ppn = pa >>> 12;
        if (ppn < marked.length && marked[(int) ppn] != 0) {
            marked[(int) ppn] = 0;
            listener.codePageWritten(ppn << 12);
            return true;
        }
        return false;
    }
}
