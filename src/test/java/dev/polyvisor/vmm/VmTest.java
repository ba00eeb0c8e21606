package dev.polyvisor.vmm;

import dev.polyvisor.vmm.VmConfig.BootKind;
import dev.polyvisor.vmm.VmConfig.FlatEntry;
import dev.polyvisor.vmm.VmConfig.FlatMode;
import dev.polyvisor.vmm.boot.LoadException;
import dev.polyvisor.vmm.boot.TestImages;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.*;

class VmTest {
    @TempDir Path dir;

    private Outcome run(VmConfig cfg, ByteArrayOutputStream out) throws LoadException {
        try (Vm vm = new Vm(cfg, out)) {
            return vm.run();
        }
    }

    private VmConfig flat(byte[] code, long addr, FlatMode mode) throws Exception {
        Path p = Files.write(dir.resolve("img.bin"), code);
        return VmConfig.of(p, BootKind.FLAT).withMemory(8).withFlat(new FlatEntry(addr, mode));
    }

    @Test
    void cr8IsTheLapicTaskPriorityAndApicBaseDisablesTheLapic() throws Exception {
        // SDM Vol. 3A 11.8.6.1: CR8[3:0] is TPR[7:4]; 11.4.3: clearing IA32_APIC_BASE bit 11 disables the APIC.
        byte[] code = dev.polyvisor.cpu.Asm.assemble(64, """
                mov eax, 9
                mov cr8, rax
                mov esi, 0xFEE00080
                mov ebx, [rsi]
                mov dword ptr [rsi], 0x50
                mov rdx, cr8
                shl edx, 8
                or ebx, edx
                mov ecx, 0x1b
                rdmsr
                and eax, 0xFFFFF7FF
                wrmsr
                mov eax, ebx
                shr eax, 4
                out 0xf4, al
                hlt""");
        try (Vm vm = new Vm(flat(code, 0x100000, FlatMode.LONG64), new ByteArrayOutputStream())) {
            Outcome o = vm.run();
            assertEquals(Outcome.Kind.DEBUG_EXIT, o.kind(), o.toString());
            // TPR read back as 0x90 after MOV CR8 9; CR8 read back as 5 after the MMIO write of TPR 0x50.
            assertEquals((((0x500 | 0x90) >> 4) & 0xFF) << 1 | 1, o.status());
            assertEquals(0, vm.board.devices.lapic(0).apicBaseMsr() & dev.polyvisor.devices.Lapic.APIC_BASE_ENABLE,
                    "the LAPIC follows IA32_APIC_BASE's global enable bit");
        }
    }

    @Test
    void aSelfNmiThroughTheLapicIcrReachesTheNmiHandlerWithInterruptsDisabled() throws Exception {
        // ICR delivery mode NMI (100b), level assert, shorthand self (SDM Vol. 3A 11.6.1); vector 2 through
        // the IDT whatever IF says. Without NMI delivery the BSP halts with IF=0 and the VM stops instead.
        byte[] code = dev.polyvisor.cpu.Asm.assemble(64, """
                mov rsp, 0x90000
                mov rdi, 0x80000
                lea rax, [rip + handler]
                mov [rdi + 32], ax
                mov dx, cs
                mov [rdi + 34], dx
                mov word ptr [rdi + 36], 0x8E00
                shr rax, 16
                mov [rdi + 38], ax
                shr rax, 16
                mov [rdi + 40], eax
                mov dword ptr [rdi + 44], 0
                sub rsp, 16
                mov word ptr [rsp], 0xFFF
                mov [rsp + 2], rdi
                lidt [rsp]
                cli
                mov esi, 0xFEE00300
                mov dword ptr [rsi], 0x44400
                1: hlt
                jmp 1b
                handler:
                mov al, 0x21
                out 0xf4, al
                hlt""");
        Outcome o = run(flat(code, 0x100000, FlatMode.LONG64), new ByteArrayOutputStream());
        assertEquals(Outcome.Kind.DEBUG_EXIT, o.kind(), o.toString());
        assertEquals(0x21 << 1 | 1, o.status());
    }

    @Test
    void debugExitWriteEndsTheVmWithQemuStatus() throws Exception {
        // mov eax, 0x2a ; out 0xf4, al ; hlt
        byte[] code = {(byte) 0xB8, 0x2A, 0, 0, 0, (byte) 0xE6, (byte) 0xF4, (byte) 0xF4};
        Outcome o = run(flat(code, 0x100000, FlatMode.PROTECTED32), new ByteArrayOutputStream());
        assertEquals(Outcome.Kind.DEBUG_EXIT, o.kind());
        assertEquals((0x2A << 1) | 1, o.status());
        assertEquals(2, o.instructions());
    }

