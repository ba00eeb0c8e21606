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
            assertEquals(5, new Decoder(Isa.table()).decode(f.cpu, LongModeFixture.CODE).len,
                    "the prefix decodes alone, so a fault of the next instruction reports that instruction's RIP, as KVM does");
            assertInstanceOf(VcpuExit.Halt.class, f.run(FEP_MOV));
            assertEquals(0x1234, f.cpu.r[Cpu.RAX]);
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
