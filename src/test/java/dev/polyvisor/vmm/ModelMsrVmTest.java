package dev.polyvisor.vmm;

import dev.polyvisor.vmm.VmConfig.BootKind;
import dev.polyvisor.vmm.VmConfig.FlatEntry;
import dev.polyvisor.vmm.VmConfig.FlatMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** MSRs that come with the CPU model, seen by a guest through RDMSR/WRMSR. */
class ModelMsrVmTest {
    @TempDir Path dir;

    private Outcome run64(String asm) throws Exception {
        Path p = Files.write(dir.resolve("img.bin"), dev.polyvisor.cpu.Asm.assemble(64, asm));
        VmConfig cfg = VmConfig.of(p, BootKind.FLAT).withMemory(8).withFlat(new FlatEntry(0x100000, FlatMode.LONG64));
        try (Vm vm = new Vm(cfg, new ByteArrayOutputStream())) {
            return vm.run();
        }
    }

    @Test
    void theAmdLegacyPerformanceCountersAcceptZeroAndHoldACounterValue() throws Exception {
        // AMD APM Vol. 2, 13.2.1: PerfEvtSel0-3 (C001_0000h-3h) and PerfCtr0-3 (C001_0004h-7h) exist on the
        // AuthenticAMD model. Software zeroes all eight, then Linux's check_hw_exists() flips a counter's low
        // 16 bits and reads it back. Without them the first WRMSR is #GP with no IDT: a triple fault.
        // RDPMC 2 reads PerfCtr2's 48 bits (AMD APM Vol. 3 "RDPMC"), as Linux's perf does when it stops an event.
        Outcome o = run64("""
                mov ecx, 0xC0010000
                xor eax, eax
                xor edx, edx
            1:  wrmsr
                inc ecx
                cmp ecx, 0xC0010008
                jne 1b
                mov ecx, 0xC0010004
                rdmsr
                xor eax, 0xFFFF
                wrmsr
                rdmsr
                cmp eax, 0xFFFF
                jne 2f
                mov ecx, 0xC0010006
                mov eax, 0x89ABCDEF
                mov edx, 0xFFFF0123
                wrmsr
                mov ecx, 2
                rdpmc
                cmp eax, 0x89ABCDEF
                jne 2f
                cmp edx, 0x0123
                jne 2f
                mov eax, 0x21
                out 0xf4, al
            2:  mov eax, 0x13
                out 0xf4, al
                hlt""");
        assertEquals(Outcome.Kind.DEBUG_EXIT, o.kind(), o.toString());
        assertEquals(0x21 << 1 | 1, o.status());
    }
}
