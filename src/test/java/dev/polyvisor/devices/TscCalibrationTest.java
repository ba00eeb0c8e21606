package dev.polyvisor.devices;

import dev.polyvisor.clock.VirtualClock;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Replays the algorithms of Linux's arch/x86/kernel/tsc.c against the PIT on an emulator that is slow
 * (every port access costs thousands of instructions): the TSC frequency the kernel computes must be
 * the one the clock advertises, because the PIT and the TSC derive from the same virtual time.
 */
class TscCalibrationTest {
    private static final long TSC_HZ = 2_400_000_000L;
    private final VirtualClock clock = VirtualClock.icount(TSC_HZ, 1);
    private final IoBus io = new IoBus();
    private final Pit8254 pit = new Pit8254(clock, IrqLine.NONE);

    {
        pit.register(io);
        new SystemControlPort(clock, pit).register(io);
    }

    /** A port read on a slow emulator: 3000 instructions of emulation per access. */
    private int inb(int port) {
        clock.advanceInstructions(3000);
        return (int) io.in(port, 1);
    }

    private void outb(int v, int port) {
        clock.advanceInstructions(3000);
        io.out(port, 1, v);
    }

    @Test
    void pitCalibrateTscMeasuresTheAdvertisedFrequency() {
        // pit_calibrate_tsc(latch = CLOCK_TICK_RATE / (1000 / 50), ms = 50, ...)
        int latch = 1193182 / 20;
        outb((inb(0x61) & ~0x02) | 0x01, 0x61);
        outb(0xB0, 0x43);
        outb(latch & 0xFF, 0x42);
        outb(latch >> 8, 0x42);
        long t1 = clock.tsc();
        long tsc = t1;
        int pitcnt = 0;
        while ((inb(0x61) & 0x20) == 0) {
            tsc = clock.tsc();
            pitcnt++;
        }
        long t2 = tsc;
        assertTrue(pitcnt > 1000, "loops: " + pitcnt); // Linux rejects fewer than 1000 loops
        long khz = (t2 - t1) / 50; // TSC ticks per ms = kHz, as pit_calibrate_tsc computes it
        assertEquals(TSC_HZ / 1000, khz, TSC_HZ / 1000 / 500, "within 0.2%");
    }

    @Test
    void quickPitCalibrateSeesTheMsbStepEvery256Ticks() {
        outb((inb(0x61) & ~0x02) | 0x01, 0x61);
        outb(0xB0, 0x43);
        outb(0xFF, 0x42);
        outb(0xFF, 0x42);
        // pit_expect_msb: poll until the MSB changes from the expected value, noting the TSC
        long[] tscAtStep = new long[4];
        int msb = 0xFF;
        for (int step = 0; step < 4; step++) {
            int expect = msb - step;
            int count = 0;
            while (true) {
                inb(0x42);
                int m = inb(0x42);
                if (m != expect) break;
                count++;
            }
            tscAtStep[step] = clock.tsc();
            assertTrue(count > 5, "pit_expect_msb needs more than 5 reads per MSB value, got " + count);
        }
        // 256 PIT ticks per MSB step
        double ticksPerStep = (tscAtStep[3] - tscAtStep[1]) / 2.0;
        assertEquals(256.0 * TSC_HZ / Pit8254.FREQUENCY_HZ, ticksPerStep, 256.0 * TSC_HZ / Pit8254.FREQUENCY_HZ * 0.05);
    }
}
