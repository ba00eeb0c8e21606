package dev.polyvisor.cpu.decode;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuFault;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.LongModeFixture;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.cpu.exec.Isa;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** KVM's forced-emulation prefix (ud2; .ascii "kvm"): skipped only when the CPU property asks for it. */
class ForcedEmulationPrefixTest {
    /** FEP, then mov eax, 0x1234. */
    static final byte[] FEP_MOV = {0x0F, 0x0B, 'k', 'v', 'm', (byte) 0xB8, 0x34, 0x12, 0, 0};

    @Test
    void withoutTheOptInThePrefixIsUd2() {
        try (LongModeFixture f = new LongModeFixture()) {
            f.mem.load(LongModeFixture.CODE, FEP_MOV);
            Insn i = new Decoder(Isa.table()).decode(f.cpu, LongModeFixture.CODE);
            assertEquals(2, i.len);
            CpuFault e = assertThrows(CpuFault.class, () -> i.exec(f.cpu));
            assertEquals(Exceptions.UD, e.vector);
        }
    }

    @Test
    void withTheOptInThePrefixIsSkippedAndTheNextInstructionRunsOnItsOwn() {
        try (LongModeFixture f = new LongModeFixture()) {
            f.cpu.forceEmulationPrefix = true;
            f.mem.load(LongModeFixture.CODE, FEP_MOV);
            Insn i = new Decoder(Isa.table()).decode(f.cpu, LongModeFixture.CODE);
            assertEquals(10, i.len, "one step: the prefix and the instruction KVM emulates after it");
            assertEquals(5, Decoder.forcedEmulationPrefixLength(i));
            assertInstanceOf(VcpuExit.Halt.class, f.run(FEP_MOV));
            assertEquals(0x1234, f.cpu.r[Cpu.RAX]);
        }
    }

    @Test
    void aFaultBehindThePrefixReportsTheInstructionNotThePrefix() {
        // KVM moves RIP past the prefix before it emulates (arch/x86/kvm/x86.c handle_ud).
        try (LongModeFixture f = new LongModeFixture()) {
            f.cpu.forceEmulationPrefix = true;
            byte[] fepUd2 = {0x0F, 0x0B, 'k', 'v', 'm', 0x0F, 0x0B}; // FEP, then a real UD2
            f.mem.load(LongModeFixture.CODE, fepUd2);
            Insn i = new Decoder(Isa.table()).decode(f.cpu, LongModeFixture.CODE);
            f.cpu.prevRip = LongModeFixture.CODE;
            f.cpu.rip = LongModeFixture.CODE + i.len;
            assertEquals(Exceptions.UD, assertThrows(CpuFault.class, () -> i.exec(f.cpu)).vector);
            assertEquals(LongModeFixture.CODE + 5, f.cpu.prevRip, "the fault's RIP is the UD2 after the prefix");
            assertFalse(f.cpu.forcedEmulation, "the flag lasts while the instruction runs");
        }
    }

    @Test
    void ud2FollowedByOtherBytesStaysUd2WithTheOptIn() {
        try (LongModeFixture f = new LongModeFixture()) {
            f.cpu.forceEmulationPrefix = true;
            f.mem.load(LongModeFixture.CODE, new byte[] {0x0F, 0x0B, 'k', 'v', 'x'});
            assertEquals(2, new Decoder(Isa.table()).decode(f.cpu, LongModeFixture.CODE).len);
        }
    }
}