    @Test
    void realModeFlatBinaryRunsAtItsLoadAddress() throws Exception {
        // 16-bit: mov ax, 7 ; out 0xf4, al
        byte[] code = {(byte) 0xB8, 7, 0, (byte) 0xE6, (byte) 0xF4};
        Outcome o = run(flat(code, 0x7C00, FlatMode.REAL), new ByteArrayOutputStream());
        assertEquals(15, o.status());
    }

    @Test
    void longModeFlatBinaryDecodes64BitImmediates() throws Exception {
        // 64-bit: mov rax, imm64 (REX.W B8) ; out 0xf4, al
        byte[] code = {0x48, (byte) 0xB8, 3, 0, 0, 0, 0, 0, 0, 1, (byte) 0xE6, (byte) 0xF4};
        Outcome o = run(flat(code, 0x200000, FlatMode.LONG64), new ByteArrayOutputStream());
        assertEquals(7, o.status());
    }

    @Test
    void multibootKernelSeesTheBootloaderMagicInEax() throws Exception {
        // out 0xf4, al : AL = low byte of 0x2BADB002
        byte[] img = TestImages.elf32(0x100000, 0x10000C, new byte[] {(byte) 0xE6, (byte) 0xF4}, 0, true);
        Path k = Files.write(dir.resolve("k.elf"), img);
        Outcome o = run(VmConfig.of(k, BootKind.MULTIBOOT).withMemory(4), new ByteArrayOutputStream());
        assertEquals(Outcome.Kind.DEBUG_EXIT, o.kind());
        assertEquals((2 << 1) | 1, o.status());
    }

    @Test
    void icountClockMakesTheTscDeterministic() throws Exception {
        // 32-bit: 15 NOPs, then rdtsc ; shr eax, 4 ; out 0xf4, al. With icount the TSC follows retired
        // instructions (1 ns each at the default 2 GHz TSC), so every run reports the same value.
        byte[] code = new byte[15 + 2 + 3 + 2];
        java.util.Arrays.fill(code, 0, 15, (byte) 0x90);
        byte[] tail = {0x0F, 0x31, (byte) 0xC1, (byte) 0xE8, 4, (byte) 0xE6, (byte) 0xF4};
        System.arraycopy(tail, 0, code, 15, tail.length);
        VmConfig cfg = flat(code, 0x100000, FlatMode.PROTECTED32).withClock(VmConfig.ClockMode.ICOUNT);
        int first = run(cfg, new ByteArrayOutputStream()).status();
        for (int i = 0; i < 3; i++) assertEquals(first, run(cfg, new ByteArrayOutputStream()).status());
        assertEquals(Outcome.Kind.DEBUG_EXIT, run(cfg, new ByteArrayOutputStream()).kind());
    }

    /**
     * ACPI S3 as kvm-unit-tests' s3 drives it: waking vector in the FACS, RTC_EN, an RTC alarm every
     * second with AIE, then SLP_TYP 1 | SLP_EN. The write suspends; the alarm wakes the machine and the
     * BSP resumes in real mode at the waking vector (CS = 0x100, IP = 0, DS = 0), whose code exits with 0x2A.
     */
    @Test
    void s3SuspendResumesAtTheFacsWakingVectorOnAnRtcAlarm() throws Exception {
        long facs;
        try (Vm probe = new Vm(flat(new byte[] {(byte) 0xF4}, 0x100000, FlatMode.PROTECTED32), new ByteArrayOutputStream())) {
            facs = probe.board.acpi.blob("FACS").address();
        }
        byte[] code = dev.polyvisor.cpu.Asm.assemble(32, """
                mov dword ptr [0x%x], 0x1000
                mov dword ptr [0x1000], 0xF4E62AB0
                mov byte ptr [0x1004], 0xF4
                mov dx, 0x602
                mov ax, 0x400
                out dx, ax
                mov al, 1
                out 0x70, al
                mov al, 0xC0
                out 0x71, al
                mov al, 3
                out 0x70, al
                mov al, 0xC0
                out 0x71, al
                mov al, 5
                out 0x70, al
                mov al, 0xC0
                out 0x71, al
                mov al, 0x0C
                out 0x70, al
                in al, 0x71
                mov al, 0x0B
                out 0x70, al
                mov al, 0x22
                out 0x71, al
                mov dx, 0x604
                mov ax, 0x2400
                out dx, ax
                mov al, 0x55
                out 0xf4, al
                """.formatted(facs + 12));
        VmConfig cfg = flat(code, 0x100000, FlatMode.PROTECTED32).withClock(VmConfig.ClockMode.ICOUNT);
        try (Vm vm = new Vm(cfg, new ByteArrayOutputStream())) {
            Outcome o = vm.run();
            assertEquals(Outcome.Kind.DEBUG_EXIT, o.kind(), o.message());
            assertEquals((0x2A << 1) | 1, o.status(), "resumed at the waking vector, not after the SLP_EN write");
            assertEquals(0x100, vm.bsp().segSel[dev.polyvisor.cpu.Cpu.CS], "CS = vector >> 4");
            assertEquals(0xFE, vm.board.devices.rtc.cmosByte(0x0F), "CMOS shutdown status: S3 resume");
            assertEquals(0x8400, vm.board.devices.pm.in(0x600, 2) & 0x8400, "WAK_STS and RTC_STS");
        }
    }

