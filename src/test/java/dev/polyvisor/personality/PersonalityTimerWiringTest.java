package dev.polyvisor.personality;

import dev.polyvisor.vmm.Outcome;
import dev.polyvisor.vmm.Vm;
import dev.polyvisor.vmm.VmConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The VMM arms its personality timer when a guest starts a personality timer through an MSR write, not
 * only when an earlier personality timer fired: a Hyper-V one-shot stimer programmed by the guest expires
 * and clears its enable bit (TLFS; KVM stimer_expiration), which the guest sees by polling the config MSR.
 */
class PersonalityTimerWiringTest {
    @TempDir Path dir;

    @Test
    void aGuestProgrammedSyntheticTimerExpires() throws Exception {
        byte[] code = {
                (byte) 0xB9, 0x20, 0x00, 0x00, 0x40,        // mov ecx, HV_X64_MSR_TIME_REF_COUNT
                0x0F, 0x32,                                 // rdmsr
                0x05, (byte) 0xE8, 0x03, 0x00, 0x00,        // add eax, 1000 (100 us in 100 ns units)
                (byte) 0x83, (byte) 0xD2, 0x00,             // adc edx, 0
                (byte) 0xB9, (byte) 0xB1, 0x00, 0x00, 0x40, // mov ecx, HV_X64_MSR_STIMER0_COUNT
                0x0F, 0x30,                                 // wrmsr: absolute expiry
                (byte) 0xB9, (byte) 0xB0, 0x00, 0x00, 0x40, // mov ecx, HV_X64_MSR_STIMER0_CONFIG
                (byte) 0xB8, 0x01, 0x14, 0x00, 0x00,        // mov eax, enable | vector 0x40 << 4 | direct mode
                0x31, (byte) 0xD2,                          // xor edx, edx
                0x0F, 0x30,                                 // wrmsr: start (IF=0: the vector stays in the IRR)
                0x0F, 0x32,                                 // poll: rdmsr
                (byte) 0xA8, 0x01,                          // test al, 1 (enable)
                0x75, (byte) 0xFA,                          // jnz poll
                (byte) 0xB0, 0x2A,                          // mov al, 42
                (byte) 0xE6, (byte) 0xF4,                   // out 0xf4, al
        };
        Path img = Files.write(dir.resolve("stimer.bin"), code);
        VmConfig cfg = VmConfig.of(img, VmConfig.BootKind.FLAT).withMemory(8)
                .withFlat(new VmConfig.FlatEntry(0x100000, VmConfig.FlatMode.PROTECTED32))
                .withTimeout(Duration.ofSeconds(10))
                .withPersonalities(List.of("hyperv"), List.of());
        Outcome o;
        try (Vm vm = new Vm(cfg, new ByteArrayOutputStream())) {
            o = vm.run();
        }
        assertEquals(Outcome.Kind.DEBUG_EXIT, o.kind(), o.message());
        assertEquals((42 << 1) | 1, o.status());
    }
}
