package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuFault;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.LongModeFixture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.Flags.*;
import static org.junit.jupiter.api.Assertions.*;

class IntegerOpsTest {
    final LongModeFixture f = new LongModeFixture();
    final Cpu c = f.cpu;

    @AfterEach void close() { f.close(); }

    private long rax() { return c.r[Cpu.RAX]; }

    @Test void addOfSignedOverflowSetsOfSfAf() {
        f.run("mov al, 0x7f\nadd al, 1");
        assertEquals(0x80, rax() & 0xFF);
        assertEquals(OF | SF | AF, f.flags());
    }

    @Test void add32CarryOutZeroExtendsAndSetsCfZfPf() {
        f.run("mov rax, -1\nadd eax, 1");
        assertEquals(0, rax());
        assertEquals(CF | ZF | PF | AF, f.flags());
    }

    @Test void sub64SignedOverflow() {
        f.run("mov rax, 0x8000000000000000\nsub rax, 1");
        assertEquals(0x7FFF_FFFF_FFFF_FFFFL, rax());
        assertEquals(OF | AF | PF, f.flags());
    }

    @Test void cmpBelowSetsCfAndSignedConditions() {
        f.run("mov ecx, 1\ncmp ecx, 2\nsetb al\nsetl bl\nseta dl\nsetg sil");
        assertEquals(1, rax() & 0xFF);
        assertEquals(1, c.r[Cpu.RBX] & 0xFF);
        assertEquals(0, c.r[Cpu.RDX] & 0xFF);
        assertEquals(0, c.r[Cpu.RSI] & 0xFF);
        assertEquals(CF | SF | AF | PF, f.flags());
    }

    @Test void adcAndSbbUseCarry() {
        f.run("mov rax, -1\nxor edx, edx\nadd rax, 1\nadc rdx, 0");
        assertEquals(0, rax());
        assertEquals(1, c.r[Cpu.RDX]);
        f.run("stc\nmov eax, 0\nsbb eax, 0");
        assertEquals(0xFFFF_FFFFL, rax());
        assertEquals(CF | SF | PF | AF, f.flags());
        f.run("stc\nmov al, 0x7f\nadc al, 0");
        assertEquals(0x80, rax() & 0xFF);
        assertEquals(OF | SF | AF, f.flags());
    }

    @Test void logicClearsCfOf() {
        f.run("stc\nmov eax, 0xf0\nand eax, 0x0f");
        assertEquals(ZF | PF, f.flags());
        f.run("mov rax, 0x8000000000000000\nor rax, 1");
        assertEquals(SF, f.flags());
    }

    @Test void group1ImmediatesSignExtend() {
        f.run("mov rax, 0\nadd rax, -1\nmov rbx, 0x100\nsub bx, 0xff");
        assertEquals(-1L, rax());
        assertEquals(1, c.r[Cpu.RBX]);
        f.run("mov rcx, 0\nor rcx, -0x80000000");
        assertEquals(0xFFFF_FFFF_8000_0000L, c.r[Cpu.RCX]);
    }

    @Test void partialRegisterWritesMergeOrZeroExtend() {
        f.run("mov rax, -1\nmov ax, 5\nmov rbx, -1\nmov ebx, 7\nmov rcx, 0\nmov ch, 0x12\nmov r9, -1\nmov r9b, 0");
        assertEquals(0xFFFF_FFFF_FFFF_0005L, rax());
        assertEquals(7, c.r[Cpu.RBX]);
        assertEquals(0x1200, c.r[Cpu.RCX]);
        assertEquals(0xFFFF_FFFF_FFFF_FF00L, c.r[9]);
    }

    @Test void byteRegistersWithRexAddressSpl() {
        f.run("mov rsi, 0x1234\nmov rax, 0\nmov al, sil");
        assertEquals(0x34, rax());
    }

    @Test void memoryAluFormsReadModifyWrite() {
        c.r[Cpu.RBX] = LongModeFixture.DATA;
        f.run("mov dword ptr [rbx], 10\nadd dword ptr [rbx], 5\nsub byte ptr [rbx+1], 1\nmov eax, 3\nadd [rbx+8], rax\nadd eax, [rbx]");
        assertEquals(0xFF0F, f.mem.readPhys(LongModeFixture.DATA, 4));
        assertEquals(3, f.mem.readPhys(LongModeFixture.DATA + 8, 8));
        assertEquals(0xFF12, rax());
    }

