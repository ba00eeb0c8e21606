package dev.polyvisor.vmm.boot;

import dev.polyvisor.clock.VirtualClock;
import dev.polyvisor.cpu.Asm;
import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.LongModeFixture;
import dev.polyvisor.cpu.TestPlatform;
import dev.polyvisor.cpu.TraceCache;
import dev.polyvisor.cpu.Vcpu;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.cpu.exec.Isa;
import dev.polyvisor.devices.ApicBus;
import dev.polyvisor.devices.IoBus;
import dev.polyvisor.devices.PcPlatformDevices;
import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** What SeaBIOS leaves for a -kernel image under QEMU: IVT and handlers, BDA, PIC bases and masks, PIT at 18.2 Hz. */
class BiosHandoverTest {
    final VirtualClock clock = VirtualClock.icount(2_000_000_000L, 1);
    final IoBus io = new IoBus();

    PcPlatformDevices devices(GuestMemory mem) {
        return PcPlatformDevices.create(clock, 1, io, mem, 1_700_000_000L,
                new PcPlatformDevices.Hooks(b -> { }, () -> { }, () -> { }, ApicBus.CpuSignals.NONE));
    }

    @Test
    void ivtPointsHardwareVectorsAtEoiHandlersAndTheRestAtIret() {
        try (GuestMemory mem = new GuestMemory(16 << 20)) {
            devices(mem);
            BiosHandover.apply(mem, io, Multiboot.LOW_RAM_END);
            assertEquals(0xF000_FEA5, mem.ld32(8 * 4), "IRQ0: the timer handler");
            assertEquals(0xF000_FF54, mem.ld32(9 * 4), "IRQ1: master EOI");
            assertEquals(0xF000_FF5B, mem.ld32(0x73 * 4), "IRQ11: slave and master EOI");
            assertEquals(0xF000_FF53, mem.ld32(0x11 * 4), "others: IRET");
            assertEquals(0xF000_FF53, mem.ld32(0xFF * 4));
            assertEquals(0xCF, mem.ld8(0xFFF53));
            assertEquals(639, mem.ld16(BiosHandover.BDA_BASE_MEMORY_KIB), "KiB below the EBDA");
            assertEquals(0x9FC0, mem.ld16(BiosHandover.BDA_EBDA_SEGMENT));
        }
    }

    @Test
    void picIsInitialisedAndThePitRaisesIrq0At18Hz() {
        try (GuestMemory mem = new GuestMemory(16 << 20)) {
            PcPlatformDevices d = devices(mem);
            BiosHandover.apply(mem, io, Multiboot.LOW_RAM_END);
            assertEquals(0xFA, d.pic.imr(false), "IRQ0 and the cascade unmasked");
            assertEquals(0xFE, d.pic.imr(true), "IRQ8 unmasked");
            assertFalse(d.pic.hasPending());
            long periodNs = 65536L * 1_000_000_000L / 1_193_182L; // count 0 = 65536 input clocks: 54.9 ms
            assertEquals(periodNs, clock.timers().nextDeadline(), periodNs / 1000, "the PIT's next IRQ0 edge");
            clock.warpToNextDeadline();
            clock.timers().runExpired();
            assertTrue(d.pic.hasPending(), "IRQ0 after one PIT period");
            assertEquals(0x08, d.pic.acknowledge(), "IRQ0 at the BIOS vector base 0x08");
        }
    }

    @Test
    void timerHandlerCountsTicksWrapsAtMidnightChainsInt1cAndSendsEoi() {
        try (GuestMemory mem = new GuestMemory(16 << 20)) {
            devices(mem);
            BiosHandover.apply(mem, io, Multiboot.LOW_RAM_END);
            TestPlatform ports = new TestPlatform();
            Cpu cpu = new Cpu(0, mem, ports);
            Vcpu vcpu = new Vcpu(cpu, new TraceCache(Isa.table(), cpu.mmu.codePages()));
            LongModeFixture.enterReal16(cpu);
            mem.st32(0x1C * 4, 0x0000_1000);   // INT 1Ch hooked: inc byte [0x2000]; iret
            mem.load(0x1000, Asm.assemble(16, "inc byte ptr [0x2000]\niret"));
            mem.load(0x7C00, Asm.assemble(16, "mov sp, 0x7000\nint 8\nint 8\nhlt"));
            cpu.rip = 0x7C00;
            assertInstanceOf(VcpuExit.Halt.class, vcpu.run(10_000));
            assertEquals(2, mem.ld32(BiosHandover.BDA_TICKS));
            assertEquals(2, mem.ld8(0x2000), "INT 1Ch chained on every tick");
            assertEquals(2, ports.outs.stream().filter(o -> o[0] == 0x20 && o[2] == 0x20).count(), "non-specific EOI to the master");

            mem.st32(BiosHandover.BDA_TICKS, BiosHandover.TICKS_PER_DAY - 1);
            mem.load(0x7D00, Asm.assemble(16, "int 8\nhlt"));
            cpu.rip = 0x7D00;
            cpu.halted = false;
            assertInstanceOf(VcpuExit.Halt.class, vcpu.run(10_000));
            assertEquals(0, mem.ld32(BiosHandover.BDA_TICKS), "a day of ticks wraps to 0");
            assertEquals(1, mem.ld8(BiosHandover.BDA_MIDNIGHT), "and sets the midnight flag");
        }
    }
}
