package dev.polyvisor.devices;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The command sequence of Linux's drivers/input/serio/i8042.c probe. */
class I8042Test {
    private final IoBus io = new IoBus();
    private int resets;
    private int irq1Edges, irq12Edges;
    private boolean irq1, irq12;
    private final I8042 kbc = new I8042(l -> { if (l && !irq1) irq1Edges++; irq1 = l; },
            l -> { if (l && !irq12) irq12Edges++; irq12 = l; }, () -> resets++);

    { kbc.register(io); }

    private int status() { return (int) io.in(0x64, 1); }

    /** i8042_command: write the command, then read the answer only if OBF is set (else it would time out). */
    private int command(int c) {
        io.out(0x64, 1, c);
        assertEquals(1, status() & 1, "command 0x" + Integer.toHexString(c) + " must answer at once");
        return (int) io.in(0x60, 1);
    }

    @Test
    void selfTestAndInterfaceTestsAnswerImmediately() {
        assertNotEquals(0xFF, status()); // i8042_controller_check: a controller is present
        assertEquals(0x55, command(0xAA));
        assertEquals(0x00, command(0xAB));
        assertEquals(0x00, command(0xA9));
        assertEquals(0, status() & 1);
        assertEquals(0x04, status() & 0x04); // system flag after self-test
    }

    @Test
    void commandByteReadsAndWritesBack() {
        int ctr = command(0x20);
        io.out(0x64, 1, 0x60);
        assertEquals(0x08, status() & 0x08); // last write was a command
        io.out(0x60, 1, ctr | 0x02);
        assertEquals(ctr | 0x02, command(0x20));
    }

    @Test
    void auxLoopbackReturnsTheByteFlaggedAsAuxData() {
        io.out(0x64, 1, 0xD3);
        io.out(0x60, 1, 0x5A);
        assertEquals(0x21, status() & 0x21); // OBF and AUXDATA
        assertEquals(0x5A, io.in(0x60, 1));
    }

    @Test
    void auxDisableAndEnableToggleCommandByteBit5() {
        io.out(0x64, 1, 0xA7);
        assertEquals(0x20, command(0x20) & 0x20);
        io.out(0x64, 1, 0xA8);
        assertEquals(0, command(0x20) & 0x20);
    }

    @Test
    void keyboardAcknowledgesResetAndIdentifyOneIrqPerByte() {
        io.out(0x60, 1, 0xFF);
        assertEquals(0xFA, io.in(0x60, 1));
        assertEquals(0xAA, io.in(0x60, 1));
        io.out(0x60, 1, 0xF2);
        int[] got = {(int) io.in(0x60, 1), (int) io.in(0x60, 1), (int) io.in(0x60, 1)};
        assertArrayEquals(new int[] {0xFA, 0xAB, 0x83}, got);
        assertEquals(5, irq1Edges); // each byte raised its own edge
        assertFalse(irq1);
    }

    @Test
    void commandWithArgumentIsAckedTwice() {
        io.out(0x60, 1, 0xED); // set LEDs
        assertEquals(0xFA, io.in(0x60, 1));
        io.out(0x60, 1, 0x07);
        assertEquals(0xFA, io.in(0x60, 1));
        assertEquals(0, status() & 1);
    }

    @Test
    void absentMouseAnswersResendWithTimeout() {
        io.out(0x64, 1, 0x60);
        io.out(0x60, 1, 0x47); // enable aux interrupts
        io.out(0x64, 1, 0xD4);
        io.out(0x60, 1, 0xF2);
        assertEquals(0x61, status() & 0x61); // OBF, AUXDATA, timeout
        assertTrue(irq12);
        assertEquals(0xFE, io.in(0x60, 1));
        assertEquals(1, irq12Edges);
    }

    @Test
    void resetPulseAndOutputPortWriteResetTheMachine() {
        io.out(0x64, 1, 0xFE);
        assertEquals(1, resets);
        io.out(0x64, 1, 0xD1);
        io.out(0x60, 1, 0x02); // bit 0 low: reset
        assertEquals(2, resets);
        io.out(0x64, 1, 0xD1);
        io.out(0x60, 1, 0x03);
        assertEquals(2, resets);
        assertTrue(kbc.a20());
    }

    @Test
    void guestGarbageNeverThrows() {
        java.util.Random r = new java.util.Random(5);
        for (int i = 0; i < 20_000; i++) {
            int p = r.nextBoolean() ? 0x60 : 0x64;
            if (r.nextBoolean()) io.out(p, 1, r.nextInt(256)); else io.in(p, 1);
        }
    }
}