    @Test void lockedMemoryAddWorksAndLockOnRegisterIsUd() {
        c.r[Cpu.RBX] = LongModeFixture.DATA;
        f.run("mov qword ptr [rbx], 41\nlock inc qword ptr [rbx]\nmov ecx, 1\nlock xadd [rbx], ecx");
        assertEquals(43, f.mem.readPhys(LongModeFixture.DATA, 8));
        assertEquals(42, c.r[Cpu.RCX]);
        CpuFault fault = f.step(".byte 0xf0, 0x01, 0xd8") /* lock add eax, ebx */;
        assertNotNull(fault);
        assertEquals(Exceptions.UD, fault.vector);
    }

    @Test void incPreservesCarryDecOverflow() {
        f.run("stc\nmov al, 0xff\ninc al");
        assertEquals(0, rax() & 0xFF);
        assertEquals(CF | ZF | PF | AF, f.flags());
        f.run("clc\nmov eax, 0x80000000\ndec eax");
        assertEquals(0x7FFF_FFFFL, rax());
        assertEquals(OF | AF | PF, f.flags());
    }

    @Test void negAndNot() {
        f.run("mov eax, 0\nneg eax");
        assertEquals(ZF | PF, f.flags());
        f.run("mov al, 0x80\nneg al");
        assertEquals(0x80, rax() & 0xFF);
        assertEquals(CF | OF | SF, f.flags());
        f.run("stc\nmov rax, 0\nnot eax");
        assertEquals(0xFFFF_FFFFL, rax());
        assertEquals(CF, f.flags() & CF); // NOT changes no flags
    }

    @Test void mulAndImulSetCfOfOnWideResults() {
        f.run("mov eax, 0x10000\nmov ecx, 0x10000\nmul ecx");
        assertEquals(0, rax());
        assertEquals(1, c.r[Cpu.RDX]);
        assertEquals(CF | OF, f.flags() & (CF | OF));
        f.run("mov rax, -3\nmov rcx, 5\nimul rcx");
        assertEquals(-15L, rax());
        assertEquals(-1L, c.r[Cpu.RDX]);
        assertEquals(0, f.flags() & (CF | OF));
        f.run("mov rax, -1\nmov rcx, -1\nmul rcx");
        assertEquals(1, rax());
        assertEquals(-2L, c.r[Cpu.RDX]);
        f.run("mov al, 0x80\nmov cl, 2\nimul cl");
        assertEquals(0xFF00, rax() & 0xFFFF); // -256 does not fit AL
        assertEquals(CF | OF, f.flags() & (CF | OF));
        f.run("mov al, 0xc0\nmov cl, 2\nimul cl");
        assertEquals(0xFF80, rax() & 0xFFFF); // -128 fits
        assertEquals(0, f.flags() & (CF | OF));
    }

    @Test void imulTwoAndThreeOperand() {
        f.run("mov rax, 0x100000000\nimul rax, rax");
        assertEquals(0, rax());
        assertEquals(CF | OF, f.flags() & (CF | OF));
        f.run("mov eax, 7\nimul ecx, eax, -2\nimul edx, eax, 1000");
        assertEquals(0xFFFF_FFF2L, c.r[Cpu.RCX]);
        assertEquals(7000, c.r[Cpu.RDX]);
        f.run("mov ax, 0x4000\nimul ax, ax, 2");
        assertEquals(0x8000, rax() & 0xFFFF);
        assertEquals(CF | OF, f.flags() & (CF | OF));
    }

    @Test void divAllSizes() {
        f.run("mov ax, 0x1234\nmov cl, 0x56\ndiv cl");
        assertEquals(0x1036, rax() & 0xFFFF); // 4660 = 54 * 86 + 16
        f.run("mov edx, 1\nmov eax, 0\nmov ecx, 3\ndiv ecx");
        assertEquals(0x55555555L, rax());
        assertEquals(1, c.r[Cpu.RDX]);
        f.run("mov rdx, 1\nmov rax, 0\nmov rcx, 2\ndiv rcx");
        assertEquals(0x8000_0000_0000_0000L, rax());
        assertEquals(0, c.r[Cpu.RDX]);
        f.run("mov rdx, 0x12345\nmov rax, 0x6789abcdef012345\nmov rcx, 0xfedcba987654321\ndiv rcx");
        java.math.BigInteger n = new java.math.BigInteger("123456789abcdef012345", 16);
        java.math.BigInteger[] qr = n.divideAndRemainder(new java.math.BigInteger("fedcba987654321", 16));
        assertEquals(qr[0].longValue(), rax());
        assertEquals(qr[1].longValue(), c.r[Cpu.RDX]);
    }

