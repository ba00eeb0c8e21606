package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuFault;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.LongModeFixture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.cpu.Flags.*;
import static org.junit.jupiter.api.Assertions.*;

class StringOpsTest {
    static final long DATA = LongModeFixture.DATA;
    final LongModeFixture f = new LongModeFixture();
    final Cpu c = f.cpu;

    @AfterEach void close() { f.close(); }

    private void fillPattern(long pa, int len) {
        byte[] b = new byte[len];
        for (int i = 0; i < len; i++) b[i] = (byte) (i * 7 + (i >> 8));
        f.mem.load(pa, b);
    }

    @Test void repMovsbLargerThanOneChunkCompletesAcrossPages() {
        int len = 0x50123;
        fillPattern(DATA + 3, len);
        f.run("mov rsi, 0x200003\nmov rdi, 0x380001\nmov rcx, " + len + "\ncld\nrep movsb\nmov eax, 1");
        assertArrayEquals(f.mem.readBytes(DATA + 3, len), f.mem.readBytes(0x380001, len));
        assertEquals(0, c.r[Cpu.RCX]);
        assertEquals(DATA + 3 + len, c.r[Cpu.RSI]);
        assertEquals(0x380001L + len, c.r[Cpu.RDI]);
        assertEquals(1, c.r[Cpu.RAX]); // execution continued after the REP
    }

    @Test void repMovsqAndStosdAllSizes() {
        fillPattern(DATA, 0x3000);
        f.run("mov rsi, 0x200000\nmov rdi, 0x300000\nmov ecx, 0x600\nrep movsq");
        assertArrayEquals(f.mem.readBytes(DATA, 0x3000), f.mem.readBytes(0x300000, 0x3000));
        f.run("mov rdi, 0x300ffe\nmov eax, 0xdeadbeef\nmov ecx, 3\nrep stosd"); // straddles a page
        assertEquals(0xDEADBEEFL, f.mem.readPhys(0x300ffe, 4));
        assertEquals(0xDEADBEEFL, f.mem.readPhys(0x301002, 4));
        assertEquals(0xDEADBEEFL, f.mem.readPhys(0x301006, 4));
        f.run("mov rdi, 0x302000\nmov ax, 0x1234\nmov ecx, 5000\nrep stosw");
        for (int i = 0; i < 5000; i += 999) assertEquals(0x1234, f.mem.readPhys(0x302000 + 2L * i, 2));
        assertEquals(0, f.mem.readPhys(0x302000 + 10000, 2));
    }

    @Test void overlappingForwardMovsbReplicatesLikeTheByteLoop() {
        f.mem.load(DATA, new byte[] {1, 2, 3});
        f.run("mov rsi, 0x200000\nmov rdi, 0x200003\nmov ecx, 30\nrep movsb");
        byte[] b = f.mem.readBytes(DATA, 33);
        for (int i = 0; i < 33; i++) assertEquals(i % 3 + 1, b[i], "byte " + i);
        // Overlap closer than an element: each dword is read whole, then written.
        byte[] m = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
        f.mem.load(DATA, m);
        f.run("mov rsi, 0x200000\nmov rdi, 0x200002\nmov ecx, 4\nrep movsd");
        for (int i = 0; i < 4; i++) System.arraycopy(m.clone(), 4 * i, m, 4 * i + 2, 4);
        assertArrayEquals(m, f.mem.readBytes(DATA, m.length));
    }