    @Test
    void s3WithNoWakeEventArmedStopsTheVm() throws Exception {
        byte[] code = dev.polyvisor.cpu.Asm.assemble(32, """
                mov dx, 0x604
                mov ax, 0x2400
                out dx, ax
                mov al, 0x55
                out 0xf4, al
                """);
        Outcome o = run(flat(code, 0x100000, FlatMode.PROTECTED32).withClock(VmConfig.ClockMode.ICOUNT), new ByteArrayOutputStream());
        assertEquals(Outcome.Kind.STOPPED, o.kind(), o.message());
        assertTrue(o.message().contains("suspended to RAM"), o.message());
    }

    @Test
    void hypervTestdevAtPort3000RaisesARoutedSintInTheLapic() throws Exception {
        // SINT2 -> vector 0x60; SINT_ROUTE_CREATE (vp 0, SINT 2), SINT_ROUTE_SET_SINT; then IRR bit 0x60
        // (IRR word 3 at 0xFEE00230, bit 0) goes out of the debug port (IF=0: it stays requested).
        byte[] code = dev.polyvisor.cpu.Asm.assemble(32, """
                mov ecx, 0x40000092
                mov eax, 0x60
                xor edx, edx
                wrmsr
                mov dx, 0x3000
                mov eax, 0x10002
                out dx, eax
                mov eax, 0x30002
                out dx, eax
                mov eax, dword ptr [0xFEE00230]
                and eax, 1
                out 0xf4, al
                """);
        VmConfig cfg = flat(code, 0x100000, FlatMode.PROTECTED32).withDevices(java.util.List.of("hyperv-testdev"));
        Outcome o = run(cfg.withPersonalities(java.util.List.of("hyperv"), java.util.List.of()), new ByteArrayOutputStream());
        assertEquals(Outcome.Kind.DEBUG_EXIT, o.kind(), o.message());
        assertEquals((1 << 1) | 1, o.status(), "vector 0x60 requested in the LAPIC");
        LoadException e = assertThrows(LoadException.class, () -> run(cfg, new ByteArrayOutputStream()));
        assertTrue(e.getMessage().contains("needs the hyperv personality"), e.getMessage());
    }

    @Test
    void haltWithInterruptsDisabledStopsTheVmWithAMessage() throws Exception {
        Outcome o = run(flat(new byte[] {(byte) 0x90, (byte) 0xF4}, 0x100000, FlatMode.PROTECTED32), new ByteArrayOutputStream());
        assertEquals(Outcome.Kind.STOPPED, o.kind());
        assertEquals(Outcome.STOPPED_STATUS, o.status());
        assertTrue(o.message().contains("halted with interrupts disabled at RIP 0x100002"), o.message());
    }

    @Test
    void endlessLoopEndsAtTheTimeout() throws Exception {
        VmConfig cfg = flat(new byte[] {(byte) 0xEB, (byte) 0xFE}, 0x100000, FlatMode.PROTECTED32)
                .withTimeout(Duration.ofMillis(300));
        Outcome o = run(cfg, new ByteArrayOutputStream());
        assertEquals(Outcome.Kind.TIMEOUT, o.kind());
        assertEquals(Outcome.TIMEOUT_STATUS, o.status());
        assertTrue(o.instructions() > 1000);
        assertTrue(o.wallNanos() >= 300_000_000L);
    }

    @Test
    void unimplementedInstructionEndsWithAOneLineMessage() throws Exception {
        // 0F 0B (UD2) with no IDT in protected mode: #UD cannot be delivered -> shutdown, not a crash
        Outcome o = run(flat(new byte[] {0x0F, 0x0B}, 0x100000, FlatMode.PROTECTED32), new ByteArrayOutputStream());
        assertTrue(o.kind() == Outcome.Kind.SHUTDOWN || o.kind() == Outcome.Kind.ERROR, o.toString());
        assertFalse(o.message().contains("\n"));
        assertNotEquals(0, o.status());
    }

    /** A console that counts its flushes. */
    private static final class FlushCounter extends ByteArrayOutputStream {
        int flushes;
        @Override public void flush() { flushes++; }
    }

