package dev.polyvisor.vmm;

import dev.polyvisor.cpu.Cpu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * After RESET or INIT, EDX holds the processor's signature, the value CPUID.1:EAX reports (SDM Vol. 3A
 * 9.1.4, Table 9-1): an AP's start-up code may read it, so it follows the CPU model the VM presents.
 */
class ResetSignatureTest {
    @TempDir Path dir;

    @Test
    void anInitialisedApHasTheModelsSignatureInEdx() throws Exception {
        Path img = Files.write(dir.resolve("hlt.bin"), new byte[] {(byte) 0xF4});
        for (String model : new String[] {"qemu64", "Opteron_G1"}) {
            VmConfig cfg = VmConfig.of(img, VmConfig.BootKind.FLAT).withMemory(8).withSmp(2).withCpu(model)
                    .withFlat(new VmConfig.FlatEntry(0x100000, VmConfig.FlatMode.PROTECTED32));
            try (Vm vm = new Vm(cfg, new ByteArrayOutputStream())) {
                Cpu ap = vm.vcpus.get(1).cpu;
                ap.reset();
                assertEquals(vm.cpuModel.signature(), (int) ap.r[Cpu.RDX], model);
            }
        }
        assertEquals(0x60FB1, VmConfig.of(img, VmConfig.BootKind.FLAT).withCpu("qemu64").cpuModel().signature());
    }
}