    @Test void idivTruncatesTowardZero() {
        f.run("mov eax, -7\ncdq\nmov ecx, 2\nidiv ecx");
        assertEquals(0xFFFF_FFFDL, rax());
        assertEquals(0xFFFF_FFFFL, c.r[Cpu.RDX]);
        f.run("mov ax, -7\nmov cl, 2\nidiv cl");
        assertEquals(0xFFFD, rax() & 0xFFFF); // AL = -3, AH = -1
        f.run("mov rdx, -1\nmov rax, 0\nmov rcx, 0x200000000\nidiv rcx");
        assertEquals(0xFFFF_FFFF_8000_0000L, rax());
        assertEquals(0, c.r[Cpu.RDX]);
    }

    @Test void divideErrorsRaiseDeAndChangeNothing() {
        c.r[Cpu.RAX] = 1; c.r[Cpu.RDX] = 0; c.r[Cpu.RCX] = 0;
        assertEquals(Exceptions.DE, f.step("div ecx").vector);
        assertEquals(1, rax());
        assertEquals(LongModeFixture.CODE, c.rip);
        c.r[Cpu.RDX] = 1; c.r[Cpu.RAX] = 0; c.r[Cpu.RCX] = 1;
        assertEquals(Exceptions.DE, f.step("div ecx").vector); // quotient 2^32 overflows
        c.r[Cpu.RAX] = Long.MIN_VALUE; c.r[Cpu.RDX] = -1; c.r[Cpu.RCX] = -1;
        assertEquals(Exceptions.DE, f.step("idiv rcx").vector);
        c.r[Cpu.RAX] = 0; c.r[Cpu.RDX] = 1; c.r[Cpu.RCX] = 2;
        assertEquals(Exceptions.DE, f.step("idiv rcx").vector); // +2^64 / 2 = 2^63 does not fit
        assertEquals(0, rax());
        c.r[Cpu.RAX] = 0x8000; c.r[Cpu.RCX] = 0xFF;
        assertEquals(Exceptions.DE, f.step("idiv cl").vector); // AX = -32768 / -1: +32768 does not fit AL
        assertNull(f.step("idiv rcx")); // RDX:RAX = 2^64 + 0x8000, / 255 fits in 64 bits
        assertEquals(java.math.BigInteger.ONE.shiftLeft(64).add(java.math.BigInteger.valueOf(0x8000))
                .divide(java.math.BigInteger.valueOf(255)).longValueExact(), rax());
    }

    @Test void movzxMovsxMovsxd() {
        f.run("mov ecx, 0x80\nmovsx rax, cl\nmovzx rbx, cl\nmov edx, 0x80000000\nmovsxd rsi, edx\nmov rdi, -1\nmovsx di, cl");
        assertEquals(-128L, rax());
        assertEquals(0x80, c.r[Cpu.RBX]);
        assertEquals(0xFFFF_FFFF_8000_0000L, c.r[Cpu.RSI]);
        assertEquals(0xFFFF_FFFF_FFFF_FF80L, c.r[Cpu.RDI]);
        c.r[Cpu.RBX] = LongModeFixture.DATA;
        f.mem.writePhys(LongModeFixture.DATA, 2, 0xFFFE);
        f.run("movzx eax, word ptr [rbx]\nmovsx rcx, word ptr [rbx]");
        assertEquals(0xFFFE, rax());
        assertEquals(-2L, c.r[Cpu.RCX]);
    }

    @Test void leaTruncatesToOperandAndAddressSize() {
        c.r[Cpu.RBX] = 0xFFFF_FFFF_0000_0010L; c.r[Cpu.RCX] = 2;
        f.run("lea rax, [rbx+rcx*4+8]\nlea edx, [rbx+rcx*4+8]\nlea esi, [ebx-0x20]\nlea di, [rbx+0x12345]");
        assertEquals(0xFFFF_FFFF_0000_0020L, rax());
        assertEquals(0x20, c.r[Cpu.RDX]);
        assertEquals(0xFFFF_FFF0L, c.r[Cpu.RSI]);
        assertEquals(0x2355, c.r[Cpu.RDI] & 0xFFFF);
    }

