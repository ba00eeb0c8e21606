package dev.polyvisor.devices;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;

import static org.junit.jupiter.api.Assertions.*;

class Uart16550Test {
    private static final int B = 0x3F8;
    private final IoBus io = new IoBus();
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private boolean irq;
    private final Uart16550 uart = new Uart16550(B, l -> irq = l, out::writeBytes);

    { uart.register(io); }

    private int in(int off) { return (int) io.in(B + off, 1); }

    private void out(int off, int v) { io.out(B + off, 1, v); }

    @Test
    void writesToThrReachTheSinkAndLsrReportsEmpty() {
        out(0, 'h');
        out(0, 'i');
        assertEquals("hi", out.toString());
        assertEquals(0x60, in(5) & 0x60); // THRE and TEMT
    }

    @Test
    void divisorLatchIsAccessibleWithDlab() {
        out(3, 0x83);
        out(0, 0x01);
        out(1, 0x00);
        out(3, 0x03);
        assertEquals(1, uart.divisor());
        assertEquals(0x03, in(3));
        assertEquals(0, out.size()); // DLL writes are not data
    }

    @Test
    void threInterruptPendsWhenEnabledWithEmptyThrAndClearsOnIirRead() {
        out(4, 0x08); // OUT2
        assertEquals(0x01, in(2) & 0x0F);
        out(1, 0x02); // ETBEI
        assertTrue(irq);
        assertEquals(0x02, in(2) & 0x0F); // reading IIR reporting THRE clears it
        assertFalse(irq);
        assertEquals(0x01, in(2) & 0x0F);
        out(0, 'x'); // THR empties again: THRE pending
        assertTrue(irq);
        assertEquals(0x02, in(2) & 0x0F);
    }

    @Test
    void linuxBugThreProbeSeesTheInterruptReasserted() {
        // serial8250_do_startup: IER=THRI, read IIR, IER=0, IER=THRI, read IIR must show an interrupt
        out(1, 0x02);
        int iir1 = in(2);
        out(1, 0x00);
        out(1, 0x02);
        int iir = in(2);
        out(1, 0x00);
        assertEquals(0, iir1 & 0x01);
        assertEquals(0, iir & 0x01);
    }

    @Test
    void interruptPriorityIsLineStatusThenDataThenThreThenModem() {
        out(4, 0x08);
        out(1, 0x0F); // all sources
        out(3, 0x83); out(3, 0x03); // touch LCR (no effect)
        out(4, 0x08 | 0x02); // RTS change while not in loopback: MSR lines unchanged
        out(4, 0x10 | 0x08); // loopback
        out(0, 'a');
        out(0, 'b'); // 1-byte holding register without FIFO: overrun
        assertEquals(0x06, in(2) & 0x0F);  // RLS first
        assertEquals(0x03, in(5) & 0x03);  // DR and OE; reading LSR clears OE
        assertEquals(0x04, in(2) & 0x0F);  // then received data
        assertEquals('a', in(0));
        assertEquals(0x02, in(2) & 0x0F);  // then THRE
        assertEquals(0x00, in(2) & 0x0F);  // then modem status (loopback changed the lines)
        in(6);
        assertEquals(0x01, in(2) & 0x0F);
    }

    @Test
    void fifoModeReportsFifoBitsTriggerLevelAndTimeout() {
        out(4, 0x02); // RTS: the host may send
        out(2, 0x81); // FIFO enable, trigger 8
        out(1, 0x01);
        assertEquals(0xC0, in(2) & 0xC0);
        uart.feed("abc".getBytes());
        assertEquals(0x0C, in(2) & 0x0F); // below trigger: character timeout
        uart.feed("defghij".getBytes());
        assertEquals(0x04, in(2) & 0x0F); // 10 >= 8: data available
        StringBuilder s = new StringBuilder();
        while ((in(5) & 1) != 0) s.append((char) in(0));
        assertEquals("abcdefghij", s.toString());
        assertEquals(0x01, in(2) & 0x0F);
    }

