package dev.polyvisor.devices.virtio;

import org.junit.jupiter.api.Test;

import static dev.polyvisor.devices.virtio.Virtqueue.*;
import static org.junit.jupiter.api.Assertions.*;

/** Split virtqueues (virtio 1.2, 2.7): chains, indirect tables, event index, and every malformed case the device refuses. */
class VirtqueueTest {
    private final TestRing r = new TestRing(8);

    @Test
    void aChainIsReadableThenWritableAndGoesBackInTheUsedRing() throws Exception {
        Virtqueue q = r.queue(false, false);
        assertNull(q.pop());
        r.mem.load(TestRing.DATA, "hello".getBytes());
        r.desc(3, TestRing.DATA, 5, DESC_F_NEXT, 5);
        r.desc(5, TestRing.DATA + 0x100, 4, DESC_F_WRITE, 0);
        r.post(3);
        DescriptorChain c = q.pop();
        assertEquals(3, c.head());
        assertEquals(2, c.segments());
        assertEquals(5, c.readableBytes());
        assertEquals(4, c.writableBytes());
        byte[] b = new byte[5];
        assertEquals(5, c.read(0, b, 0, 5));
        assertEquals("hello", new String(b));
        assertEquals(4, c.write(0, "abcdef".getBytes(), 0, 6)); // only 4 writable bytes
        assertEquals('d', r.mem.ld8(TestRing.DATA + 0x103));
        assertTrue(r.writtenPages.contains(TestRing.DATA), "DMA writes report their pages");
        q.push(c, 4);
        assertEquals(1, r.usedIdx());
        assertEquals(3, r.usedId(0));
        assertEquals(4, r.usedLen(0));
        assertNull(q.pop());
        assertTrue(q.needsInterrupt(0));
        r.mem.st16(TestRing.AVAIL, AVAIL_F_NO_INTERRUPT);
        assertFalse(q.needsInterrupt(0));
    }

    @Test
    void indirectTablesAreFlattened() throws Exception {
        Virtqueue q = r.queue(false, true);
        long table = 0x8000;
        r.desc(table, 0, TestRing.DATA, 16, DESC_F_NEXT, 2);
        r.desc(table, 2, TestRing.DATA + 0x100, 512, DESC_F_NEXT | DESC_F_WRITE, 1);
        r.desc(table, 1, TestRing.DATA + 0x400, 1, DESC_F_WRITE, 0);
        r.desc(0, table, 48, DESC_F_INDIRECT, 0);
        r.post(0);
        DescriptorChain c = q.pop();
        assertEquals(0, c.head());
        assertEquals(3, c.segments());
        assertEquals(16, c.readableBytes());
        assertEquals(513, c.writableBytes());
    }

    @Test
    void eventIndexSuppressesInterruptsAndPublishesTheNextAvailIndex() throws Exception {
        Virtqueue q = r.queue(true, false);
        r.desc(0, TestRing.DATA, 8, DESC_F_WRITE, 0);
        r.desc(1, TestRing.DATA, 8, DESC_F_WRITE, 0);
        r.setUsedEvent(1); // interrupt me when the used index passes 1, i.e. after the second entry
        r.post(0);
        r.post(1);
        int old = q.usedIndex();
        q.push(q.pop(), 8);
        assertFalse(q.needsInterrupt(old), "used_event 1 not yet crossed");
        q.push(q.pop(), 8);
        assertTrue(q.needsInterrupt(old));
        assertFalse(q.publishAvailEvent());
        assertEquals(2, r.availEvent());
        r.post(0);
        assertTrue(q.publishAvailEvent(), "a request posted meanwhile is seen");
        r.mem.st16(TestRing.AVAIL, AVAIL_F_NO_INTERRUPT); // ignored under event index
        old = q.usedIndex();
        r.setUsedEvent(2);
        q.push(q.pop(), 8);
        assertTrue(q.needsInterrupt(old));
    }

    @Test
    void indexesWrapAt65536() throws Exception {
        r.mem.st16(TestRing.USED + 2, 0xFFFF);
        Virtqueue q = r.queue(false, false);
        r.availIdx = 0xFFFF;
        r.desc(0, TestRing.DATA, 1, DESC_F_WRITE, 0);
        r.post(0);
        r.post(0);
        q.push(q.pop(), 1);
        q.push(q.pop(), 1);
        assertEquals(1, r.usedIdx());
        assertNull(q.pop());
    }

    private String malformed(boolean indirect, Runnable setup) throws Exception {
        Virtqueue q = r.queue(false, indirect);
        setup.run();
        return assertThrows(VirtqueueException.class, q::pop).getMessage();
    }