    @Test void nopKeepsRaxButXchgEaxEaxZeroExtends() {
        f.run("mov rax, -1\nnop\npause");
        assertEquals(-1L, rax());
        f.run("mov rax, -1\n.byte 0x87, 0xc0"); // xchg eax, eax (ModRM form)
        assertEquals(0xFFFF_FFFFL, rax());
        f.run("mov rax, 1\nmov r8, 2\nxchg r8, rax\nmov ecx, 5\nmov edx, 6\nxchg ecx, edx");
        assertEquals(2, rax());
        assertEquals(1, c.r[8]);
        assertEquals(6, c.r[Cpu.RCX]);
        assertEquals(5, c.r[Cpu.RDX]);
    }

    @Test void xchgWithMemory() {
        c.r[Cpu.RBX] = LongModeFixture.DATA;
        f.mem.writePhys(LongModeFixture.DATA, 8, 0x1122334455667788L);
        f.run("mov eax, 0xaabbccdd\nxchg [rbx], eax");
        assertEquals(0x55667788L, rax());
        assertEquals(0x11223344AABBCCDDL, f.mem.readPhys(LongModeFixture.DATA, 8));
    }

    @Test void cmpxchgSuccessAndFailure() {
        f.run("mov rax, 5\nmov rcx, -1\nmov ecx, 5\nmov edx, 9\ncmpxchg ecx, edx");
        assertEquals(9, c.r[Cpu.RCX]);
        assertEquals(ZF, f.flags() & ZF);
        f.run("mov rax, -1\nmov ecx, 5\nmov edx, 9\ncmpxchg ecx, edx");
        assertEquals(5, rax()); // failure loads (zero-extended) destination into EAX
        assertEquals(5, c.r[Cpu.RCX]);
        assertEquals(0, f.flags() & ZF);
        c.r[Cpu.RBX] = LongModeFixture.DATA;
        f.mem.writePhys(LongModeFixture.DATA, 8, 77);
        f.run("mov rax, 77\nmov rdx, 88\nlock cmpxchg [rbx], rdx");
        assertEquals(88, f.mem.readPhys(LongModeFixture.DATA, 8));
        f.run("mov al, 1\nmov dl, 2\ncmpxchg [rbx], dl");
        assertEquals(88, rax() & 0xFF);
        assertEquals(CF | SF | PF | AF, f.flags() & (CF | SF | ZF | PF | AF)); // flags of CMP 1, 88
    }

    @Test void xaddSwapsAndAdds() {
        f.run("mov eax, 3\nmov ecx, 4\nxadd eax, ecx");
        assertEquals(7, rax());
        assertEquals(3, c.r[Cpu.RCX]);
    }

    @Test void bswap() {
        f.run("mov rax, 0x0102030405060708\nbswap rax\nmov rcx, -1\nmov ecx, 0x11223344\nbswap ecx\nmov r10, 0x1122334455667788\nbswap r10");
        assertEquals(0x0807060504030201L, rax());
        assertEquals(0x44332211L, c.r[Cpu.RCX]);
        assertEquals(0x8877665544332211L, c.r[10]);
    }

    @Test void cmpxchg8bAndCmpxchg16bIsUd() {
        c.r[Cpu.RSI] = LongModeFixture.DATA;
        f.mem.writePhys(LongModeFixture.DATA, 8, 0x0000000200000001L);
        f.run("mov eax, 1\nmov edx, 2\nmov ebx, 3\nmov ecx, 4\nlock cmpxchg8b [rsi]");
        assertEquals(0x0000000400000003L, f.mem.readPhys(LongModeFixture.DATA, 8));
        assertEquals(ZF, f.flags() & ZF);
        f.run("mov rax, -1\nmov edx, 0\ncmpxchg8b [rsi]");
        assertEquals(3, rax());
        assertEquals(4, c.r[Cpu.RDX]);
        assertEquals(0, f.flags() & ZF);
        assertEquals(Exceptions.UD, f.step("cmpxchg16b [rsi]").vector);
    }