    /**
     * The UART hands the console each byte the guest writes; on the VM thread the console is flushed once per round of
     * quanta, not per byte (a write(2) each on a real terminal), and everything is out when the run ends.
     */
    @Test
    void consoleOutputIsFlushedPerRoundOfQuantaNotPerByteAndWhollyByTheEnd() throws Exception {
        byte[] code = dev.polyvisor.cpu.Asm.assemble(32, """
                mov ecx, 2000
                mov dx, 0x3f8
                1: mov al, 'x'
                out dx, al
                dec ecx
                jnz 1b
                mov al, 0
                out 0xf4, al
                hlt""");
        FlushCounter out = new FlushCounter();
        try (Vm vm = new Vm(flat(code, 0x100000, FlatMode.PROTECTED32), out)) {
            Outcome o = vm.run();
            assertEquals(Outcome.Kind.DEBUG_EXIT, o.kind(), o.toString());
        }
        assertEquals("x".repeat(2000), out.toString());
        assertTrue(out.flushes >= 1 && out.flushes <= 3, "flushed " + out.flushes + " times for 2000 bytes in one quantum");
    }

    @Test
    void consoleLogReceivesACopy() throws Exception {
        Path log = dir.resolve("console.log");
        VmConfig base = flat(new byte[] {(byte) 0xF4}, 0x100000, FlatMode.PROTECTED32);
        VmConfig cfg = new VmConfig(8, 1, base.kernel(), null, "", BootKind.FLAT, VmConfig.ClockMode.REALTIME,
                null, log, java.util.List.of(), base.flat());
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (Vm vm = new Vm(cfg, out)) {
            vm.io.out(0x3F8, 1, 'x'); // THR of the 16550A
            vm.run();
        }
        assertEquals("x", out.toString());
        assertEquals("x", Files.readString(log));
    }

    @Test
    void linuxBootOfAFileThatIsNoBzImageIsAOneLineError() throws Exception {
        Path bz = Files.write(dir.resolve("bz"), new byte[16]);
        VmConfig cfg = VmConfig.of(bz, BootKind.LINUX);
        LoadException e = assertThrows(LoadException.class, () -> new Vm(cfg, new ByteArrayOutputStream()));
        assertTrue(e.getMessage().startsWith(bz + ": "), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    @Test
    void configRejectsNonsense() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> VmConfig.of(null, BootKind.FLAT).withMemory(0));
        assertEquals("memory must be between 2 and 65536 MiB, got 0", e.getMessage());
    }

    private static String regs(int... r) {
        StringBuilder b = new StringBuilder();
        for (int v : r) for (int k = 0; k < 4; k++) b.append((char) ((v >>> (8 * k)) & 0xFF));
        return b.toString();
    }

    @Test
    void bareMachineIsQemu64WithoutTheHypervisorBit() throws Exception {
        try (Vm vm = new Vm(flat(new byte[] {(byte) 0xF4}, 0x100000, FlatMode.PROTECTED32), new ByteArrayOutputStream())) {
            int[] v = vm.cpuid(0, 0, 0);
            assertEquals("AuthenticAMD", regs(v[1], v[3], v[2]));
            assertEquals(0, vm.cpuid(0, 1, 0)[2] & (1 << 31));
            assertNotEquals(0, vm.cpuid(0, 0x80000001, 0)[3] & (1 << 29), "long mode");
            assertFalse(vm.rdmsr(0, 0x4b564d00).ok(), "no kvm-clock MSR on bare: #GP");
        }
    }

    @Test
    void kvmPersonalityAnswersItsSignatureLeafAndSetsTheHypervisorBit() throws Exception {
        VmConfig cfg = flat(new byte[] {(byte) 0xF4}, 0x100000, FlatMode.PROTECTED32)
                .withPersonalities(java.util.List.of("kvm"), java.util.List.of());
        try (Vm vm = new Vm(cfg, new ByteArrayOutputStream())) {
            int[] v = vm.cpuid(0, 0x40000000, 0);
            assertEquals("KVMKVMKVM\0\0\0", regs(v[1], v[2], v[3]));
            assertNotEquals(0, vm.cpuid(0, 1, 0)[2] & (1 << 31));
        }
    }

    @Test
    void unknownPersonalityIsAOneLineLoadError() throws Exception {
        VmConfig cfg = flat(new byte[] {(byte) 0xF4}, 0x100000, FlatMode.PROTECTED32)
                .withPersonalities(java.util.List.of("frob"), java.util.List.of());
        LoadException e = assertThrows(LoadException.class, () -> new Vm(cfg, new ByteArrayOutputStream()));
        assertTrue(e.getMessage().startsWith("--personality frob: unknown personality 'frob'"), e.getMessage());
    }
}