    @Test
    void hostInputBeyondTheFifoWaitsInTheHostQueue() {
        out(4, 0x02);
        out(2, 0x01);
        byte[] many = new byte[40];
        for (int i = 0; i < many.length; i++) many[i] = (byte) i;
        uart.feed(many);
        for (int i = 0; i < many.length; i++) {
            assertEquals(1, in(5) & 1);
            assertEquals(i, in(0));
        }
        assertEquals(0, in(5) & 1);
        assertEquals(0, in(5) & 0x02); // nothing was lost
    }

    @Test
    void hostInputWaitsForRtsAndSurvivesTheDriversFifoResetLikeLinuxStartup() {
        // Input typed during boot, before the 8250 driver opens the port: the line is flow-controlled.
        uart.feed("echo ok\n".getBytes());
        assertEquals(0, in(5) & 1, "nothing is received while RTS is low");
        assertEquals(8, uart.pendingInput());
        // serial8250_do_startup: clear and disable the FIFOs, read LSR/RX/IIR/MSR to clear interrupts.
        out(2, 0x01);
        out(2, 0x07);
        out(2, 0x00);
        in(5); in(0); in(2); in(6);
        out(4, 0x08 | 0x01); // OUT2 | DTR (console setup keeps DTR)
        assertEquals(0, in(5) & 1);
        out(2, 0xC1); // set_termios: FIFO on, trigger 14
        out(1, 0x05); // RDI | RLSI
        out(4, 0x08 | 0x03); // open: tty_port_raise_dtr_rts
        assertTrue(irq, "data waiting raises the receive interrupt once RTS is up");
        StringBuilder got = new StringBuilder();
        while ((in(5) & 1) != 0) got.append((char) in(0));
        assertEquals("echo ok\n", got.toString());
        assertEquals(0, uart.pendingInput());
        assertEquals(0, in(5) & 0x02, "no overrun");
    }

    @Test
    void loopbackAndDroppedRtsHoldHostInputBack() {
        out(4, 0x02 | 0x10); // RTS, but looped back: the line is disconnected
        uart.feed("x".getBytes());
        assertEquals(0, in(5) & 1);
        out(4, 0x02);
        assertEquals(1, in(5) & 1);
        assertEquals('x', in(0));
        out(4, 0x00); // RTS dropped: the far end stops sending
        uart.feed("y".getBytes());
        assertEquals(0, in(5) & 1);
        assertArrayEquals("y".getBytes(), uart.takePendingInput());
        assertEquals(0, uart.pendingInput());
    }

    @Test
    void irqIsGatedByOut2() {
        out(1, 0x02);
        assertFalse(irq);
        out(4, 0x08);
        assertTrue(irq);
    }

    @Test
    void loopbackMirrorsModemControlIntoModemStatusLikeLinuxAutoconfig() {
        out(4, 0x10 | 0x0A); // LOOP | OUT2 | RTS
        assertEquals(0x90, in(6) & 0xF0);
        out(4, 0x10 | 0x05); // LOOP | OUT1 | DTR
        assertEquals(0x60, in(6) & 0xF0);
        out(4, 0x00);
        assertEquals(0xB0, in(6) & 0xF0);
    }

    @Test
    void scratchRegisterHoldsAByteAndIerUpperBitsReadZero() {
        out(7, 0xA5);
        assertEquals(0xA5, in(7));
        out(1, 0xFF);
        assertEquals(0x0F, in(1));
    }

    @Test
    void outputStreamSinkWritesAndSurvivesAClosedStream() {
        ByteArrayOutputStream os = new ByteArrayOutputStream();
        uart.setSink(Uart16550.sinkTo(os));
        out(0, 'z');
        assertEquals("z", os.toString());
        uart.setSink(Uart16550.sinkTo(new java.io.OutputStream() {
            @Override public void write(int b) throws java.io.IOException { throw new java.io.IOException("closed"); }
        }));
        out(0, 'q');
        assertEquals(0x60, in(5) & 0x60);
    }

    @Test
    void guestGarbageNeverThrows() {
        java.util.Random r = new java.util.Random(4);
        for (int i = 0; i < 20_000; i++) {
            int off = r.nextInt(8);
            if (r.nextBoolean()) out(off, r.nextInt(256)); else in(off);
            if (r.nextInt(50) == 0) uart.feed(new byte[] {(byte) r.nextInt()});
        }
    }
}
