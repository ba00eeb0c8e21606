package dev.polyvisor.cpu.mmu;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.LongModeFixture;
import dev.polyvisor.cpu.exec.SystemOps;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the TLB must forget and what it may keep (SDM Vol. 3A 4.10.4.1): a CR3 load drops non-global
 * translations and (under CR4.PGE) keeps global ones; a CR4.PGE change drops everything; INVLPG of any
 * address of a large page drops all of that page's 4 KiB pieces, wherever they sit in the TLB. Each case
 * rewrites a paging entry without invalidating, then reads through the old and new mapping.
 */
class TlbInvalidationTest {
    private final LongModeFixture f = new LongModeFixture(16L << 20);
    private final Cpu c = f.cpu;
    /** The fixture's page directory: 2 MiB identity pages, entry i maps i << 21. */
    private static final long PD = LongModeFixture.PML4 + 0x2000;
    /** A 4 KiB page table for the fourth 2 MiB region (linear 6 MiB), built by {@link #split}. */
    private static final long PT = 0x5000;
    private static final long LA = 6L << 20;
    private static final long PAGE_A = 0xC0_0000, PAGE_B = 0xC0_1000; // physical frames with distinct contents

    @AfterEach
    void close() { f.close(); }

    /** Linear LA (4 KiB) maps PAGE_A, with the G bit as given. */
    private void split(boolean global) {
        f.mem.writePhys(PD + 8 * 3, 8, PT | 0x67);
        f.mem.writePhys(PT, 8, PAGE_A | 0x67 | (global ? 0x100 : 0));
        f.mem.writePhys(PAGE_A, 8, 0xAAAA);
        f.mem.writePhys(PAGE_B, 8, 0xBBBB);
        c.mmu.flushAll();
    }

    private void remapToB() { f.mem.writePhys(PT, 8, PAGE_B | 0x67 | (f.mem.readPhys(PT, 8) & 0x100)); }

    @Test
    void aCr3LoadDropsANonGlobalTranslation() {
        c.cr4 |= Cpu.CR4_PGE;
        split(false);
        assertEquals(0xAAAA, c.mmu.read64(LA));
        remapToB();
        SystemOps.writeCr3(c, c.cr3);
        assertEquals(0xBBBB, c.mmu.read64(LA), "non-global: the CR3 load must drop it");
    }

    @Test
    void aCr3LoadKeepsAGlobalTranslationUnderPge() {
        c.cr4 |= Cpu.CR4_PGE;
        split(true);
        assertEquals(0xAAAA, c.mmu.read64(LA));
        remapToB();
        SystemOps.writeCr3(c, c.cr3);
        assertEquals(0xAAAA, c.mmu.read64(LA), "global: kept across CR3 loads until INVLPG or a PGE change");
        c.mmu.invalidatePage(LA);
        assertEquals(0xBBBB, c.mmu.read64(LA), "INVLPG drops a global translation too");
    }

    /**
     * The run loop trusts its jump cache and trace chains within one fetch epoch; INVLPG of a page no code was
     * fetched from since the last flush cannot change what they name, so it keeps the epoch (QEMU clears only that
     * page's jump-cache entries); INVLPG of a fetched page starts a new one, and the fetch sees the new mapping.
     */
    @Test
    void invlpgStartsANewFetchEpochOnlyForAPageCodeWasFetchedFrom() {
        split(false); // no large page cached after the flush: their pieces would make every INVLPG count
        assertEquals(0xAAAA, c.mmu.read64(LA));
        long epoch = c.mmu.fetchEpoch;
        remapToB();
        c.mmu.invalidatePage(LA);
        assertEquals(epoch, c.mmu.fetchEpoch, "a data page: the epoch stays");
        assertEquals(0xBBBB, c.mmu.read64(LA), "the data translation went all the same");
        assertEquals(PAGE_B, c.mmu.fetchPhys(LA));
        f.mem.writePhys(PT, 8, PAGE_A | 0x67);
        c.mmu.invalidatePage(LA);
        assertNotEquals(epoch, c.mmu.fetchEpoch, "code was fetched from the page: a new epoch");
        assertEquals(PAGE_A, c.mmu.fetchPhys(LA), "and the fetch follows the new mapping");
    }

    /** INVLPG anywhere in a 2 MiB page that code was fetched from changes that fetch's mapping: a new epoch. */
    @Test
    void invlpgAnywhereInALargePageCodeWasFetchedFromStartsANewFetchEpoch() {
        c.mmu.flushAll();
        long code = 8L << 20, elsewhere = 10L << 20; // 2 MiB identity pages of the fixture's page directory
        assertEquals(code + 0x10, c.mmu.fetchPhys(code + 0x10));
        long epoch = c.mmu.fetchEpoch;
        c.mmu.invalidatePage(elsewhere + 0x3000);
        assertEquals(epoch, c.mmu.fetchEpoch, "another 2 MiB page, never fetched from: the epoch stays");
        c.mmu.invalidatePage(code + 0x1F_F000);
        assertNotEquals(epoch, c.mmu.fetchEpoch, "the last 4 KiB of the fetched 2 MiB page");
    }

