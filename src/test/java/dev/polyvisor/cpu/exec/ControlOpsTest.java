package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuFault;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.LongModeFixture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class ControlOpsTest {
    static final long SP = LongModeFixture.STACK_TOP;
    final LongModeFixture f = new LongModeFixture();
    final Cpu c = f.cpu;

    @AfterEach void close() { f.close(); }

    private long rax() { return c.r[Cpu.RAX]; }

    @Test void countedLoopWithJccSumsOneToTen() {
        f.run("xor eax, eax\nmov ecx, 10\n1: add eax, ecx\ndec ecx\njnz 1b");
        assertEquals(55, rax());
    }

    @Test void signedAndUnsignedJccAgreeWithCmp() {
        f.run("""
                xor ebx, ebx
                mov eax, -1
                cmp eax, 1
                jl 1f
                or ebx, 1
                1: cmp eax, 1
                ja 2f
                or ebx, 2
                2: cmp eax, -1
                jne 3f
                or ebx, 4
                3: test eax, eax
                js 4f
                or ebx, 8
                4: cmp eax, 1
                jge 5f
                or ebx, 16
                5:""");
        assertEquals(4 | 16, c.r[Cpu.RBX]);
    }

    @Test void longJccAndJmpRel32() {
        f.run("xor eax, eax\ncmp eax, 0\nje 1f\n.fill 300, 1, 0x90\nmov eax, 1\n1: jmp 2f\n.fill 200, 1, 0x90\n2: inc eax");
        assertEquals(1, rax());
    }

    @Test void callAndRetWithImmediate() {
        f.run("""
                push 7
                call 1f
                jmp 2f
                1: mov rax, [rsp+8]
                ret 8
                2: nop""");
        assertEquals(7, rax());
        assertEquals(SP, c.r[Cpu.RSP]);
    }

    @Test void indirectCallAndJmpThroughRegisterAndMemory() {
        c.r[Cpu.RBX] = LongModeFixture.DATA;
        f.run("""
                lea rax, [rip+1f]
                mov [rbx], rax
                lea rcx, [rip+2f]
                call qword ptr [rbx]
                jmp rcx
                1: mov edx, 5
                ret
                2: add edx, 1""");
        assertEquals(6, c.r[Cpu.RDX]);
        assertEquals(SP, c.r[Cpu.RSP]);
    }

    @Test void nonCanonicalTargetIsGpAtTheBranch() {
        c.r[Cpu.RAX] = 0x0000_8000_0000_0000L;
        var fault = f.step("jmp rax");
        assertEquals(Exceptions.GP, fault.vector);
        assertEquals(LongModeFixture.CODE, c.rip);
    }

    @Test void accessesStraddlingIntoTheNonCanonicalHalfFaultBeforePaging() {
        // The last canonical byte is 0x7fff_ffff_ffff; an 8-byte access there ends non-canonical. Measured on the
        // AMD host: LEAVE with RBP = 0x7fffffffffff is #SS(0) even though that page is not present.
        long top = 0x0000_7FFF_FFFF_FFFFL;
        c.r[Cpu.RBP] = top;
        long sp = c.r[Cpu.RSP];
        var leave = f.step("leave");
        assertEquals(Exceptions.SS, leave.vector);
        assertEquals(sp, c.r[Cpu.RSP], "LEAVE restores RSP when its pop faults");
        c.r[Cpu.RBX] = top;
        assertEquals(Exceptions.GP, f.step("mov rax, [rbx]").vector, "a data access: #GP, not the first page's #PF");
    }

    @Test void nonCanonicalStackReferencesAreSsNotGp() {
        // SDM Vol. 3A 6.15 (interrupt 12): a non-canonical address in a stack reference is #SS(0), other
        // references #GP(0). In 64-bit mode the AMD host decides by the base register (RSP/RBP), ignoring
        // ES/CS/SS/DS overrides; an FS/GS override makes it a #GP.
        long bad = 0x0000_8000_0000_0010L;
        c.r[Cpu.RSP] = bad;
        var push = f.step("push rax");
        assertEquals(Exceptions.SS, push.vector);
        assertEquals(0, push.errorCode);
        assertEquals(bad, c.r[Cpu.RSP], "a faulting push leaves RSP unchanged");
        c.r[Cpu.RSP] = bad;
        assertEquals(Exceptions.SS, f.step("pop rax").vector);
        c.r[Cpu.RSP] = SP;
        c.r[Cpu.RBP] = bad;
        assertEquals(Exceptions.SS, f.step("mov eax, [rbp+8]").vector);
        c.r[Cpu.RBP] = bad;
        assertEquals(Exceptions.GP, f.step("mov eax, ss:[rbx+rbp]").vector, "an SS override on an RBX base");
        c.r[Cpu.RBP] = bad;
        assertEquals(Exceptions.SS, f.step("mov eax, ds:[rbp+8]").vector, "a DS override on an RBP base");
        c.r[Cpu.RBP] = bad;
        assertEquals(Exceptions.GP, f.step("mov eax, fs:[rbp+8]").vector, "an FS override on an RBP base");
        c.r[Cpu.RBX] = bad;
        assertEquals(Exceptions.GP, f.step("mov eax, [rbx]").vector);
    }

    @Test void loopFamilyAndJrcxz() {
        f.run("xor eax, eax\nmov ecx, 5\n1: inc eax\nloop 1b");
        assertEquals(5, rax());
        assertEquals(0, c.r[Cpu.RCX]);
        f.run("xor eax, eax\nmov ecx, 10\n1: inc eax\ncmp eax, 3\nloopne 1b");
        assertEquals(3, rax());
        assertEquals(7, c.r[Cpu.RCX]);
        f.run("mov eax, 1\nxor ecx, ecx\njrcxz 1f\nmov eax, 2\n1: nop");
        assertEquals(1, rax());
        f.run("mov rcx, 0x100000000\nmov eax, 1\njecxz 1f\nmov eax, 2\n1: nop");
        assertEquals(1, rax());
    }

    @Test void pushPopRegistersImmediatesAndMemory() {
        c.r[Cpu.RBX] = LongModeFixture.DATA;
        f.run("""
                mov rax, 0x1122334455667788
                push rax
                push -2
                pop rcx
                pop rdx
                push qword ptr [rbx]
                pop qword ptr [rbx+8]
                push r12
                pop r13
                push ax
                pop si""");
        assertEquals(-2L, c.r[Cpu.RCX]);
        assertEquals(0x1122334455667788L, c.r[Cpu.RDX]);
        assertEquals(0x7788, c.r[Cpu.RSI] & 0xFFFF);
        assertEquals(SP, c.r[Cpu.RSP]);
    }

    @Test void pushRspPushesOldValueAndPopRspLoadsPoppedValue() {
        f.run("push rsp\npop rax");
        assertEquals(SP, rax());
        f.run("push 0x1000\npop rsp");
        assertEquals(0x1000, c.r[Cpu.RSP]);
    }

    @Test void popToRspRelativeMemoryUsesIncrementedRsp() {
        f.run("push 0x55\npush 0x66\npop qword ptr [rsp]");
        assertEquals(SP - 8, c.r[Cpu.RSP]);
        assertEquals(0x66, f.mem.readPhys(SP - 8, 8));
    }

    @Test void enterAndLeave() {
        f.run("mov rbp, 0x1234\nenter 0x20, 0\nmov rax, rbp\nmov rbx, rsp\nleave");
        assertEquals(SP - 8, rax());
        assertEquals(SP - 8 - 0x20, c.r[Cpu.RBX]);
        assertEquals(0x1234, c.r[Cpu.RBP]);
        assertEquals(SP, c.r[Cpu.RSP]);
        // Nesting level 2: copies one outer frame pointer, then pushes the new frame pointer.
        f.mem.writePhys(SP - 0x108, 8, 0xABCD);
        f.run("mov rbp, " + (SP - 0x100) + "\nenter 0x10, 2\nmov rax, [rsp+0x18]\nmov rdx, [rsp+0x10]");
        assertEquals(0xABCD, rax());
        assertEquals(SP - 8, c.r[Cpu.RDX]);
        assertEquals(SP - 8, c.r[Cpu.RBP]);
    }

    @Test void hintNopsAndEndbr() {
        c.r[Cpu.RAX] = 9;
        f.run("endbr64\nnop dword ptr [rax+rax*1+0]\nprefetcht0 [rax]\nprefetchw [rax]\nnop word ptr [rax+rax*1+0x100]");
        assertEquals(9, rax());
    }

    @Test void protected32PushaPopaAndRel16Wrap() {
        LongModeFixture.enterProtected32(c);
        c.r[Cpu.RSP] = SP;
        f.run("mov eax, 1\nmov ecx, 2\nmov edx, 3\nmov ebx, 4\nmov ebp, 5\nmov esi, 6\nmov edi, 7\npushad\n"
                + "xor eax, eax\nxor ebx, ebx\nxor edi, edi\nmov esp, [esp+12]\nsub esp, 32\npopad");
        assertEquals(1, rax());
        assertEquals(4, c.r[Cpu.RBX]);
        assertEquals(7, c.r[Cpu.RDI]);
        assertEquals(SP, c.r[Cpu.RSP]);
    }

    @Test void protected32StackAccessPastTheFlatLimitIsSsNotWrap() {
        LongModeFixture.enterProtected32(c);
        // ESP 2: the dword push would cover 0xFFFFFFFE..0x1_00000001, past SS's 4 GiB limit (SDM Vol. 3A 5.3).
        c.r[Cpu.RSP] = 2;
        CpuFault f1 = assertThrows(CpuFault.class, () -> Stack.push(c, 4, 0x1234));
        assertEquals(Exceptions.SS, f1.vector);
        assertEquals(0, f1.errorCode);
        assertEquals(2, c.r[Cpu.RSP]);
        // A dword pop at 0xFFFFFFFD reads past the limit too.
        c.r[Cpu.RSP] = 0xFFFF_FFFDL;
        assertEquals(Exceptions.SS, assertThrows(CpuFault.class, () -> Stack.pop(c, 4)).vector);
        assertEquals(0xFFFF_FFFDL, c.r[Cpu.RSP]);
    }

    @Test void protected32EnterFramePointerReadPastTheFlatLimitIsSs() {
        LongModeFixture.enterProtected32(c);
        c.r[Cpu.RSP] = SP;
        c.r[Cpu.RBP] = 2; // ENTER 0, 2 copies the dword at EBP-4 = 0xFFFFFFFE, which crosses 4 GiB
        CpuFault fault = f.step("enter 0, 2");
        assertNotNull(fault);
        assertEquals(Exceptions.SS, fault.vector);
        assertEquals(0, fault.errorCode);
        assertEquals(SP, c.r[Cpu.RSP]);
        assertEquals(2, c.r[Cpu.RBP]);
    }

    @Test void realModeIpWrapsAt64K() {
        LongModeFixture.enterReal16(c);
        // At CS:0xFFFE a 2-byte jmp to +0 lands at IP 0x0000 after wrapping; put HLT there.
        c.setRealSegment(Cpu.CS, 0x2000);
        f.mem.load(0x2FFFE, new byte[] {(byte) 0xEB, 0x00});
        f.mem.load(0x20000, new byte[] {(byte) 0xF4});
        c.rip = 0xFFFE;
        f.traces.flush();
        assertInstanceOf(dev.polyvisor.cpu.VcpuExit.Halt.class, f.vcpu.run(10));
        assertEquals(1, c.rip);
    }

    @Test void realModeCallRetUse16BitStack() {
        LongModeFixture.enterReal16(c);
        c.r[Cpu.RSP] = 0x12340000L | 0x8000;
        f.run("call 1f\njmp 2f\n1: mov ax, 0x77\nret\n2: nop");
        assertEquals(0x77, rax() & 0xFFFF);
        assertEquals(0x12348000L, c.r[Cpu.RSP]);
    }

    @Test void operandSizePrefixedBranchIn32BitModeWrapsIpTo16Bits() {
        LongModeFixture.enterProtected32(c);
        // At 0x1FFF0: 66 E9 rel16; the target (0x1FFF4 + 0x20) & 0xFFFF = 0x14 (SDM JMP, operand size 16).
        f.mem.load(0x1FFF0, new byte[] {0x66, (byte) 0xE9, 0x20, 0x00});
        f.mem.load(0x14, new byte[] {(byte) 0xF4});
        c.rip = 0x1FFF0;
        f.traces.flush();
        assertInstanceOf(dev.polyvisor.cpu.VcpuExit.Halt.class, f.vcpu.run(10));
        assertEquals(0x15, c.rip);
    }

    @Test void operandSizePrefixedNearBranchesIn64BitModeAre16BitAsOnAmd() {
        // AMD (the emulated vendor; the oracle's host): 66 E9 takes a rel16 and truncates RIP to 16 bits.
        // Intel would ignore the 66 and read a rel32. (0x10004 + 0x20) & 0xFFFF = 0x24.
        f.mem.load(0x24, new byte[] {(byte) 0xF4});
        assertInstanceOf(dev.polyvisor.cpu.VcpuExit.Halt.class, f.run(new byte[] {0x66, (byte) 0xE9, 0x20, 0x00}));
        assertEquals(0x25, c.rip);
        // 66 E8: pushes a 2-byte return address; 66 C3 pops 2 bytes.
        f.mem.load(0x40, new byte[] {0x66, (byte) 0xC3});
        f.mem.load(0x0004, new byte[] {(byte) 0xF4});
        c.r[Cpu.RSP] = SP;
        assertInstanceOf(dev.polyvisor.cpu.VcpuExit.Halt.class, f.run(new byte[] {0x66, (byte) 0xE8, 0x3C, 0x00}));
        assertEquals(5, c.rip, "returned to (0x10004 & 0xFFFF), where HLT is");
        assertEquals(SP, c.r[Cpu.RSP]);
        assertEquals(0x0004, f.mem.readPhys(SP - 2, 2));
    }

    @Test void enterProbesTheFinalStackPointer() {
        // SDM ENTER #PF: "a write using the final value of the stack pointer would cause a page fault". RSP 0x8000
        // minus 8 (push rBP) minus 0x9000 is 0xFFFF_FFFF_FFFF_EFF8, which the fixture does not map.
        c.r[Cpu.RSP] = 0x8000;
        c.r[Cpu.RBP] = 0x1234;
        var fault = f.step("enter 0x9000, 0");
        assertEquals(Exceptions.PF, fault.vector);
        assertEquals(0xFFFF_FFFF_FFFF_EFF8L, c.cr2);
        assertEquals(0x8000, c.r[Cpu.RSP], "a faulting ENTER leaves RSP");
        assertEquals(0x1234, c.r[Cpu.RBP], "and RBP unchanged");
        c.r[Cpu.RSP] = 0x8000;
        assertNull(f.step("enter 0x7000, 0"));
        assertEquals(0x8000 - 8 - 0x7000, c.r[Cpu.RSP]);
    }

    @Test void nearCallPushFaultComesBeforeTheTargetsGp() {
        // The AMD host checks the push before the target: a non-canonical stack is #SS(0) even when the
        // target is non-canonical too; with a good stack the target's #GP(0) leaves RSP and memory alone.
        c.r[Cpu.RAX] = 0x0000_8000_0000_0000L;
        c.r[Cpu.RSP] = 0x0000_8000_0000_0010L;
        assertEquals(Exceptions.SS, f.step("call rax").vector);
        c.r[Cpu.RSP] = SP;
        f.mem.writePhys(SP - 8, 8, 0x5555);
        assertEquals(Exceptions.GP, f.step("call rax").vector);
        assertEquals(SP, c.r[Cpu.RSP]);
        assertEquals(0x5555, f.mem.readPhys(SP - 8, 8), "nothing pushed");
    }
}