    @Test void cmov32ZeroExtendsEvenWhenFalse() {
        f.run("mov rax, -1\nmov ecx, 1\ncmp ecx, ecx\ncmovne eax, ecx");
        assertEquals(0xFFFF_FFFFL, rax());
        f.run("mov rax, -1\nmov rcx, 2\ncmp rcx, 3\ncmovb rax, rcx\ncmovl rdx, rcx");
        assertEquals(2, rax());
        assertEquals(2, c.r[Cpu.RDX]);
    }

    @Test void cbwCwdFamily() {
        f.run("mov rax, 0x80\ncbw\nmov rbx, rax\nmov eax, 0x8000\ncwde\nmov rcx, rax\nmov eax, 0x80000000\ncdqe\nmov rsi, rax\ncqo");
        assertEquals(0xFF80, c.r[Cpu.RBX]);
        assertEquals(0xFFFF_8000L, c.r[Cpu.RCX]);
        assertEquals(0xFFFF_FFFF_8000_0000L, c.r[Cpu.RSI]);
        assertEquals(-1L, c.r[Cpu.RDX]);
        f.run("mov rdx, -1\nmov eax, 5\ncdq");
        assertEquals(0, c.r[Cpu.RDX]);
        f.run("mov rdx, -1\nmov ax, 0x8000\ncwd");
        assertEquals(-1L, c.r[Cpu.RDX]);
    }

    @Test void lahfSahfAndCarryFlagOps() {
        f.run("mov eax, 0\nsub eax, 1\nlahf");
        assertEquals(SF | AF | PF | CF | 2, (rax() >>> 8) & 0xFF);
        f.run("mov ah, 0xd5\nsahf\nsetz bl\nsetc cl");
        assertEquals(SF | ZF | AF | PF | CF, f.flags());
        assertEquals(1, c.r[Cpu.RBX] & 0xFF);
        f.run("stc\ncmc\nsetc al\nstc\nsetc bl");
        assertEquals(0, rax() & 0xFF);
        assertEquals(1, c.r[Cpu.RBX] & 0xFF);
        f.run("std");
        assertEquals(DF, c.rflags & DF);
        f.run("cld");
        assertEquals(0, c.rflags & DF);
    }

    @Test void movMoffsAndFsOverride() {
        f.mem.writePhys(LongModeFixture.DATA, 8, 0x1122334455667788L);
        f.run("movabs eax, [0x200000]\nmov rcx, rax\nmov al, 0x99\nmovabs [0x200001], al");
        assertEquals(0x55667788L, c.r[Cpu.RCX]);
        assertEquals(0x1122334455669988L, f.mem.readPhys(LongModeFixture.DATA, 8));
        c.segBase[Cpu.FS] = LongModeFixture.DATA;
        f.run("mov rax, fs:[8]\nmov rbx, qword ptr fs:[0]\nmov rdx, ds:[0x200000]");
        assertEquals(0x1122334455669988L, c.r[Cpu.RBX]);
        assertEquals(0x1122334455669988L, c.r[Cpu.RDX]);
    }

    @Test void xlatIndexesTableByAl() {
        for (int i = 0; i < 256; i++) f.mem.writePhys(LongModeFixture.DATA + i, 1, 255 - i);
        f.run("mov rbx, 0x200000\nmov eax, 0x1203\nxlatb");
        assertEquals(0x12FC, rax());
    }

    @Test void incDecShortFormsOutside64BitModeAndSalc() {
        LongModeFixture.enterProtected32(c);
        f.run("mov eax, 0x7fffffff\ninc eax\nmov ecx, 0\ndec ecx\nstc\n.byte 0xd6");
        assertEquals(0x800000FFL, rax());
        assertEquals(0xFFFF_FFFFL, c.r[Cpu.RCX]);
    }

    @Test void mode16AluAndImmediates() {
        LongModeFixture.enterReal16(c);
        f.run("mov ax, 0xffff\nadd ax, 2\nsetc dl\nmov ebx, 0x12345678\nadd bx, 1");
        assertEquals(1, rax() & 0xFFFF);
        assertEquals(1, c.r[Cpu.RDX] & 0xFF);
        assertEquals(0x12345679L, c.r[Cpu.RBX]);
    }

    @Test void lockIsUdOnNonLockableFormsAndAcceptedOnBitOps() {
        c.r[Cpu.RBX] = LongModeFixture.DATA;
        assertEquals(Exceptions.UD, f.step(".byte 0xf0, 0x39, 0x03").vector); // lock cmp [rbx], eax
        assertEquals(Exceptions.UD, f.step(".byte 0xf0, 0x8b, 0x03").vector); // lock mov eax, [rbx]
        assertNull(f.step("lock btc dword ptr [rbx], 3"));
        assertEquals(8, f.mem.readPhys(LongModeFixture.DATA, 4));
    }