    /** A CR3 load keeps global fetch translations, so INVLPG of such a page still starts a new fetch epoch after it. */
    @Test
    void aGlobalPageFetchedBeforeACr3LoadStillCountsForInvlpgAfterIt() {
        c.cr4 |= Cpu.CR4_PGE;
        split(true);
        assertEquals(PAGE_A, c.mmu.fetchPhys(LA));
        SystemOps.writeCr3(c, c.cr3);
        long epoch = c.mmu.fetchEpoch;
        assertEquals(PAGE_A, c.mmu.fetchPhys(LA), "kept: global");
        remapToB();
        c.mmu.invalidatePage(LA);
        assertNotEquals(epoch, c.mmu.fetchEpoch);
        assertEquals(PAGE_B, c.mmu.fetchPhys(LA));
    }

    /**
     * The global fetch epoch, which the run loop keys the chains of traces in global pages with, outlives a CR3 load
     * as global translations do, and changes with INVLPG of such a page; a non-global page is never keyed with it.
     */
    @Test
    void aCr3LoadKeepsTheGlobalFetchEpochAndInvlpgOfAFetchedGlobalPageChangesIt() {
        c.cr4 |= Cpu.CR4_PGE;
        split(true);
        assertEquals(PAGE_A, c.mmu.fetchPhys(LA));
        assertTrue(c.mmu.fetchesGlobal(LA));
        long epoch = c.mmu.fetchEpoch, global = c.mmu.globalFetchEpoch;
        assertNotEquals(epoch, global);
        SystemOps.writeCr3(c, c.cr3);
        assertNotEquals(epoch, c.mmu.fetchEpoch, "a CR3 load: a new fetch epoch");
        assertEquals(global, c.mmu.globalFetchEpoch, "the global translations' epoch stays");
        assertTrue(c.mmu.fetchesGlobal(LA), "the global fetch entry was kept");
        c.mmu.invalidatePage(LA);
        assertNotEquals(global, c.mmu.globalFetchEpoch, "INVLPG of the page: the global epoch changes too");
        c.mmu.setPrivilege(true);
        assertEquals(Mmu.NO_EPOCH, c.mmu.globalFetchEpoch, "user mode keys nothing with it");
        c.mmu.setPrivilege(false);
        f.mem.writePhys(PT, 8, PAGE_A | 0x67); // not global now
        c.mmu.flushAll();
        assertEquals(PAGE_A, c.mmu.fetchPhys(LA));
        assertFalse(c.mmu.fetchesGlobal(LA));
    }

    @Test
    void theGBitCountsOnlyWithPge() {
        split(true); // G set, CR4.PGE clear
        assertEquals(0xAAAA, c.mmu.read64(LA));
        remapToB();
        SystemOps.writeCr3(c, c.cr3);
        assertEquals(0xBBBB, c.mmu.read64(LA));
    }

    @Test
    void changingPgeDropsGlobalTranslations() {
        c.cr4 |= Cpu.CR4_PGE;
        split(true);
        assertEquals(0xAAAA, c.mmu.read64(LA));
        remapToB();
        SystemOps.writeCr4(c, c.cr4 & ~Cpu.CR4_PGE);
        assertEquals(0xBBBB, c.mmu.read64(LA));
    }

    @Test
    void invlpgOfOneAddressDropsEveryPieceOfItsLargePage() {
        long base = 8L << 20; // the 2 MiB identity page at 8 MiB
        f.mem.writePhys(base + 0x3000, 8, 0x3333);
        f.mem.writePhys(base + 0x1F_F000, 8, 0xFFFF);
        assertEquals(0x3333, c.mmu.read64(base + 0x3000));
        assertEquals(0xFFFF, c.mmu.read64(base + 0x1F_F000)); // a piece at another TLB index
        // The large page now maps the region at 10 MiB, which holds other values at the same offsets.
        f.mem.writePhys(PD + 8 * 4, 8, (10L << 20) | 0xE7);
        f.mem.writePhys((10L << 20) + 0x3000, 8, 0x1_3333);
        f.mem.writePhys((10L << 20) + 0x1F_F000, 8, 0x1_FFFF);
        c.mmu.invalidatePage(base + 0x3000);
        assertEquals(0x1_FFFF, c.mmu.read64(base + 0x1F_F000), "the piece at another index belongs to the same large page");
        assertEquals(0x1_3333, c.mmu.read64(base + 0x3000));
    }

    @Test
    void invlpgInALargePageKeepsUnrelated4KTranslations() {
        split(false);
        assertEquals(0xAAAA, c.mmu.read64(LA));
        assertEquals(0, c.mmu.read64(8L << 20)); // a large-page piece is cached too
        remapToB();
        c.mmu.invalidatePage(8L << 20);
        assertEquals(0xAAAA, c.mmu.read64(LA), "a 4 KiB translation of another page may stay (and does)");
        c.mmu.invalidatePage(LA);
        assertEquals(0xBBBB, c.mmu.read64(LA));
    }

    @Test
    void aProbeTranslatesAsTheAccessItPrecedesWould() {
        split(false);
        c.mmu.write64(LA, 0x1234); // caches the write translation
        remapToB();
        assertEquals(PAGE_A + 8, c.mmu.translate(LA + 8, Mmu.WRITE),
                "the probe of a CALL's push or a store's pages goes through the TLB, as the store itself will");
        c.mmu.invalidatePage(LA);
        assertEquals(PAGE_B + 8, c.mmu.translate(LA + 8, Mmu.WRITE));
    }
}
