package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.LongModeFixture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.Flags.*;
import static org.junit.jupiter.api.Assertions.*;

class BitOpsTest {
    final LongModeFixture f = new LongModeFixture();
    final Cpu c = f.cpu;

    @AfterEach void close() { f.close(); }

    private long rax() { return c.r[Cpu.RAX]; }

    @Test void shiftByZeroChangesNoFlagsButZeroExtends32() {
        f.run("mov rax, -1\nstc\nmov ecx, 0\nshl eax, cl");
        assertEquals(0xFFFF_FFFFL, rax());
        assertEquals(CF, f.flags() & CF);
        f.run("mov eax, 1\nmov ecx, 32\nstc\nshl eax, cl"); // count masked to 0
        assertEquals(1, rax());
        assertEquals(CF, f.flags() & CF);
    }

    @Test void shlSetsCarryFromLastBitOutAndOverflowForCountOne() {
        f.run("mov al, 0xc0\nshl al, 1");
        assertEquals(0x80, rax() & 0xFF);
        assertEquals(CF | SF, f.flags() & (CF | OF | SF | ZF));
        f.run("mov al, 0x40\nshl al, 1");
        assertEquals(OF | SF, f.flags() & (CF | OF | SF | ZF));
        f.run("mov rax, 3\nshl rax, 63");
        assertEquals(0x8000_0000_0000_0000L, rax());
        assertEquals(CF, f.flags() & CF);
        f.run("mov al, 1\nmov cl, 9\nshl al, cl"); // count 9 > width 8: result 0
        assertEquals(0, rax() & 0xFF);
        assertEquals(ZF, f.flags() & ZF);
    }

    @Test void shrAndSar() {
        f.run("mov al, 0x81\nshr al, 1");
        assertEquals(0x40, rax() & 0xFF);
        assertEquals(CF | OF, f.flags() & (CF | OF | SF | ZF)); // OF = MSB of the original
        f.run("mov al, 0x81\nsar al, 1");
        assertEquals(0xC0, rax() & 0xFF);
        assertEquals(CF | SF, f.flags() & (CF | OF | SF | ZF));
        f.run("mov eax, 0x80000000\nsar eax, 31");
        assertEquals(0xFFFF_FFFFL, rax());
        f.run("mov rax, -2\nsar rax, 63");
        assertEquals(-1L, rax());
        assertEquals(CF, f.flags() & CF);
        f.run("mov ax, 0x8000\nmov cl, 20\nsar ax, cl"); // 16-bit, count above width: all sign
        assertEquals(0xFFFF, rax() & 0xFFFF);
    }

    @Test void salIsShl() {
        f.run("mov eax, 3\n.byte 0xd1, 0xf0"); // SAL eax, 1 encoded as /6
        assertEquals(6, rax());
    }

    @Test void rotatesSetOnlyCfOf() {
        f.run("mov eax, 0\nsub eax, 0\nmov al, 0x81\nrol al, 1"); // ZF=1 before, stays set
        assertEquals(0x03, rax() & 0xFF);
        assertEquals(ZF | CF | OF, f.flags() & (ZF | CF | OF)); // OF = MSB(result) ^ CF = 0 ^ 1
        f.run("mov al, 0x01\nror al, 1");
        assertEquals(0x80, rax() & 0xFF);
        assertEquals(CF | OF, f.flags() & (CF | OF));
        f.run("mov rax, 0x8000000000000001\nrol rax, 4");
        assertEquals(0x18, rax());
        f.run("mov ax, 0x1234\nror ax, 4");
        assertEquals(0x4123, rax() & 0xFFFF);
        f.run("mov al, 0x11\nclc\nrol al, 8"); // masked count 8 rotates by 0 but still sets CF = LSB
        assertEquals(0x11, rax() & 0xFF);
        assertEquals(CF, f.flags() & CF);
    }

