package dev.polyvisor.cpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Traces that collide in the trace cache's table (more than its two ways of a set) replace each other; the
 * one replaced is dropped for good (and invalidated), so the decoded code a VM holds is bounded by the table
 * however long the guest runs, while writes to code still reach every trace that can run.
 */
class TraceCacheBoundTest {
    /** Three function addresses in one set of the table, for 64-bit code (found by search, 16-byte aligned). */
    private static long[] collidingFunctions(Cpu c) {
        java.util.Map<Integer, java.util.List<Long>> bySet = new java.util.HashMap<>();
        for (long a = 0x30_0000; a < 0x70_0000; a += 16) {
            var l = bySet.computeIfAbsent(TraceCache.setOf(a, c.decodeMode()), k -> new java.util.ArrayList<>());
            l.add(a);
            if (l.size() == 3) return new long[] {l.get(0), l.get(1), l.get(2)};
        }
        throw new AssertionError("no three addresses share a set");
    }

    @Test
    void collidingTracesDoNotAccumulateInThePageLists() {
        try (LongModeFixture f = new LongModeFixture()) {
            long[] fn = collidingFunctions(f.cpu);
            f.mem.load(fn[0], Asm.assemble(64, "add r8, 1\nret"));
            f.mem.load(fn[1], Asm.assemble(64, "add r9, 2\nret"));
            f.mem.load(fn[2], Asm.assemble(64, "add r10, 3\nret"));
            Cpu c = f.run("""
                    mov rcx, 1000
                    again:
                    mov rax, 0x%x
                    call rax
                    mov rax, 0x%x
                    call rax
                    mov rax, 0x%x
                    call rax
                    dec rcx
                    jnz again
                    """.formatted(fn[0], fn[1], fn[2]));
            assertEquals(1000, c.r[8]);
            assertEquals(2000, c.r[9]);
            assertEquals(3000, c.r[10]);
            assertTrue(f.traces.evictedTraces >= 2997, "each call re-decodes the function two calls back: " + f.traces.evictedTraces);
            assertTrue(f.traces.registeredTraces() < 20, "traces listed: " + f.traces.registeredTraces());
        }
    }

    @Test
    void twoTracesOfOneSetBothStay() {
        try (LongModeFixture f = new LongModeFixture()) {
            long[] fn = collidingFunctions(f.cpu);
            f.mem.load(fn[0], Asm.assemble(64, "add r8, 1\nret"));
            f.mem.load(fn[1], Asm.assemble(64, "add r9, 2\nret"));
            Cpu c = f.run("""
                    mov rcx, 1000
                    again:
                    mov rax, 0x%x
                    call rax
                    mov rax, 0x%x
                    call rax
                    dec rcx
                    jnz again
                    """.formatted(fn[0], fn[1]));
            assertEquals(2000, c.r[9]);
            assertEquals(0, f.traces.evictedTraces, "two ways hold both");
        }
    }

    @Test
    void aWriteToCodeStillReachesTheTraceThatHoldsTheSlot() {
        try (LongModeFixture f = new LongModeFixture()) {
            long[] fn = collidingFunctions(f.cpu);
            f.mem.load(fn[0], Asm.assemble(64, "mov eax, 1\nret"));
            f.mem.load(fn[1], Asm.assemble(64, "mov eax, 2\nret"));
            f.mem.load(fn[2], Asm.assemble(64, "mov eax, 3\nret"));
            // Patch fn[2]'s immediate (mov eax, imm32 is B8 imm32: the byte after the opcode) after all three ran.
            Cpu c = f.run("""
                    mov rbx, 0x%x
                    call rbx
                    mov rbx, 0x%x
                    call rbx
                    mov rbx, 0x%x
                    call rbx
                    mov r9, rax
                    mov byte ptr [rbx + 1], 7
                    call rbx
                    mov r10, rax
                    mov rbx, 0x%x
                    call rbx
                    mov r11, rax
                    """.formatted(fn[0], fn[1], fn[2], fn[0]));
            assertEquals(3, c.r[9]);
            assertEquals(7, c.r[10]);
            assertEquals(1, c.r[11]);
        }
    }
}
