package dev.polyvisor.cpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Traces that collide in the trace cache's table replace each other; the one replaced is dropped for
 * good (and invalidated), so the decoded code a VM holds is bounded by the table however long the guest
 * runs, while writes to code still reach every trace that can run.
 */
class TraceCacheBoundTest {
    /** Two functions whose physical addresses hash to the same table slot (pa ^ pa >>> 16: 0x30003 and 0x40004 both give 0). */
    private static final long F1 = 0x30003, F2 = 0x40004;

    @Test
    void collidingTracesDoNotAccumulateInThePageLists() {
        try (LongModeFixture f = new LongModeFixture()) {
            f.mem.load(F1, Asm.assemble(64, "add r8, 1\nret"));
            f.mem.load(F2, Asm.assemble(64, "add r9, 2\nret"));
            Cpu c = f.run("""
                    mov rcx, 1000
                    again:
                    mov rax, 0x%x
                    call rax
                    mov rax, 0x%x
                    call rax
                    dec rcx
                    jnz again
                    """.formatted(F1, F2));
            assertEquals(1000, c.r[8]);
            assertEquals(2000, c.r[9]);
            assertTrue(f.traces.evictedTraces >= 1998, "each call re-decodes the other function: " + f.traces.evictedTraces);
            assertTrue(f.traces.registeredTraces() < 20, "traces listed: " + f.traces.registeredTraces());
        }
    }

    @Test
    void aWriteToCodeStillReachesTheTraceThatHoldsTheSlot() {
        try (LongModeFixture f = new LongModeFixture()) {
            f.mem.load(F1, Asm.assemble(64, "mov eax, 1\nret"));
            f.mem.load(F2, Asm.assemble(64, "mov eax, 2\nret"));
            // Patch F2's immediate (mov eax, imm32 is B8 imm32: the byte after the opcode) after both ran.
            Cpu c = f.run("""
                    mov rbx, 0x%x
                    call rbx
                    mov r8, rax
                    mov rbx, 0x%x
                    call rbx
                    mov r9, rax
                    mov byte ptr [rbx + 1], 7
                    call rbx
                    mov r10, rax
                    mov rbx, 0x%x
                    call rbx
                    mov r11, rax
                    """.formatted(F1, F2, F1));
            assertEquals(1, c.r[8]);
            assertEquals(2, c.r[9]);
            assertEquals(7, c.r[10]);
            assertEquals(1, c.r[11]);
        }
    }
}
