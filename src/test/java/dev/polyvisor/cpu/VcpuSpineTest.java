package dev.polyvisor.cpu;

import dev.polyvisor.cpu.exec.Isa;
import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class VcpuSpineTest {
    @Test
    void realModeCodeRunsUntilHltAndWritesAPort() {
        try (GuestMemory mem = new GuestMemory(1 << 20)) {
            TestPlatform p = new TestPlatform();
            Cpu c = new Cpu(0, mem, p);
            // At 0x7C00: mov ax,0x41 ; out 0xe9,al ; jmp +1 ; nop ; hlt
            mem.load(0x7C00, new byte[] {(byte) 0xB8, 0x41, 0x00, (byte) 0xE6, (byte) 0xE9, (byte) 0xEB, 0x01, (byte) 0x90, (byte) 0xF4});
            c.setRealSegment(Cpu.CS, 0);
            c.rip = 0x7C00;
            Vcpu v = new Vcpu(c, new TraceCache(Isa.table(), c.mmu.codePages()));
            VcpuExit e = v.run(1000);
            assertInstanceOf(VcpuExit.Halt.class, e);
            assertEquals("A", p.consoleText());
            assertEquals(0x7C09, c.rip);
            assertEquals(0x41, c.r[Cpu.RAX]);
        }
    }
}
