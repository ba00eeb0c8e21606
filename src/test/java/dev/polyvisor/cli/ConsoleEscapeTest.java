package dev.polyvisor.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class ConsoleEscapeTest {
    @Test
    void ctrlAXQuitsAndDropsWhatFollows() {
        ConsoleEscape e = new ConsoleEscape();
        byte[] in = {'l', 's', 1, 'x', 'z'};
        assertArrayEquals(new byte[] {'l', 's'}, e.filter(in, in.length));
        assertTrue(e.quitRequested());
    }

    @Test
    void doubleCtrlASendsOneCtrlAAndOtherBytesPassWithIt() {
        ConsoleEscape e = new ConsoleEscape();
        byte[] in = {1, 1, 'a', 1, 'c'};
        assertArrayEquals(new byte[] {1, 'a', 1, 'c'}, e.filter(in, in.length));
        assertFalse(e.quitRequested());
    }

    @Test
    void anEscapeSplitAcrossReadsStillQuits() {
        ConsoleEscape e = new ConsoleEscape();
        assertArrayEquals(new byte[] {'a'}, e.filter(new byte[] {'a', 1}, 2));
        assertFalse(e.quitRequested());
        assertArrayEquals(new byte[0], e.filter(new byte[] {'X'}, 1));
        assertTrue(e.quitRequested());
    }
}
