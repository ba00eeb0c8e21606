package dev.polyvisor.vmm;

import dev.polyvisor.vmm.VmConfig.BootKind;
import dev.polyvisor.vmm.VmConfig.FlatEntry;
import dev.polyvisor.vmm.VmConfig.FlatMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** fw_cfg, --cpu and --device as a guest sees them (flat 64-bit binaries; the result leaves through port 0xf4). */
class MachineOptionsVmTest {
    @TempDir Path dir;

    private VmConfig flat64(String asm) throws Exception {
        Path p = Files.write(dir.resolve("img.bin"), dev.polyvisor.cpu.Asm.assemble(64, asm));
        return VmConfig.of(p, BootKind.FLAT).withMemory(8).withFlat(new FlatEntry(0x100000, FlatMode.LONG64));
    }

    private static Outcome run(VmConfig cfg) throws Exception {
        try (Vm vm = new Vm(cfg, new ByteArrayOutputStream())) {
            return vm.run();
        }
    }

    /** Exit status for a byte {@code v} written to isa-debug-exit. */
    private static int exit(int v) { return v << 1 | 1; }

    @Test
    void fwCfgReportsTheCpuCountAndRamSizeOnTheLegacyPorts() throws Exception {
        // QEMU docs/specs/fw_cfg.rst: 16-bit selector write to 0x510, data bytes from 0x511. NB_CPUS (0x05) is
        // a little-endian u16; RAM_SIZE (0x03) a u64: 8 MiB has 0x80 in byte 2. Reported: CPUs << 4 | byte2 >> 4.
        VmConfig cfg = flat64("""
                mov dx, 0x510
                mov ax, 5
                out dx, ax
                inc dx
                in al, dx
                mov bl, al
                in al, dx
                dec dx
                mov ax, 3
                out dx, ax
                inc dx
                in al, dx
                in al, dx
                in al, dx
                shr al, 4
                shl bl, 4
                or al, bl
                out 0xf4, al
                hlt""").withSmp(3);
        Outcome o = run(cfg);
        assertEquals(exit(0x38), o.status(), o.toString());
    }

    @Test
    void cpuidApicBitFollowsTheApicBaseEnableBit() throws Exception {
        // SDM Vol. 3A 11.4.3: with IA32_APIC_BASE.EN clear, CPUID.1:EDX.APIC[bit 9] reads 0; it returns with EN.
        Outcome o = run(flat64("""
                mov ecx, 0x1b
                rdmsr
                mov esi, eax
                and eax, 0xFFFFF7FF
                wrmsr
                mov eax, 1
                cpuid
                mov ebx, edx
                shr ebx, 9
                and ebx, 1
                mov ecx, 0x1b
                mov eax, esi
                xor edx, edx
                wrmsr
                mov eax, 1
                cpuid
                shr edx, 8
                and edx, 2
                or ebx, edx
                mov eax, ebx
                out 0xf4, al
                hlt"""));
        assertEquals(exit(2), o.status(), "APIC bit 0 while disabled, 1 after re-enabling: " + o);
    }

    @Test
    void cr4BitsOfFeaturesTheModelLacksAreReserved() throws Exception {
        // SDM Vol. 3A 2.5/2.6: CR4.OSXSAVE without CPUID.1:ECX.XSAVE, CR4.UMIP without CPUID.7:ECX.UMIP are #GP(0).
        // No IDT here: the #GP becomes a triple fault.
        String setUmip = """
                mov rax, cr4
                or eax, 0x800
                mov cr4, rax
                mov al, 7
                out 0xf4, al
                hlt""";
        assertEquals(Outcome.Kind.SHUTDOWN, run(flat64(setUmip)).kind(), "qemu64 has no UMIP");
        assertEquals(exit(7), run(flat64(setUmip).withCpu("qemu64,+umip")).status());
        assertEquals(Outcome.Kind.SHUTDOWN, run(flat64("""
                mov rax, cr4
                or eax, 0x40000
                mov cr4, rax
                mov al, 7
                out 0xf4, al
                hlt""").withCpu("max")).kind(), "no model offers XSAVE");
    }

    @Test
    void maxAdvertisesRdtscpAndRdpidThatReadTscAux() throws Exception {
        // SDM Vol. 2B RDTSCP/RDPID: ECX / the destination get IA32_TSC_AUX (C000_0103h).
        Outcome o = run(flat64("""
                mov ecx, 0xC0000103
                mov eax, 0x21
                xor edx, edx
                wrmsr
                mov eax, 0x80000001
                cpuid
                bt edx, 27
                jnc 1f
                mov eax, 7
                xor ecx, ecx
                cpuid
                bt ecx, 22
                jnc 1f
                rdtscp
                mov ebx, ecx
                rdpid rax
                add eax, ebx
                out 0xf4, al
            1:  hlt""").withCpu("max"));
        assertEquals(exit(0x42), o.status(), o.toString());
    }

    @Test
    void isaDebugExitMovesAndPcTestdevAppearOnlyWhenAskedFor() throws Exception {
        String asm = """
                mov eax, 0x12345678
                out 0xe0, eax
                in al, 0xe2
                mov dx, 0x501
                out dx, al
                out 0xf4, al
                hlt""";
        // Without devices: 0xe0 is unclaimed (reads all-ones), and port 0xf4 ends the run.
        assertEquals(exit(0xFF), run(flat64(asm)).status());
        // With pc-testdev, 0xe2 reads lane 2 of the scratch register; isa-debug-exit at QEMU's default 0x501.
        Outcome o = run(flat64(asm).withDevices(List.of("pc-testdev", "isa-debug-exit")));
        assertEquals(Outcome.Kind.DEBUG_EXIT, o.kind());
        assertEquals(exit(0x34), o.status());
    }
}
