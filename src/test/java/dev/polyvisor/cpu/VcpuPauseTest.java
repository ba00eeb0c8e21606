package dev.polyvisor.cpu;

import dev.polyvisor.cpu.exec.Isa;
import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/**
 * PAUSE tells the platform the vCPU spins; a platform that gives the host CPU away (Vm, like KVM on a
 * pause-loop exit) gets the vCPU stopped right after the PAUSE, not at the end of its trace.
 */
class VcpuPauseTest {
    @Test
    void aYieldOnPauseStopsTheVcpuBeforeTheNextInstruction() {
        try (GuestMemory mem = new GuestMemory(8L << 20)) {
            Vcpu[] self = new Vcpu[1];
            int[] pauses = {0};
            TestPlatform yielding = new TestPlatform() {
                @Override public void pause(int vcpuId) { pauses[0]++; self[0].interrupt(); }
            };
            Cpu cpu = new Cpu(0, mem, yielding);
            TraceCache traces = new TraceCache(Isa.table(), cpu.mmu.codePages());
            self[0] = new Vcpu(cpu, traces);
            LongModeFixture.enterLongMode(cpu, LongModeFixture.PML4);
            // The trace runs on past the PAUSE: a spin lock acquired right after it (xchg) is the case that matters.
            byte[] code = Asm.assemble(64, """
                    pause
                    mov eax, 1
                    xchg eax, dword ptr [0x200000]
                    mov ebx, 7
                    hlt
                    """);
            mem.load(LongModeFixture.CODE, code);
            traces.flush();
            cpu.rip = LongModeFixture.CODE;
            VcpuExit e = self[0].run(1_000_000);
            assertEquals(1, pauses[0]);
            assertFalse(e instanceof VcpuExit.Halt, "stopped before the HLT: " + e);
            assertEquals(LongModeFixture.CODE + 2, cpu.rip, "right after the 2-byte PAUSE");
            assertEquals(0, mem.ld32(0x200000), "the lock word was not taken before the yield");
            assertEquals(0, cpu.r[Cpu.RBX]);
            assertInstanceOf(VcpuExit.Halt.class, self[0].run(1_000_000), "resumes where it stopped");
            assertEquals(1, mem.ld32(0x200000));
            assertEquals(7, cpu.r[Cpu.RBX]);
        }
    }

    @Test
    void aPauseThatDoesNotYieldKeepsTheTraceGoing() {
        try (LongModeFixture f = new LongModeFixture()) {
            Cpu c = f.run("pause\nmov ebx, 7");
            assertEquals(7, c.r[Cpu.RBX]);
        }
    }
}