    @Test
    void bufferOutsideRam() throws Exception {
        assertTrue(malformed(false, () -> { r.desc(0, (1 << 20) - 4, 8, DESC_F_WRITE, 0); r.post(0); }).contains("outside guest RAM"));
    }

    @Test
    void bufferAddressOverflow() throws Exception {
        assertTrue(malformed(false, () -> { r.desc(0, -16, 32, 0, 0); r.post(0); }).contains("outside guest RAM"));
    }

    @Test
    void loop() throws Exception {
        assertTrue(malformed(false, () -> {
            r.desc(0, TestRing.DATA, 1, DESC_F_NEXT, 1);
            r.desc(1, TestRing.DATA, 1, DESC_F_NEXT, 0);
            r.post(0);
        }).contains("loop"));
    }

    @Test
    void nextBeyondTheQueue() throws Exception {
        assertTrue(malformed(false, () -> { r.desc(0, TestRing.DATA, 1, DESC_F_NEXT, 8); r.post(0); }).contains("beyond"));
    }

    @Test
    void headBeyondTheQueue() throws Exception {
        assertTrue(malformed(false, () -> r.post(9)).contains("beyond the queue"));
    }

    @Test
    void readableAfterWritable() throws Exception {
        assertTrue(malformed(false, () -> {
            r.desc(0, TestRing.DATA, 1, DESC_F_NEXT | DESC_F_WRITE, 1);
            r.desc(1, TestRing.DATA, 1, 0, 0);
            r.post(0);
        }).contains("after a device-writable"));
    }

    @Test
    void availIndexJump() throws Exception {
        assertTrue(malformed(false, () -> r.mem.st16(TestRing.AVAIL + 2, 9)).contains("jumped"));
    }

    @Test
    void indirectWithoutTheFeature() throws Exception {
        assertTrue(malformed(false, () -> { r.desc(0, 0x8000, 16, DESC_F_INDIRECT, 0); r.post(0); }).contains("INDIRECT_DESC"));
    }

    @Test
    void indirectWithNext() throws Exception {
        assertTrue(malformed(true, () -> { r.desc(0, 0x8000, 16, DESC_F_INDIRECT | DESC_F_NEXT, 1); r.post(0); }).contains("both"));
    }

    @Test
    void indirectTableLength() throws Exception {
        assertTrue(malformed(true, () -> { r.desc(0, 0x8000, 20, DESC_F_INDIRECT, 0); r.post(0); }).contains("multiple of 16"));
        r.availIdx = 0;
        assertTrue(malformed(true, () -> { r.desc(0, 0x8000, 0, DESC_F_INDIRECT, 0); r.post(0); }).contains("multiple of 16"));
    }

    @Test
    void nestedIndirect() throws Exception {
        assertTrue(malformed(true, () -> {
            r.desc(0x8000, 0, 0x9000, 16, DESC_F_INDIRECT, 0);
            r.desc(0, 0x8000, 16, DESC_F_INDIRECT, 0);
            r.post(0);
        }).contains("inside an indirect"));
    }

    @Test
    void loopInsideAnIndirectTable() throws Exception {
        assertTrue(malformed(true, () -> {
            r.desc(0x8000, 0, TestRing.DATA, 1, DESC_F_NEXT, 1);
            r.desc(0x8000, 1, TestRing.DATA, 1, DESC_F_NEXT, 0);
            r.desc(0, 0x8000, 32, DESC_F_INDIRECT, 0);
            r.post(0);
        }).contains("loop"));
    }

    @Test
    void indirectTableOutsideRam() throws Exception {
        assertTrue(malformed(true, () -> { r.desc(0, 0xFFFF0, 32, DESC_F_INDIRECT, 0); r.post(0); }).contains("outside guest RAM"));
    }

    @Test
    void ringsMustBeAlignedAndInRam() {
        Virtqueue q = new Virtqueue(r.dma, 8);
        q.setDescAddr(0x1008);
        q.setAvailAddr(0x2000);
        q.setUsedAddr(0x3000);
        assertThrows(VirtqueueException.class, q::enable);
        q.setDescAddr(0xFFFC0); // 8 * 16 bytes would end past 1 MiB
        assertThrows(VirtqueueException.class, q::enable);
        q.setDescAddr(0x1000);
        assertDoesNotThrow(q::enable);
    }

    @Test
    void sizeMustBeAPowerOfTwoUpToTheMaximum() {
        Virtqueue q = new Virtqueue(r.dma, 8);
        q.setSize(6);
        assertEquals(8, q.size());
        q.setSize(16);
        assertEquals(8, q.size());
        q.setSize(4);
        assertEquals(4, q.size());
    }
}