    @Test void faultingWriteOfAdcLeavesMemoryAndCarryUntouched() {
        // Map a read-only 2 MiB page at 0x400000 (PD entry 2 without RW) and enforce WP at CPL 0.
        long pde = LongModeFixture.PML4 + 0x2000 + 8 * 2;
        f.mem.writePhys(pde, 8, 0x400000L | 0xE5);
        c.cr0 |= Cpu.CR0_WP;
        c.mmu.flushAll();
        f.mem.writePhys(0x400000, 4, 0xFFFF_FFFFL);
        f.run("stc");
        c.r[Cpu.RBX] = 0x400000;
        c.r[Cpu.RAX] = 0;
        CpuFault fault = f.step("adc dword ptr [rbx], eax");
        assertEquals(Exceptions.PF, fault.vector);
        assertEquals(0xFFFF_FFFFL, f.mem.readPhys(0x400000, 4));
        assertEquals(CF, f.flags() & CF);
        assertEquals(Exceptions.PF, f.step("shl dword ptr [rbx], 1").vector);
        assertEquals(CF, f.flags() & CF);
    }

    @Test void bcdAdjustInstructionsIn32BitMode() {
        LongModeFixture.enterProtected32(c);
        f.run("mov al, 0x79\nadd al, 0x35\ndaa\nsetc bl");   // 79 + 35 = 114 (BCD)
        assertEquals(0x14, rax() & 0xFF);
        assertEquals(1, c.r[Cpu.RBX] & 0xFF);
        f.run("mov al, 0x35\nsub al, 0x47\ndas\nsetc bl");   // 35 - 47 = -12 -> 88 borrow
        assertEquals(0x88, rax() & 0xFF);
        assertEquals(1, c.r[Cpu.RBX] & 0xFF);
        f.run("mov ax, 0x0009\nadd al, 8\naaa");              // 9 + 8 = 17 unpacked
        assertEquals(0x0107, rax() & 0xFFFF);
        f.run("mov ax, 0x0203\nsub al, 5\naas");              // 23 - 5 = 18 unpacked
        assertEquals(0x0108, rax() & 0xFFFF);
        f.run("mov al, 63\naam");
        assertEquals(0x0603, rax() & 0xFFFF);
        f.run("mov ax, 0x0603\naad");
        assertEquals(63, rax() & 0xFFFF);
        assertEquals(Exceptions.DE, f.step("aam 0").vector);
    }

    /** Values from the host-CPU oracle in compatibility mode (AMD EPYC); they follow SDM Vol. 2 AAA/AAS/DAS. */
    @Test void aaaAndAasCarryOrBorrowThroughAlIntoAh() {
        LongModeFixture.enterProtected32(c);
        f.run("mov ax, 0x00FF\naaa");                         // AX + 106h = 0205h (the carry reaches AH), AL &= 0Fh
        assertEquals(0x0205, rax() & 0xFFFF);
        f.run("mov ax, 0xFFFF\naaa");                         // 10105h wraps to 0105h (host CPU result)
        assertEquals(0x0105, rax() & 0xFFFF);
        assertEquals(CF | AF, f.flags() & (CF | AF));
        f.run("mov ax, 0x0110\nsub al, 0x0F\naas");         // AX=0101h, AF=1: AX - 6 = 00FBh, AH - 1 -> FF0Bh
        assertEquals(0xFF0B, rax() & 0xFFFF);
        assertEquals(CF | AF, f.flags() & (CF | AF));
    }

    @Test void dasKeepsTheBorrowOfTheLowAdjustment() {
        LongModeFixture.enterProtected32(c);
        f.run("mov al, 0x10\nsub al, 0x0F\ndas");           // AL=01h, AF=1, CF=0: 01h - 6 borrows
        assertEquals(0xFB, rax() & 0xFF);
        assertEquals(CF | AF, f.flags() & (CF | AF));
        f.run("mov al, 0x12\nsub al, 0x01\ndas");           // no adjustment at all: CF stays clear
        assertEquals(0x11, rax() & 0xFF);
        assertEquals(0, f.flags() & (CF | AF));
    }
}