    @Test void rclRcrRotateThroughCarry() {
        f.run("mov al, 0x80\nclc\nrcl al, 1");
        assertEquals(0, rax() & 0xFF);
        assertEquals(CF | OF, f.flags() & (CF | OF));
        f.run("mov al, 0x01\nstc\nrcr al, 1");
        assertEquals(0x80, rax() & 0xFF);
        assertEquals(CF | OF, f.flags() & (CF | OF));
        f.run("mov al, 0x01\nclc\nmov cl, 9\nrcl al, cl"); // 8-bit RCL is modulo 9: a full circle
        assertEquals(0x01, rax() & 0xFF);
        assertEquals(0, f.flags() & CF);
        f.run("mov rax, 1\nstc\nrcr rax, 2");
        assertEquals(0xC000_0000_0000_0000L, rax());
        assertEquals(0, f.flags() & CF);
    }

    @Test void shldShrd() {
        f.run("mov eax, 0x12345678\nmov edx, 0x9abcdef0\nshld eax, edx, 8");
        assertEquals(0x3456789AL, rax());
        f.run("mov eax, 0x12345678\nmov edx, 0x9abcdef0\nshrd eax, edx, 8");
        assertEquals(0xF0123456L, rax());
        f.run("mov rax, 1\nmov rdx, 0x8000000000000000\nmov cl, 1\nshld rax, rdx, cl");
        assertEquals(3, rax());
        assertEquals(0, f.flags() & (CF | OF));
        f.run("mov rax, 1\nmov rdx, 1\nshrd rax, rdx, 1");
        assertEquals(0x8000_0000_0000_0000L, rax());
        assertEquals(CF | OF, f.flags() & (CF | OF));
    }

    @Test void btFamilyOnRegisters() {
        f.run("mov eax, 0x10\nbt eax, 4\nsetc bl\nbts eax, 0\nbtr eax, 4\nbtc eax, 33"); // 33 mod 32 = 1
        assertEquals(1, c.r[Cpu.RBX] & 0xFF);
        assertEquals(0x3, rax());
        f.run("mov rax, 0\nmov ecx, 63\nbts rax, rcx\nsetc dl");
        assertEquals(0x8000_0000_0000_0000L, rax());
        assertEquals(0, c.r[Cpu.RDX] & 0xFF);
    }

    @Test void btWithRegisterOffsetAddressesTheBitStringOutsideTheOperand() {
        long base = LongModeFixture.DATA + 0x100;
        c.r[Cpu.RBX] = base;
        f.run("mov rcx, 200\nlock bts qword ptr [rbx], rcx"); // bit 200 = byte 25 bit 0
        assertEquals(1, f.mem.readPhys(base + 25, 1));
        f.run("mov rcx, -1\nbts dword ptr [rbx], ecx"); // bit -1 = byte -1 bit 7
        assertEquals(0x80, f.mem.readPhys(base - 1, 1));
        f.run("mov rcx, -16\nbt word ptr [rbx], cx\nsetc al\nmov rcx, -1\nbtr qword ptr [rbx], rcx\nsetc dl");
        assertEquals(0, rax() & 0xFF);
        assertEquals(1, c.r[Cpu.RDX] & 0xFF);
        assertEquals(0, f.mem.readPhys(base - 1, 1));
        f.run("bts dword ptr [rbx], 35"); // immediate: modulo 32, no displacement
        assertEquals(0x8, f.mem.readPhys(base, 1));
    }

    @Test void bsfBsrAndZeroSourceLeavesDestination() {
        f.run("mov ecx, 0x00f0\nbsf eax, ecx\nbsr edx, ecx");
        assertEquals(4, rax());
        assertEquals(7, c.r[Cpu.RDX]);
        assertEquals(0, f.flags() & ZF);
        f.run("mov rax, -1\nxor ecx, ecx\nbsr rax, rcx");
        assertEquals(-1L, rax());
        assertEquals(ZF, f.flags() & ZF);
        f.run("mov rax, 0x1234\nxor ecx, ecx\nbsf eax, ecx");
        assertEquals(0x1234, rax());
        assertEquals(ZF, f.flags() & ZF);
        f.run("mov rcx, 0x8000000000000000\n.byte 0xf3, 0x48, 0x0f, 0xbd, 0xc1"); // F3 REX.W 0F BD: BSR without LZCNT
        assertEquals(63, rax());
    }
}
