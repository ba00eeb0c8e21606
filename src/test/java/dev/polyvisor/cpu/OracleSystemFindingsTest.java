package dev.polyvisor.cpu;

import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.InterruptDeliveryTest.enterUser64;
import static dev.polyvisor.cpu.SystemFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Behaviours the host-CPU oracle's system family (oracle/SystemForms) found to differ from the AMD
 * host, one test each beside the system-instruction tests.
 */
class OracleSystemFindingsTest {
    @Test
    void fencesWithA66F2OrF3PrefixAreInvalidOpcode() {
        for (String prefix : new String[] {"0x66", "0xf3", "0xf2"}) {
            try (SystemFixture f = new SystemFixture()) {
                f.long64();
                f.program(64, KCODE, "lfence\nmfence\nsfence\n.byte " + prefix + ", 0x0f, 0xae, 0xf0\nhlt");
                assertInstanceOf(VcpuExit.Halt.class, f.run());
                assertEquals(stub(Exceptions.UD) + 1, f.cpu.rip, prefix + " mfence is #UD");
                assertEquals(KCODE + 9, f.read64(KSTACK - 40), "the plain fences ran, the prefixed one faulted");
            }
        }
    }

    @Test
    void lssWithRexWReadsAnM16Colon32PointerAsAmdDoes() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            f.mem.writePhys(0x800, 4, 0x8765_4321L);
            f.mem.writePhys(0x804, 2, KDATA);
            f.mem.writePhys(0x806, 2, 0xFFFF); // where an m16:64 pointer would have its offset's upper half
            c.r[Cpu.RAX] = -1;
            f.program(64, KCODE, "mov ebx, 0x800\n.byte 0x48, 0x0f, 0xb2, 0x03\nhlt" /* rex.w lss rax, [rbx] */);
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(0x8765_4321L, c.r[Cpu.RAX], "32-bit offset, zero-extended");
            assertEquals(KDATA, c.segSel[Cpu.SS]);
        }
    }

    @Test
    void repInsAndOutsWithAZeroCountStillNeedIoPermission() {
        for (String insn : new String[] {"rep insb", "rep outsd"}) {
            try (SystemFixture f = new SystemFixture()) {
                Cpu c = f.cpu;
                enterUser64(f);
                f.program(64, UCODE, "xor ecx, ecx\nmov edx, 0x80\n" + insn);
                assertInstanceOf(VcpuExit.Halt.class, f.run());
                assertEquals(stub(Exceptions.GP) + 1, c.rip, insn);
                assertEquals(0, f.read64(KSTACK - 48), "error code 0");
                assertEquals(UCODE + 7, f.read64(KSTACK - 40), "reported at the string instruction");
            }
        }
    }

    @Test
    void sysenterIsInvalidOpcodeInLongModeAsOnAmd() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            enterUser64(f);
            c.sysenterCs = KCODE64;
            c.sysenterEip = KCODE;
            f.program(64, UCODE, "sysenter");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.UD) + 1, c.rip);
            assertEquals(UCODE, f.read64(KSTACK - 40), "reported at the SYSENTER");
        }
    }

    @Test
    void sysexitIsInvalidOpcodeInLongModeAtAnyPrivilegeAsOnAmd() {
        // CPL 3 (where a KVM host would say #GP) and CPL 0 (where Intel would return to ring 3): #UD both.
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            enterUser64(f);
            c.sysenterCs = KCODE64;
            f.program(64, UCODE, ".byte 0x0f, 0x35" /* sysexit */);
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.UD) + 1, c.rip);
            assertEquals(UCODE, f.read64(KSTACK - 40), "reported at the SYSEXIT");
        }
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.sysenterCs = KCODE64;
            f.program(64, KCODE, "mov edx, 0x20000\nmov ecx, 0x28000\n.byte 0x48, 0x0f, 0x35\nhlt" /* rex.w sysexit */);
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.UD) + 1, c.rip);
        }
    }
}