    @Test void backwardMovsWithDirectionFlag() {
        f.mem.load(DATA, new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
        f.run("std\nmov rsi, 0x200006\nmov rdi, 0x200007\nmov ecx, 7\nrep movsb\ncld");
        assertArrayEquals(new byte[] {1, 1, 2, 3, 4, 5, 6, 7}, f.mem.readBytes(DATA, 8));
        assertEquals(DATA - 1, c.r[Cpu.RSI]);
        assertEquals(DATA, c.r[Cpu.RDI]);
    }

    @Test void repeCmpsbStopsAtFirstDifference() {
        f.mem.load(DATA, "hello world".getBytes());
        f.mem.load(DATA + 0x100, "hello there".getBytes());
        f.run("mov rsi, 0x200000\nmov rdi, 0x200100\nmov ecx, 11\nrepe cmpsb");
        assertEquals(11 - 7, c.r[Cpu.RCX]); // stopped after comparing 'w' with 't'
        assertEquals(DATA + 7, c.r[Cpu.RSI]);
        assertEquals(0, f.flags() & ZF);
        assertEquals(0, f.flags() & CF); // 'w' (0x77) - 't' (0x74): no borrow
    }

    @Test void repneScasbFindsTerminator() {
        f.mem.load(DATA, "abcdef\0".getBytes());
        f.run("mov rdi, 0x200000\nxor eax, eax\nmov rcx, -1\nrepne scasb\nsetz dl\nnot rcx\ndec rcx");
        assertEquals(6, c.r[Cpu.RCX]); // the strlen idiom
        assertEquals(1, c.r[Cpu.RDX] & 0xFF);
        assertEquals(DATA + 7, c.r[Cpu.RDI]);
    }

    @Test void lodsAndSegmentOverrideOnSource() {
        f.mem.writePhys(DATA + 0x10, 8, 0x1122334455667788L);
        c.segBase[Cpu.FS] = DATA;
        f.run("mov rsi, 0x10\nlods rax, qword ptr fs:[rsi]");
        assertEquals(0x1122334455667788L, c.r[Cpu.RAX]);
        assertEquals(0x18, c.r[Cpu.RSI]);
    }

    @Test void addressSize32UsesEsiEdiEcxAndZeroExtends() {
        fillPattern(DATA, 16);
        c.r[Cpu.RCX] = 0xFFFF_FFFF_0000_0004L;
        c.r[Cpu.RSI] = 0xAAAA_AAAA_0000_0000L | DATA;
        c.r[Cpu.RDI] = 0xBBBB_BBBB_0000_0000L | 0x300000;
        f.run(".byte 0x67, 0xf3, 0xa4"); // addr32 rep movsb
        assertArrayEquals(f.mem.readBytes(DATA, 4), f.mem.readBytes(0x300000, 4));
        assertEquals(0, c.r[Cpu.RCX]);
        assertEquals(DATA + 4, c.r[Cpu.RSI]);
        assertEquals(0x300004, c.r[Cpu.RDI]);
    }

    @Test void faultMidwayLeavesRegistersDescribingBytesDone() {
        // Make the 2 MiB page at 0x600000 not present, then copy 200 bytes ending 100 bytes into it.
        long pde = LongModeFixture.PML4 + 0x2000 + 8 * 3;
        f.mem.writePhys(pde, 8, 0);
        c.mmu.flushAll();
        fillPattern(DATA, 200);
        c.r[Cpu.RSI] = DATA;
        c.r[Cpu.RDI] = 0x600000 - 100;
        c.r[Cpu.RCX] = 200;
        CpuFault fault = f.step("rep movsb");
        assertNotNull(fault);
        assertEquals(Exceptions.PF, fault.vector);
        assertEquals(0x600000, c.cr2);
        assertEquals(100, c.r[Cpu.RCX]);
        assertEquals(DATA + 100, c.r[Cpu.RSI]);
        assertEquals(0x600000, c.r[Cpu.RDI]);
        assertArrayEquals(f.mem.readBytes(DATA, 100), f.mem.readBytes(0x600000 - 100, 100));
        assertEquals(LongModeFixture.CODE, c.rip);
    }

    @Test void realModeStringOpsUse16BitRegistersAndSegments() {
        LongModeFixture.enterReal16(c);
        c.setRealSegment(Cpu.DS, 0x2000);
        c.setRealSegment(Cpu.ES, 0x3000);
        f.mem.load(0x20010, "XYZ".getBytes());
        c.r[Cpu.RSI] = 0x7777_0010L;
        c.r[Cpu.RDI] = 0x20;
        c.r[Cpu.RCX] = 0x5555_0003L;
        f.run("rep movsb");
        assertArrayEquals("XYZ".getBytes(), f.mem.readBytes(0x30020, 3));
        assertEquals(0x5555_0000L, c.r[Cpu.RCX]);
        assertEquals(0x7777_0013L, c.r[Cpu.RSI]);
    }

    @Test void elementPathRunsInChunksAndResumes() {
        // Longer than one element-path chunk: REPE CMPSB over equal buffers and a backward REP STOSW.
        int n = StringOps.CHUNK_ELEMENTS * 2 + 123;
        fillPattern(DATA, n);
        fillPattern(0x300000, n);
        f.run("mov rsi, 0x200000\nmov rdi, 0x300000\nmov ecx, " + n + "\nrepe cmpsb\nsetz bl");
        assertEquals(0, c.r[Cpu.RCX]);
        assertEquals(1, c.r[Cpu.RBX] & 0xFF);
        assertEquals(DATA + n, c.r[Cpu.RSI]);
        f.run("std\nmov rdi, " + (0x400000 + 2L * (n - 1)) + "\nmov eax, 0xbeef\nmov ecx, " + n + "\nrep stosw\ncld");
        assertEquals(0, c.r[Cpu.RCX]);
        assertEquals(0x400000 - 2, c.r[Cpu.RDI]);
        assertEquals(0xBEEF, f.mem.readPhys(0x400000, 2));
        assertEquals(0xBEEF, f.mem.readPhys(0x400000 + 2L * (n - 1), 2));
        assertEquals(0, f.mem.readPhys(0x400000 + 2L * n, 2));
    }
}
