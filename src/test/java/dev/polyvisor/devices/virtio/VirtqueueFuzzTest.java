package dev.polyvisor.devices.virtio;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The virtqueue parser against arbitrary ring contents: whatever a driver writes into the descriptor
 * table, an indirect table and the available ring, {@link Virtqueue#pop} either returns a chain whose
 * buffers all lie in guest RAM, no longer than the ring or the indirect table, or throws
 * {@link VirtqueueException}; it never throws anything else and never loops.
 *
 * <p>A bounded randomized test with a fixed seed rather than a Jazzer {@code @FuzzTest}: Jazzer 0.24
 * (the current release) cannot instrument Java 25 class files ("Unsupported class file major version
 * 69" for every class, so it fuzzes without coverage feedback) and its agent adds half a minute to a
 * regression run. The generator draws from a byte-level source the way FuzzedDataProvider would, so
 * the body moves to {@code @FuzzTest} unchanged once Jazzer reads Java 25. CI runs 10,000 cases; a
 * longer run: {@code mvn test -Dtest=VirtqueueFuzzTest -Dvirtio.fuzz.cases=2000000 -Dvirtio.fuzz.seed=7}.
 */
class VirtqueueFuzzTest {
    /** The subset of Jazzer's FuzzedDataProvider the generator uses. */
    static final class Source {
        private final SplittableRandom rnd;
        Source(long seed) { rnd = new SplittableRandom(seed); }
        int consumeInt(int min, int max) { return rnd.nextInt(min, max + 1); }
        int consumeInt() { return rnd.nextInt(); }
        long consumeLong() { return rnd.nextLong(); }
        boolean consumeBoolean() { return rnd.nextBoolean(); }
    }

    @Test
    void popNeverEscapes() {
        long seed = Long.getLong("virtio.fuzz.seed", 0x13);
        int cases = Integer.getInteger("virtio.fuzz.cases", 10_000);
        SplittableRandom seeds = new SplittableRandom(seed);
        int chains = 0, broken = 0;
        for (int i = 0; i < cases; i++) {
            long s = seeds.nextLong();
            try {
                int[] r = oneCase(new Source(s));
                chains += r[0] > 0 ? 1 : 0;
                broken += r[1];
            } catch (Throwable t) {
                throw new AssertionError("case " + i + " (source seed " + s + ")", t);
            }
        }
        System.out.printf("VirtqueueFuzzTest: %d cases (seed %d): %d popped chains, %d found malformed%n", cases, seed, chains, broken);
        // Both outcomes must be common, or the generator is not reaching the parser's corners.
        assertTrue(chains > cases / 5, "cases with a chain: " + chains);
        assertTrue(broken > cases / 5, "cases found malformed: " + broken);
    }

    /** Returns {chains popped, 1 if the queue was found malformed}. */
    static int[] oneCase(Source in) {
        TestRing r = new TestRing(1 << in.consumeInt(0, 4));
        try {
            boolean eventIdx = in.consumeBoolean(), indirect = in.consumeBoolean();
            // Addresses near the data area, the end of RAM and the indirect table hit both sides of each bound.
            for (int i = 0; i < r.size; i++) {
                long addr = switch (in.consumeInt(0, 7)) {
                    case 5 -> (1 << 20) - in.consumeInt(0, 64);
                    case 6 -> 0x8000 + 16L * in.consumeInt(0, 8);
                    case 7 -> in.consumeLong();
                    default -> TestRing.DATA + in.consumeInt(0, 0x1000);
                };
                int len = in.consumeInt(0, 15) == 0 ? in.consumeInt() : in.consumeInt(0, 96);
                // Mostly well-formed flags and links, so that the parser gets past the first descriptor.
                int flags = switch (in.consumeInt(0, 15)) {
                    case 0 -> in.consumeInt(0, 0xFFFF);
                    case 8, 9, 10, 11, 12 -> 0;
                    case 1 -> Virtqueue.DESC_F_INDIRECT;
                    case 2, 3 -> Virtqueue.DESC_F_NEXT;
                    case 4, 5 -> Virtqueue.DESC_F_WRITE | Virtqueue.DESC_F_NEXT;
                    default -> Virtqueue.DESC_F_WRITE;
                };
                int next = in.consumeInt(0, 15) == 0 ? in.consumeInt(0, 0xFFFF) : in.consumeInt(0, r.size);
                r.desc(i, addr, len, flags, next);
            }
            for (int i = 0; i < 8; i++)
                r.desc(0x8000, i, TestRing.DATA + in.consumeInt(0, 64), in.consumeInt(0, 64), in.consumeInt(0, 7), in.consumeInt(0, 9));
            Virtqueue q;
            try {
                q = r.queue(eventIdx, indirect);
            } catch (VirtqueueException e) {
                throw new AssertionError(e);
            }
            int posts = in.consumeInt(0, 7) == 0 ? in.consumeInt(0, 2 * r.size) : in.consumeInt(1, r.size);
            for (int i = 0; i < posts; i++) r.post(in.consumeInt(0, r.size));
            if (in.consumeInt(0, 7) == 0) r.mem.st16(TestRing.AVAIL + 2, in.consumeInt(0, 0xFFFF));
            int popped = 0;
            for (int n = 0; n < 2 * r.size + 2; n++) {
                DescriptorChain c;
                try {
                    c = q.pop();
                } catch (VirtqueueException e) {
                    return new int[] {popped, 1}; // the device would set NEEDS_RESET
                }
                if (c == null) break;
                popped++;
                assertTrue(c.head < r.size);
                assertTrue(c.segments() <= Math.max(r.size, 8));
                long[] seen = {0};
                try {
                    c.pieces(false, 0, c.readableBytes(), (pa, len) -> { assertTrue(r.dma.isRam(pa, len)); seen[0] += len; });
                    c.pieces(true, 0, c.writableBytes(), (pa, len) -> { assertTrue(r.dma.isRam(pa, len)); seen[0] += len; });
                } catch (java.io.IOException e) {
                    throw new AssertionError(e);
                }
                assertEquals(c.readableBytes() + c.writableBytes(), seen[0]);
                q.push(c, c.writableBytes());
            }
            return new int[] {popped, 0};
        } finally {
            r.mem.close();
        }
    }
}
