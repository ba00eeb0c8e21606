package dev.polyvisor.devices.virtio;

import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.devices.virtio.Virtqueue.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Packed virtqueues (virtio 1.2, 2.8), from the driver's side as Linux's virtio_ring.c writes them: descriptors
 * made available by their AVAIL/USED bits against the wrap counter, chains of consecutive slots that may wrap
 * around the ring, indirect tables, the used descriptor the device writes back, and event suppression.
 */
class PackedVirtqueueTest {
    static final long DESC = 0x1000, DRIVER = 0x2000, DEVICE = 0x3000, DATA = 0x10000;
    final GuestMemory mem = new GuestMemory(1 << 20);
    final GuestDma dma = new GuestDma(mem, null);
    final int size = 4;
    /** The driver's next slot and its wrap counter, and where it looks for used descriptors. */
    int next, lastUsed;
    boolean wrap = true, usedWrap = true;

    Virtqueue queue(boolean eventIdx, boolean indirect) throws VirtqueueException {
        Virtqueue q = new Virtqueue(dma, size);
        q.setDescAddr(DESC);
        q.setAvailAddr(DRIVER);
        q.setUsedAddr(DEVICE);
        q.setFeatures(eventIdx, indirect, true);
        q.enable();
        return q;
    }

    /** Writes descriptors {lens[i], write[i]} in consecutive slots, the first one's flags last, as virtqueue_add_packed does. */
    int post(int id, int[] lens, boolean[] write) {
        int first = next, firstFlags = 0;
        boolean firstWrap = wrap;
        for (int k = 0; k < lens.length; k++) {
            long d = DESC + 16L * next;
            mem.st64(d, DATA + 0x100L * k);
            mem.st32(d + 8, lens[k]);
            mem.st16(d + 12, id);
            int flags = (write[k] ? DESC_F_WRITE : 0) | (k + 1 < lens.length ? DESC_F_NEXT : 0)
                    | (wrap ? DESC_F_AVAIL : DESC_F_USED);
            if (k == 0) firstFlags = flags;
            else mem.st16(d + 14, flags);
            if (++next == size) { next = 0; wrap = !wrap; }
        }
        mem.st16(DESC + 16L * first + 14, firstFlags);
        assertEquals(firstWrap, (firstFlags & DESC_F_AVAIL) != 0);
        return first;
    }

    /** The used descriptor the driver would find next (detect_used: AVAIL == USED == its wrap counter), or -1. */
    int usedId(int slots) {
        long d = DESC + 16L * lastUsed;
        int flags = mem.ld16(d + 14);
        boolean avail = (flags & DESC_F_AVAIL) != 0, used = (flags & DESC_F_USED) != 0;
        if (avail != used || used != usedWrap) return -1;
        int id = mem.ld16(d + 12);
        lastUsed += slots;
        if (lastUsed >= size) { lastUsed -= size; usedWrap = !usedWrap; }
        return id;
    }

    @Test
    void chainsAcrossTheRingEndComeBackAsOneUsedDescriptorEach() throws Exception {
        Virtqueue q = queue(false, false);
        assertNull(q.pop(), "an empty (zeroed) ring has nothing available");
        for (int round = 0; round < 6; round++) { // 3 slots a request in a 4-slot ring: every start position, both wrap counters
            post(7 + round, new int[] {16, 32, 8}, new boolean[] {false, true, true});
            DescriptorChain c = q.pop();
            assertNotNull(c, "round " + round);
            assertEquals(7 + round, c.head(), "the buffer ID");
            assertEquals(3, c.segments());
            assertEquals(16, c.readableBytes());
            assertEquals(40, c.writableBytes());
            assertNull(q.pop(), "one request posted");
            assertEquals(-1, usedId(3), "nothing used before the device answers");
            q.push(c, 40);
            assertEquals(7 + round, usedId(3));
            assertEquals(40, mem.ld32(DESC + 16L * ((lastUsed + size - 3) % size) + 8), "the length written");
        }
    }

    @Test
    void anUnpoppedRequestIsTakenAgain() throws Exception {
        Virtqueue q = queue(false, false);
        post(1, new int[] {64, 64}, new boolean[] {true, true});
        post(2, new int[] {64}, new boolean[] {true});
        DescriptorChain c = q.pop();
        assertEquals(1, c.head());
        q.unpop();
        assertEquals(1, q.pop().head());
        assertEquals(2, q.pop().head());
        q.unpop();
        assertEquals(2, q.pop().head(), "after the ring end, with the wrap counter restored");
    }

    @Test
    void anIndirectTableTakesOneSlot() throws Exception {
        Virtqueue q = queue(false, true);
        long table = 0x8000;
        for (int k = 0; k < 3; k++) {
            mem.st64(table + 16L * k, DATA + 0x100L * k);
            mem.st32(table + 16L * k + 8, 100);
            mem.st16(table + 16L * k + 14, k == 0 ? 0 : DESC_F_WRITE); // no NEXT: Linux's packed indirect tables
        }
        mem.st64(DESC, table);
        mem.st32(DESC + 8, 48);
        mem.st16(DESC + 12, 9);
        mem.st16(DESC + 14, DESC_F_INDIRECT | DESC_F_AVAIL);
        next = 1;
        DescriptorChain c = q.pop();
        assertEquals(9, c.head());
        assertEquals(3, c.segments());
        assertEquals(100, c.readableBytes());
        assertEquals(200, c.writableBytes());
        q.push(c, 0);
        assertEquals(9, usedId(1));
        post(3, new int[] {8}, new boolean[] {true});
        assertEquals(3, q.pop().head(), "the next request starts one slot on");
    }

