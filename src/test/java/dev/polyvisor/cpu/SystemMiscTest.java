package dev.polyvisor.cpu;

import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.InterruptDeliveryTest.enterUser64;
import static dev.polyvisor.cpu.SystemFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/** Legacy-mode privilege transitions, SYSENTER/SYSEXIT, string I/O, hypercalls, and register-access instructions. */
class SystemMiscTest {
    @Test
    void protectedModeIretToRing3AndInterruptBackUsesTheTss32Stack() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.protected32();
            f.mem.writePhys(TSS + 4, 4, KSTACK);
            f.mem.writePhys(TSS + 8, 4, KDATA);
            Segments.cache(c, Cpu.TR, TSS_SEL, f.read64(GDT + TSS_SEL));
            f.gate32(0x80, KCODE32, stub(0x80), 0xE, 3);
            long[] frame = {UCODE, UCODE32, 0x202, USTACK, UDATA};
            for (int i = 0; i < 5; i++) f.mem.writePhys(KSTACK - 0x100 + 4L * i, 4, frame[i]);
            c.r[Cpu.RSP] = KSTACK - 0x100;
            f.program(32, UCODE, "mov eax, cs\nint 0x80");
            f.program(32, KCODE, "iretd");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(0x80) + 1, c.rip);
            assertEquals(UCODE32, c.r[Cpu.RAX], "user code saw CS = 0x23");
            assertEquals(KDATA, c.segSel[Cpu.SS]);
            assertEquals(KSTACK - 20, c.r[Cpu.RSP]);
            assertEquals(UCODE + 4, f.read32(KSTACK - 20));
            assertEquals(UCODE32, f.read32(KSTACK - 16));
            assertEquals(USTACK, f.read32(KSTACK - 8));
            assertEquals(UDATA, f.read32(KSTACK - 4));
            assertEquals(0, c.segSel[Cpu.DS], "IRET to ring 3 nulled the ring-0 data segment");
        }
    }

    @Test
    void sysexitAndSysenterSwitchBetweenRing3AndRing0() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.protected32();
            c.sysenterCs = KCODE32;
            c.sysenterEsp = KSTACK - 0x40;
            c.sysenterEip = KCODE + 0x100;
            f.program(32, KCODE + 0x100, "hlt");
            f.program(32, UCODE, "mov eax, cs\nsysenter");
            f.program(32, KCODE, "mov edx, 0x20000\nmov ecx, 0x28000\nsysexit");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(KCODE32 + 16 | 3, c.r[Cpu.RAX], "SYSEXIT loaded CS = SYSENTER_CS + 16, RPL 3");
            assertEquals(KCODE + 0x101, c.rip);
            assertEquals(KSTACK - 0x40, c.r[Cpu.RSP]);
            assertEquals(0, c.cpl);
            assertEquals(KCODE32, c.segSel[Cpu.CS]);
        }
    }

    @Test
    void repOutsbAndRepInsbMoveStringsThroughPorts() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            f.mem.load(0x800, "hi!".getBytes());
            f.program(64, KCODE, """
                    mov esi, 0x800
                    mov ecx, 3
                    mov edx, 0xe9
                    rep outsb
                    mov edi, 0x900
                    mov ecx, 2
                    rep insw
                    hlt
                    """);
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals("hi!", f.platform.consoleText());
            assertEquals(0x803, c.r[Cpu.RSI]);
            assertEquals(0, c.r[Cpu.RCX]);
            assertEquals(0x904, c.r[Cpu.RDI]);
            assertEquals(0xFFFF_FFFFL, f.read32(0x900), "unclaimed port reads all-ones");
        }
    }

    /** A platform whose hypercall handler answers with RAX = 0x1234 when RAX was 7 and refuses otherwise. */
    static final class HypercallPlatform extends TestPlatform {
        boolean lastVmmcall;
        @Override public boolean hypercall(VcpuExit.Hypercall call) {
            lastVmmcall = call.vmmcall();
            if (call.context().reg(Cpu.RAX) != 7) return false;
            call.context().setReg(Cpu.RAX, 0x1234);
            return true;
        }
        @Override public int[] cpuid(int vcpuId, int leaf, int subleaf) { return new int[] {leaf, subleaf, -1, 4}; }
    }

    @Test
    void vmcallGoesToThePlatformAndUnclaimedCallsAreInvalidOpcode() {
        HypercallPlatform p = new HypercallPlatform();
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            c.platform = p;
            f.long64();
            f.program(64, KCODE, "mov eax, 7\nvmmcall\nmov ebx, eax\nmov eax, 9\nvmcall");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.UD) + 1, c.rip);
            assertEquals(0x1234, c.r[Cpu.RBX], "the handler's answer in RAX");
            assertEquals(KCODE + 15, f.read64(KSTACK - 40), "#UD at the refused VMCALL");
            assertFalse(p.lastVmmcall);
            assertEquals(9, c.r[Cpu.RAX]);
        }
    }

    @Test
    void cpuidAndRdtscFollowTheirRules() {
        HypercallPlatform p = new HypercallPlatform();
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            c.platform = p;
            f.long64();
            f.program(64, KCODE, "mov eax, 0x80000001\nmov ecx, 2\ncpuid\nrdtsc\nhlt");
            c.r[Cpu.RBX] = -1;
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(2, c.r[Cpu.RBX], "CPUID passes EAX and ECX to the platform, zero-extends results");
            assertEquals(0xFFFF_FFFFL, c.r[Cpu.RCX]);
            assertEquals(p.tscValue & 0xFFFF_FFFFL, c.r[Cpu.RAX]);

            enterUser64(f);
            c.cr4 |= Cpu.CR4_TSD;
            f.program(64, UCODE, "rdtsc");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.GP) + 1, c.rip, "CR4.TSD makes RDTSC privileged");
        }
    }

    @Test
    void descriptorTableAndMachineStatusInstructions() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            c.cr0 |= Cpu.CR0_TS;
            c.dr[7] = 0;
            f.program(64, KCODE, """
                    sgdt [0x800]
                    sidt [0x810]
                    smsw eax
                    clts
                    mov rbx, dr7
                    mov rcx, cr3
                    mov edx, 0x2000
                    mov cr2, rdx
                    hlt
                    """);
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(0x4F, f.mem.readPhys(0x800, 2));
            assertEquals(GDT, f.read64(0x802));
            assertEquals(256 * 16 - 1, f.mem.readPhys(0x810, 2));
            assertEquals(IDT, f.read64(0x812));
            assertNotEquals(0, c.r[Cpu.RAX] & Cpu.CR0_TS, "SMSW read CR0 before CLTS");
            assertEquals(0, c.cr0 & Cpu.CR0_TS);
            assertEquals(0x400, c.r[Cpu.RBX], "DR7 bit 10 reads as 1");
            assertEquals(PML4, c.r[Cpu.RCX]);
            assertEquals(0x2000, c.cr2);
        }
    }

    @Test
    void privilegedInstructionsFaultAtCpl3AndUmipHidesTables() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            for (String insn : new String[] {"hlt", "mov rax, cr0", "lgdt [0x800]", "wrmsr", "invlpg [0x800]", "swapgs", "wbinvd"}) {
                enterUser64(f);
                f.program(64, UCODE, insn);
                assertInstanceOf(VcpuExit.Halt.class, f.run(), insn);
                assertEquals(stub(Exceptions.GP) + 1, c.rip, insn);
                assertEquals(UCODE, f.read64(KSTACK - 40), insn);
            }
            enterUser64(f);
            f.program(64, UCODE, "sgdt [0x800]\nud2");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.UD) + 1, c.rip, "without UMIP SGDT works at CPL 3; UD2 raises #UD");
            assertEquals(UCODE + 8, f.read64(KSTACK - 40), "#UD reported at the UD2");

            enterUser64(f);
            c.cr4 |= 1L << 11;
            f.program(64, UCODE, "sgdt [0x800]");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.GP) + 1, c.rip);
        }
    }

    /** Flat 32-bit protected mode with TSS.SS0:ESP0 = KDATA:KSTACK loaded in TR. */
    static void protected32WithTss(SystemFixture f) {
        f.protected32();
        f.mem.writePhys(TSS + 4, 4, KSTACK);
        f.mem.writePhys(TSS + 8, 4, KDATA);
        Segments.cache(f.cpu, Cpu.TR, TSS_SEL, f.read64(GDT + TSS_SEL));
    }

    @Test
    void legacyCallGateToRing0CopiesParametersAndFarReturnReleasesThem() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            protected32WithTss(f);
            long target = KCODE + 0x100;
            long gate = (target & 0xFFFF) | ((long) KCODE32 << 16) | (2L << 32) | (0xECL << 40) | ((target & 0xFFFF0000L) << 32);
            f.mem.writePhys(GDT + 0x50, 8, gate);
            c.gdtLimit = 0x57;
            f.loadSeg(Cpu.CS, UCODE32);
            for (int s : new int[] {Cpu.SS, Cpu.DS, Cpu.ES}) f.loadSeg(s, UDATA);
            c.updateMode();
            c.r[Cpu.RSP] = USTACK - 8;
            f.mem.writePhys(USTACK - 8, 4, 0x1111);
            f.mem.writePhys(USTACK - 4, 4, 0x2222);
            f.program(32, target, "mov eax, esp\nmov ebx, [esp+8]\nmov ecx, [esp+12]\nretf 8");
            f.program(32, UCODE, "call 0x53:0\nhlt");
            assertEquals(3, c.cpl);
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(KSTACK - 24, c.r[Cpu.RAX], "ring-0 ESP after the gate call");
            assertEquals(0x1111, c.r[Cpu.RBX], "parameters copied in order");
            assertEquals(0x2222, c.r[Cpu.RCX]);
            // Back in ring 3, HLT raised #GP, delivered on the ring-0 stack from the TSS again.
            assertEquals(stub(Exceptions.GP) + 1, c.rip);
            assertEquals(UCODE + 7, f.read32(KSTACK - 20));
            assertEquals(UCODE32, f.read32(KSTACK - 16));
            assertEquals(USTACK, f.read32(KSTACK - 8), "RETF 8 released the parameters on the caller's stack");
            assertEquals(UDATA, f.read32(KSTACK - 4));
        }
    }

    @Test
    void iretToVirtual8086ModeAndInterruptBackToRing0() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            protected32WithTss(f);
            f.gate32(0x21, KCODE32, stub(0x21), 0xE, 3);
            long[] frame = {0x100, 0x700, Flags.VM | Flags.IOPL | 2, 0x200, 0x800, 0x900, 0xA00, 0, 0};
            for (int i = 0; i < frame.length; i++) f.mem.writePhys(KSTACK - 0x100 + 4L * i, 4, frame[i]);
            c.r[Cpu.RSP] = KSTACK - 0x100;
            f.program(16, 0x7100, "mov ax, ds\nint 0x21");
            f.program(32, KCODE, "iretd");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(0xA00, c.r[Cpu.RAX] & 0xFFFF, "DS in virtual-8086 mode");
            assertEquals(stub(0x21) + 1, c.rip);
            assertEquals(0, c.rflags & Flags.VM);
            assertEquals(0, c.cpl);
            long[] want = {0x104, 0x700, -1, 0x200, 0x800, 0x900, 0xA00, 0, 0};
            for (int i = 0; i < want.length; i++)
                if (want[i] >= 0) assertEquals(want[i], f.read32(KSTACK - 36 + 4L * i), "frame slot " + i);
            assertNotEquals(0, f.read32(KSTACK - 28) & Flags.VM, "pushed EFLAGS has VM");
            assertEquals(0, c.segSel[Cpu.DS], "data segments are nulled on the way to ring 0");
        }
    }

    @Test
    void xgetbvAndXsetbvManageXcr0OnlyWithOsxsave() {
        try (SystemFixture f = new SystemFixture()) {
            Cpu c = f.cpu;
            f.long64();
            f.program(64, KCODE, "xor ecx, ecx\nxgetbv");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(stub(Exceptions.UD) + 1, c.rip, "CR4.OSXSAVE clear: #UD");

            f.long64();
            c.cr4 |= 1L << 18;
            f.program(64, KCODE, "xor ecx, ecx\nxor edx, edx\nmov eax, 3\nxsetbv\nxgetbv\nmov ebx, eax\nmov eax, 7\nxsetbv");
            assertInstanceOf(VcpuExit.Halt.class, f.run());
            assertEquals(3, c.r[Cpu.RBX]);
            assertEquals(3, c.xcr0, "AVX state is not supported");
            assertEquals(stub(Exceptions.GP) + 1, c.rip);
        }
    }
}
