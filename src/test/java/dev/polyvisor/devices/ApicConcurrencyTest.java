package dev.polyvisor.devices;

import dev.polyvisor.clock.VirtualClock;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/**
 * vCPU threads sending IPIs to each other while the IOAPIC delivers level interrupts and receives
 * EOI broadcasts: messages go out after the sender's lock is released, so no lock cycle can form.
 */
class ApicConcurrencyTest {
    @Test
    void crossIpisAndLevelEoisFromSeveralThreadsDoNotDeadlock() {
        VirtualClock clock = VirtualClock.icount(1_000_000_000L, 1);
        AtomicInteger kicks = new AtomicInteger();
        ApicBus bus = new ApicBus(clock, 2, null, new ApicBus.CpuSignals() {
            @Override public void kick(int vcpu) { kicks.incrementAndGet(); }
            @Override public void nmi(int vcpu) {}
            @Override public void init(int vcpu) {}
            @Override public void sipi(int vcpu, int vector) {}
        }, ApicBus.DEFAULT_BUS_HZ);
        IoApic ioapic = new IoApic(bus, 2);
        ioapic.write(0, 4, 0x10 + 2 * 9);
        ioapic.write(0x10, 4, 0x8000 | 0x800 | 0x39); // pin 9: level, logical
        ioapic.write(0, 4, 0x11 + 2 * 9);
        ioapic.write(0x10, 4, 0xFFL << 24);          // broadcast
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            Thread[] t = new Thread[3];
            for (int cpu = 0; cpu < 2; cpu++) {
                int me = cpu, other = 1 - cpu;
                t[cpu] = new Thread(() -> {
                    ApicBus.setCurrentVcpu(me);
                    bus.write(0xF0, 4, 0x1FF);
                    for (int i = 0; i < 20_000; i++) {
                        bus.write(0x310, 4, (long) other << 24);
                        bus.write(0x300, 4, 0x4040 | (i & 0xF)); // fixed IPI, vectors 0x40-0x4F
                        Lapic l = bus.lapic(me);
                        if (l.hasPending()) {
                            l.acknowledge();
                            bus.write(0xB0, 4, 0); // EOI; level vectors broadcast to the IOAPIC
                        }
                    }
                });
            }
            t[2] = new Thread(() -> {
                for (int i = 0; i < 20_000; i++) ioapic.setIrq(9, (i & 1) == 0);
            });
            for (Thread x : t) x.start();
            for (Thread x : t) x.join();
        });
        assertTrue(kicks.get() > 0);
    }
}
