package dev.polyvisor.devices;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Register-level behaviour of the 8259A pair, programmed the way Linux's init_8259A does it. */
class DualPicTest {
    private final IoBus io = new IoBus();
    private final DualPic pic = new DualPic();

    @BeforeEach
    void initLikeLinux() {
        pic.register(io);
        io.out(0x20, 1, 0x11); // ICW1: edge, cascade, ICW4 needed
        io.out(0x21, 1, 0x30); // ICW2: vectors 0x30-0x37
        io.out(0x21, 1, 0x04); // ICW3: slave on IR2
        io.out(0x21, 1, 0x01); // ICW4: 8086 mode, normal EOI
        io.out(0xA0, 1, 0x11);
        io.out(0xA1, 1, 0x38);
        io.out(0xA1, 1, 0x02);
        io.out(0xA1, 1, 0x01);
        io.out(0x21, 1, 0x00); // unmask all
        io.out(0xA1, 1, 0x00);
    }

    @Test
    void initialisationLeavesImrAsWrittenAndNoRequests() {
        assertEquals(0, io.in(0x21, 1));
        io.out(0x21, 1, 0xFB);
        assertEquals(0xFB, io.in(0x21, 1));
        assertFalse(pic.hasPending());
    }

    @Test
    void lowerIrqNumberWinsAndInServiceBlocksLowerPriorityUntilEoi() {
        pic.setIrq(4, true);
        pic.setIrq(1, true);
        assertTrue(pic.hasPending());
        assertEquals(0x31, pic.acknowledge());
        io.out(0x20, 1, 0x0B); // OCW3: read ISR
        assertEquals(0x02, io.in(0x20, 1));
        assertFalse(pic.hasPending()); // IRQ4 is lower priority than in-service IRQ1
        io.out(0x20, 1, 0x20); // non-specific EOI
        assertEquals(0, io.in(0x20, 1));
        assertTrue(pic.hasPending());
        assertEquals(0x34, pic.acknowledge());
    }

    @Test
    void higherPriorityRequestNestsOverInService() {
        pic.setIrq(4, true);
        assertEquals(0x34, pic.acknowledge());
        pic.setIrq(0, true);
        assertTrue(pic.hasPending());
        assertEquals(0x30, pic.acknowledge());
        io.out(0x20, 1, 0x0B);
        assertEquals(0x11, io.in(0x20, 1));
        io.out(0x20, 1, 0x64); // specific EOI for IR4
        assertEquals(0x01, io.in(0x20, 1));
    }

    @Test
    void readIrrShowsLatchedEdgesAndMaskedRequestsStayLatched() {
        io.out(0x21, 1, 0x08); // mask IRQ3
        pic.setIrq(3, true);
        io.out(0x20, 1, 0x0A); // OCW3: read IRR
        assertEquals(0x08, io.in(0x20, 1));
        assertFalse(pic.hasPending());
        io.out(0x21, 1, 0x00);
        assertEquals(0x33, pic.acknowledge());
        assertEquals(0x00, io.in(0x20, 1) & 0x08);
    }

    @Test
    void edgeModeLatchesOnlyRisingEdges() {
        pic.setIrq(5, true);
        assertEquals(0x35, pic.acknowledge());
        io.out(0x20, 1, 0x20);
        pic.setIrq(5, true); // still high: no new edge
        assertFalse(pic.hasPending());
        pic.setIrq(5, false);
        pic.setIrq(5, true);
        assertTrue(pic.hasPending());
    }

    @Test
    void levelModeViaElcrFollowsTheLineAndReassertsAfterEoi() {
        io.out(0x4D1, 1, 0xFF); // request level for all slave IRQs
        assertEquals(0xDE, io.in(0x4D1, 1)); // IRQ8 and IRQ13 are edge-only
        io.out(0x4D0, 1, 0x07);
        assertEquals(0x00, io.in(0x4D0, 1)); // IRQ0-2 are edge-only
        pic.setIrq(9, true);
        assertEquals(0x39, pic.acknowledge());
        io.out(0xA0, 1, 0x20);
        io.out(0x20, 1, 0x20);
        assertTrue(pic.hasPending()); // line still high: request again
        pic.setIrq(9, false);
        assertEquals(0, pic.irr(true)); // the slave's level request follows the line away
    }

    @Test
    void slaveInterruptsCascadeThroughIr2() {
        pic.setIrq(12, true);
        assertTrue(pic.hasPending());
        assertEquals(0x3C, pic.acknowledge());
        assertEquals(0x04, pic.isr(false));
        assertEquals(0x10, pic.isr(true));
        io.out(0xA0, 1, 0x20);
        io.out(0x20, 1, 0x20);
        assertEquals(0, pic.isr(false));
        assertEquals(0, pic.isr(true));
    }

    @Test
    void requestThatVanishesBeforeIntaGivesSpuriousIrq7WithoutIsr() {
        io.out(0x4D0, 1, 0x20); // IRQ5 level
        pic.setIrq(5, true);
        assertTrue(pic.hasPending());
        pic.setIrq(5, false);
        assertEquals(0x37, pic.acknowledge());
        assertEquals(0, pic.isr(false));
    }

    @Test
    void slaveRequestVanishingGivesSpuriousIrq15() {
        io.out(0x4D1, 1, 0x02); // IRQ9 level
        pic.setIrq(9, true);
        pic.setIrq(9, false);
        // master still latched the cascade edge
        assertEquals(0x3F, pic.acknowledge());
        assertEquals(0, pic.isr(true));
    }

    @Test
    void autoEoiLeavesIsrClear() {
        io.out(0x20, 1, 0x11);
        io.out(0x21, 1, 0x30);
        io.out(0x21, 1, 0x04);
        io.out(0x21, 1, 0x03); // ICW4: AEOI
        pic.setIrq(6, true);
        assertEquals(0x36, pic.acknowledge());
        assertEquals(0, pic.isr(false));
    }

    @Test
    void rotateOnEoiMakesTheServicedIrqLowest() {
        pic.setIrq(1, true);
        assertEquals(0x31, pic.acknowledge());
        io.out(0x20, 1, 0xA0); // rotate on non-specific EOI: IR1 becomes lowest, IR2 highest
        pic.setIrq(1, false);
        pic.setIrq(1, true);
        pic.setIrq(3, true);
        assertEquals(0x33, pic.acknowledge());
    }

    @Test
    void pollCommandReturnsTheHighestRequestAndAcknowledgesIt() {
        pic.setIrq(6, true);
        io.out(0x20, 1, 0x0C); // OCW3 poll
        assertEquals(0x86, io.in(0x20, 1));
        assertEquals(0x40, pic.isr(false));
        io.out(0x20, 1, 0x0C);
        assertEquals(0x00, io.in(0x20, 1));
    }

    @Test
    void intrListenerFiresOnRisingIntr() {
        int[] n = {0};
        pic.setIntrListener(() -> n[0]++);
        pic.setIrq(3, true);
        pic.setIrq(4, true); // INTR already high
        assertEquals(1, n[0]);
    }

    @Test
    void guestGarbageNeverThrows() {
        java.util.Random r = new java.util.Random(1);
        int[] ports = {0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1};
        for (int i = 0; i < 10_000; i++) {
            int p = ports[r.nextInt(ports.length)];
            if (r.nextBoolean()) io.out(p, 1 << r.nextInt(3), r.nextLong());
            else io.in(p, 1 << r.nextInt(3));
            pic.setIrq(r.nextInt(20) - 2, r.nextBoolean());
            if (pic.hasPending()) {
                int v = pic.acknowledge();
                assertTrue(v >= 0 && v < 256);
            }
        }
    }
}
