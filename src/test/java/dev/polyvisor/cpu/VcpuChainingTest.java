package dev.polyvisor.cpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The run loop reaches the next trace through chain slots and a jump cache keyed by linear address;
 * those must be dropped when the linear-to-physical mapping changes (INVLPG, CR3 write), as a real
 * CPU's TLB is.
 */
class VcpuChainingTest {
    private static final long PD2 = 0x5000, FUNC = 0x4000_0000L, FRAME_A = 0x40_0000, FRAME_B = 0x60_0000;

    /** Maps linear 1 GiB with one 2 MiB page onto FRAME_A; FRAME_A returns 1 in EAX, FRAME_B returns 2. */
    private static LongModeFixture fixture() {
        LongModeFixture f = new LongModeFixture();
        f.mem.writePhys(LongModeFixture.PML4 + 0x1000 + 8, 8, PD2 | 0x7);  // PDPT[1] -> PD2
        f.mem.writePhys(PD2, 8, FRAME_A | 0xE7);                           // 2 MiB page, P RW US A D PS
        f.mem.load(FRAME_A, Asm.assemble(64, "mov eax, 1\nret"));
        f.mem.load(FRAME_B, Asm.assemble(64, "mov eax, 2\nret"));
        return f;
    }

    @Test
    void aCallAfterInvlpgRunsTheNewlyMappedCode() {
        LongModeFixture f = fixture();
        Cpu c = f.run("""
                mov rbx, 0x40000000
                call rbx
                mov r8, rax
                mov rdx, 0x%x
                mov qword ptr [rdx], 0x%x
                invlpg [rbx]
                call rbx
                mov r9, rax
                """.formatted(PD2, FRAME_B | 0xE7));
        assertEquals(1, c.r[8]);
        assertEquals(2, c.r[9]);
    }

    @Test
    void aCallAfterACr3ReloadRunsTheNewlyMappedCode() {
        LongModeFixture f = fixture();
        Cpu c = f.run("""
                mov rbx, 0x40000000
                mov rcx, 3
                again:
                call rbx
                add r8, rax
                dec rcx
                jnz again
                mov rdx, 0x%x
                mov qword ptr [rdx], 0x%x
                mov rax, cr3
                mov cr3, rax
                call rbx
                mov r9, rax
                """.formatted(PD2, FRAME_B | 0xE7));
        assertEquals(3, c.r[8]);
        assertEquals(2, c.r[9]);
        assertEquals(FUNC, c.r[Cpu.RBX]);
    }
}
