package dev.polyvisor.memory;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** {@link GuestMemory#atomicUpdate}: LOCK semantics for every operand size, from several host threads at once. */
class GuestMemoryAtomicsTest {
    private static final GuestMemory.Update ADD = (old, x, y) -> old + x;

    /** Runs {@code body} on {@code n} threads started together and waits for all. */
    private static void concurrently(int n, java.util.function.IntConsumer body) throws InterruptedException {
        List<Thread> ts = new ArrayList<>();
        java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
        for (int i = 0; i < n; i++) {
            final int id = i;
            ts.add(Thread.ofPlatform().start(() -> {
                try { go.await(); } catch (InterruptedException e) { return; }
                body.accept(id);
            }));
        }
        go.countDown();
        for (Thread t : ts) t.join();
    }

    @Test
    void bytesWordsAndDwordsOfOneQuadwordCountExactlyUnderContention() throws Exception {
        try (GuestMemory m = new GuestMemory(1 << 16)) {
            int rounds = 200_000;
            // Threads 0/1 add to the byte at 0x101, 2/3 to the word at 0x102, 4/5 to the dword at 0x104: all in
            // the quadword at 0x100, so each CAS races with updates of the neighbouring operands.
            concurrently(6, id -> {
                long pa = switch (id / 2) { case 0 -> 0x101; case 1 -> 0x102; default -> 0x104; };
                int size = switch (id / 2) { case 0 -> 1; case 1 -> 2; default -> 4; };
                for (int i = 0; i < rounds; i++) m.atomicUpdate(pa, size, ADD, 1, 0);
            });
            assertEquals((2 * rounds) & 0xFF, m.ld8(0x101));
            assertEquals((2 * rounds) & 0xFFFF, m.ld16(0x102));
            assertEquals(2 * rounds, m.ld32(0x104));
            assertEquals(0, m.ld8(0x100), "a neighbouring byte nobody updated stays untouched");
        }
    }

    @Test
    void atomicUpdateReturnsTheOldValueAndStoresTheMaskedNewOne() {
        try (GuestMemory m = new GuestMemory(1 << 16)) {
            m.st64(0x200, 0x1122_3344_5566_77FFL);
            assertEquals(0xFF, m.atomicUpdate(0x200, 1, ADD, 1, 0), "old byte");
            assertEquals(0x1122_3344_5566_7700L, m.ld64(0x200), "the carry does not leave the byte");
            assertEquals(0x5566_7700L, m.atomicUpdate(0x200, 4, (old, x, y) -> old == x ? y : old, 0x5566_7700L, 0xCAFE_F00DL));
            assertEquals(0x1122_3344_CAFE_F00DL, m.ld64(0x200));
        }
    }

    @Test
    void aSplitOperandFallsBackToTheSplitLockAndStillCountsExactly() throws Exception {
        try (GuestMemory m = new GuestMemory(1 << 16)) {
            int rounds = 100_000;
            concurrently(2, id -> { for (int i = 0; i < rounds; i++) m.atomicUpdate(0x306, 4, ADD, 1, 0); });
            assertEquals(2 * rounds, m.ld32(0x306), "a dword across two quadwords");
        }
    }
}