    @Test
    void malformedRingsAreRefused() throws Exception {
        assertMalformed(false, "without VIRTIO_F_INDIRECT_DESC", () -> {
            mem.st64(DESC, 0x8000); mem.st32(DESC + 8, 16); mem.st16(DESC + 14, DESC_F_INDIRECT | DESC_F_AVAIL);
        });
        assertMalformed(true, "part of a chain", () -> {
            mem.st64(DESC, 0x8000); mem.st32(DESC + 8, 16); mem.st16(DESC + 14, DESC_F_INDIRECT | DESC_F_NEXT | DESC_F_AVAIL);
        });
        assertMalformed(true, "inside an indirect table", () -> {
            mem.st16(0x8000 + 14, DESC_F_INDIRECT);
            mem.st64(DESC, 0x8000); mem.st32(DESC + 8, 16); mem.st16(DESC + 14, DESC_F_INDIRECT | DESC_F_AVAIL);
        });
        assertMalformed(true, "indirect table length", () -> {
            mem.st64(DESC, 0x8000); mem.st32(DESC + 8, 24); mem.st16(DESC + 14, DESC_F_INDIRECT | DESC_F_AVAIL);
        });
        assertMalformed(false, "longer than the ring", () -> {
            for (int i = 0; i < size; i++) { mem.st64(DESC + 16L * i, DATA); mem.st16(DESC + 16L * i + 14, DESC_F_NEXT | DESC_F_AVAIL); }
        });
        assertMalformed(false, "outside guest RAM", () -> {
            mem.st64(DESC, (1 << 20) - 8); mem.st32(DESC + 8, 16); mem.st16(DESC + 14, DESC_F_AVAIL);
        });
        assertMalformed(false, "after a device-writable", () -> {
            mem.st64(DESC, DATA); mem.st32(DESC + 8, 8); mem.st16(DESC + 14, DESC_F_WRITE | DESC_F_NEXT | DESC_F_AVAIL);
            mem.st64(DESC + 16, DATA); mem.st32(DESC + 24, 8); mem.st16(DESC + 30, DESC_F_AVAIL);
        });
    }

    private void assertMalformed(boolean indirect, String why, Runnable ring) throws Exception {
        mem.zero(DESC, 0x8000 + 0x100 - DESC);
        Virtqueue q = queue(false, indirect);
        ring.run();
        VirtqueueException e = assertThrows(VirtqueueException.class, q::pop);
        assertTrue(e.getMessage().contains(why), e.getMessage());
    }

    @Test
    void theRingsMustBeAlignedAndInRam() {
        Virtqueue q = new Virtqueue(dma, size);
        q.setFeatures(false, false, true);
        q.setDescAddr(DESC + 8);
        q.setAvailAddr(DRIVER);
        q.setUsedAddr(DEVICE);
        assertThrows(VirtqueueException.class, q::enable);
        q.setDescAddr(DESC);
        q.setUsedAddr((1 << 20) - 2);
        assertThrows(VirtqueueException.class, q::enable);
        q.setUsedAddr(DEVICE + 2); // 4-byte alignment for the event suppression structures
        assertThrows(VirtqueueException.class, q::enable);
    }

    @Test
    void theDriversEventSuppressionDecidesInterrupts() throws Exception {
        Virtqueue q = queue(true, false);
        assertEquals(EVENT_F_ENABLE, mem.ld16(DEVICE + 2), "the device asks for every notification");
        for (int i = 0; i < 3; i++) post(i, new int[] {8}, new boolean[] {true});
        int old = q.usedIndex();
        assertFalse(q.needsInterrupt(old), "nothing used yet");
        mem.st16(DRIVER + 2, EVENT_F_DISABLE);
        q.push(q.pop(), 8);
        assertFalse(q.needsInterrupt(old), "DISABLE");
        mem.st16(DRIVER + 2, EVENT_F_ENABLE);
        assertTrue(q.needsInterrupt(old), "ENABLE");
        // DESC: interrupt once the used position passes off_wrap (slot 2, wrap counter 1).
        mem.st16(DRIVER, 2 | 1 << 15);
        mem.st16(DRIVER + 2, EVENT_F_DESC);
        old = q.usedIndex();
        q.push(q.pop(), 8); // writes slot 1
        assertFalse(q.needsInterrupt(old), "slot 2 not used yet");
        old = q.usedIndex();
        q.push(q.pop(), 8); // writes slot 2
        assertTrue(q.needsInterrupt(old));
        // Across the ring end: the event names slot 0 with wrap counter 0, i.e. after the wrap.
        mem.st16(DRIVER, 0);
        post(3, new int[] {8}, new boolean[] {true});
        post(4, new int[] {8}, new boolean[] {true});
        old = q.usedIndex();
        q.push(q.pop(), 8); // slot 3
        assertFalse(q.needsInterrupt(old), "slot 0 of the next lap not used yet");
        old = q.usedIndex();
        q.push(q.pop(), 8); // slot 0, wrap counter now 0
        assertTrue(q.needsInterrupt(old));
        assertFalse(q.publishAvailEvent(), "nothing more posted");
        post(5, new int[] {8}, new boolean[] {true});
        assertTrue(q.publishAvailEvent(), "a request posted meanwhile is seen");
    }
}
