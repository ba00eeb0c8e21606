package dev.polyvisor.cpu;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

/** MSR 0x8B, the AMD patch level (PatchLevelMsr): readable on every vCPU, KVM's value, guest writes ignored. */
class PatchLevelMsrTest {
    @Test
    void readsKvmsAmdPatchLevelAndIgnoresGuestWrites() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            assertEquals(0x0100_0065L, CpuMsrs.read(c, 0x8B), "arch/x86/kvm/svm/svm.c __svm_vcpu_reset");
            CpuMsrs.write(c, 0x8B, 0); // Intel's "write 0, CPUID, read" sequence must not fault on AMD under KVM either
            assertEquals(0x0100_0065L, CpuMsrs.read(c, 0x8B));
        }
    }

    @Test
    void isNotOneOfTheLevelsLinuxRefusesToOverwrite() {
        // arch/x86/kernel/cpu/microcode/amd.c, final_levels[]: a match would disable the microcode loader.
        for (long finalLevel : new long[] {0x01000098L, 0x0100009fL, 0x010000afL}) assertNotEquals(finalLevel, PatchLevelMsr.VALUE);
    }

    @Test
    void rdmsrInstructionReturnsItInEdxEax() {
        try (SystemFixture f = new SystemFixture()) {
            f.long64();
            f.cpu.r[Cpu.RDX] = -1;
            f.program(64, SystemFixture.KCODE, """
                    mov ecx, 0x8b
                    rdmsr
                    hlt
                    """);
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(0x0100_0065L, f.cpu.r[Cpu.RAX]);
            assertEquals(0, f.cpu.r[Cpu.RDX]);
        }
    }
}
