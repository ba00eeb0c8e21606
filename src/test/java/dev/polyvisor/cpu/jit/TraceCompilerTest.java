package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Asm;
import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuFault;
import dev.polyvisor.cpu.Exceptions;
import dev.polyvisor.cpu.LongModeFixture;
import dev.polyvisor.cpu.Trace;
import org.junit.jupiter.api.Test;

import java.util.function.Consumer;

import static dev.polyvisor.cpu.LongModeFixture.CODE;
import static dev.polyvisor.cpu.LongModeFixture.DATA;
import static org.junit.jupiter.api.Assertions.*;

/**
 * A compiled trace leaves exactly the state the interpreter leaves: two identical 64-bit machines run
 * the same trace, one through the interpreter's loop ({@link InterpretedRun}), the other through the
 * compiled class, with and without the inline forms; registers, RIP, lazy flags, retired count, fault,
 * system state and all of RAM must be equal. Each case also asserts what the sequence itself must do.
 */
class TraceCompilerTest {
    /** The outcome of one run: the state after it and the fault (vector -1: none). */
    record Result(Cpu cpu, LongModeFixture machine, int vector, int errorCode) {}

    private static Result run(String asm, Consumer<Cpu> setup, boolean compiled, boolean inline) throws Throwable {
        LongModeFixture m = new LongModeFixture(3L << 20); // code, stack and DATA: all below 3 MiB
        m.mem.load(CODE, Asm.assemble(64, asm));
        Cpu c = m.cpu;
        c.rip = CODE;
        setup.accept(c);
        Trace t = m.traces.lookup(c, CODE, CODE);
        // Compiled as the Jit compiles, with guest RAM as the class's constant (the oracle covers the form without it).
        CompiledTrace how = compiled ? new TraceCompiler(inline).compile(t, java.util.List.of(), c.mmu.compiledRam()) : InterpretedRun.INSTANCE;
        try {
            how.run(c, t);
            return new Result(c, m, -1, -1);
        } catch (CpuFault f) {
            return new Result(c, m, f.vector, f.errorCode);
        }
    }

    /** Runs the sequence interpreted and compiled (both ways), asserts equal outcomes, returns the interpreter's. */
    private static Result sameAsInterpreter(String asm, Consumer<Cpu> setup) throws Throwable {
        return sameAsInterpreter(asm, setup, new boolean[] {false, true});
    }

    private static Result sameAsInterpreter(String asm, Consumer<Cpu> setup, boolean[] inlineModes) throws Throwable {
        Result ref = run(asm, setup, false, false);
        for (boolean inline : inlineModes) {
            Result got = run(asm, setup, true, inline);
            try (LongModeFixture unused = got.machine) {
            String what = (inline ? "inline forms" : "handler calls") + ": ";
            assertEquals(ref.vector, got.vector, what + "fault vector");
            assertEquals(ref.errorCode, got.errorCode, what + "fault error code");
            CpuSnapshot a = CpuSnapshot.of(ref.cpu), b = CpuSnapshot.of(got.cpu);
            assertEquals(java.util.List.of(), a.userDifferences(b), what + "registers, flags, RIP, retired count");
            assertTrue(a.sameArchitecturalSystem(b), what + "system state");
            assertEquals(-1, ref.machine.mem.ram.mismatch(got.machine.mem.ram), what + "RAM");
            assertEquals(ref.cpu.getRflags(), got.cpu.getRflags(), what + "RFLAGS");
            }
        }
        return ref;
    }

    private static long addressOf(String asmBefore) { return CODE + Asm.assemble(64, asmBefore).length; }

    /** LoadLoad fences between instructions for an SMP VM only: counted in the generated run method. */
    @Test
    void loadOrderingFencesSitBetweenInstructionsOnlyWhenVcpusShareMemory() throws Throwable {
        try (LongModeFixture m = new LongModeFixture(3L << 20)) {
            m.mem.load(CODE, Asm.assemble(64, "mov rax, [rbx]\nmov rcx, [rbx+8]\nadd rax, rcx\nhlt"));
            m.cpu.rip = CODE;
            Trace t = m.traces.lookup(m.cpu, CODE, CODE);
            int n = t.insns().length;
            assertTrue(n >= 3, "the loads and the add form one trace");
            assertEquals(n - 1, fences(new TraceCompiler(true, true).generate(t.insns())), "one per instruction boundary");
            assertEquals(0, fences(new TraceCompiler(true, false).generate(t.insns())), "a single vCPU has no other observer");
        }
    }

    /** A region compiled with guest RAM passes that constant to every Mmu access; one compiled without it, none. */
    @Test
    void compiledAccessesTakeGuestRamAsTheClassConstant() throws Throwable {
        try (LongModeFixture m = new LongModeFixture(3L << 20)) {
            m.mem.load(CODE, Asm.assemble(64, "mov rax, [rbx]\nmov [rbx+8], rax\npush rax\npop rcx\nmov dword ptr [rbx+16], 7\nhlt"));
            m.cpu.rip = CODE;
            Trace t = m.traces.lookup(m.cpu, CODE, CODE);
            String segment = "Ljava/lang/foreign/MemorySegment;";
            byte[] with = new TraceCompiler(true).generate(java.util.List.of(new TraceCompiler.Block(t.insns(), 0, null)), true);
            byte[] without = new TraceCompiler(true).generate(t.insns());
            assertEquals(5, mmuAccesses(with, "(" + segment), "the load, the store, PUSH, POP and the immediate store");
            assertEquals(0, mmuAccesses(with, "(J"), "no access without the segment");
            assertEquals(0, mmuAccesses(without, "(" + segment));
            assertEquals(5, mmuAccesses(without, "(J"));
        }
    }

    /** Calls of Mmu's read and write methods whose descriptor starts with {@code descriptorPrefix}. */
    private static long mmuAccesses(byte[] classBytes, String descriptorPrefix) {
        return runInvokes(classBytes).filter(inv -> inv.owner().asInternalName().equals("dev/polyvisor/cpu/mmu/Mmu")
                        && (inv.name().stringValue().startsWith("read") || inv.name().stringValue().startsWith("write"))
                        && inv.type().stringValue().startsWith(descriptorPrefix))
                .count();
    }

    private static long fences(byte[] classBytes) {
        return runInvokes(classBytes).filter(inv -> inv.name().equalsString("loadLoadFence")
                        && inv.owner().asInternalName().equals("java/lang/invoke/VarHandle"))
                .count();
    }

    /** The method calls in the generated class's run methods. */
    private static java.util.stream.Stream<java.lang.classfile.instruction.InvokeInstruction> runInvokes(byte[] classBytes) {
        var cls = java.lang.classfile.ClassFile.of().parse(classBytes);
        return cls.methods().stream().filter(mm -> mm.methodName().equalsString("run"))
                .flatMap(mm -> mm.code().orElseThrow().elementStream())
                .mapMulti((e, out) -> { if (e instanceof java.lang.classfile.instruction.InvokeInstruction inv) out.accept(inv); });
    }

    @Test
    void registerAluAndMoveFormsOf32And64BitsMatchTheInterpreter() throws Throwable {
        String asm = """
                mov rax, 0x123456789
                add rax, rbx
                sub ecx, eax
                xor edx, 0x55
                and r8, r9
                or r10d, 7
                mov r12, rax
                mov r13d, -1
                add r14d, r15d
                cmp rax, rcx
                test r11, r11
                ret
                """;
        Result r = sameAsInterpreter(asm, c -> {
            for (int i = 0; i < 16; i++) c.r[i] = 0xF0E1_D2C3_B4A5_9687L * (i + 1);
            c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
        });
        assertEquals(-1, r.vector);
        assertEquals(12, r.cpu.instructionsRetired);
        assertEquals(0xFFFF_FFFFL, r.cpu.r[13], "a 32-bit MOV zero-extends");
        assertEquals(0, r.cpu.r[14] >>> 32, "a 32-bit ADD zero-extends");
    }

    @Test
    void loadsStoresStackAndReadModifyWriteMatchTheInterpreter() throws Throwable {
        String asm = """
                mov [rsp-8], rax
                push rbx
                pop rcx
                mov rdx, [rsp-16]
                lea rsi, [rax+rbx*4+16]
                add [rdi], eax
                movzx eax, byte ptr [rdi+1]
                mov qword ptr [rdi+8], 0x7f
                shl rdx, 3
                ret
                """;
        Result r = sameAsInterpreter(asm, c -> {
            c.r[Cpu.RAX] = 0x1122_3344_5566_7788L;
            c.r[Cpu.RBX] = 0x99;
            c.r[Cpu.RDI] = DATA;
            c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
        });
        assertEquals(-1, r.vector);
        assertEquals(0x99, r.cpu.r[Cpu.RCX]);
        assertEquals(0x5566_7788L, r.machine.mem.readPhys(DATA, 4));
    }

    @Test
    void aTakenConditionalBranchLeavesTheTraceAfterItAndANotTakenOneContinues() throws Throwable {
        String asm = """
                cmp rax, rbx
                jl 1f
                mov rcx, 1
                1: mov rdx, 2
                ret
                """;
        Result taken = sameAsInterpreter(asm, c -> { c.r[Cpu.RAX] = -5; c.r[Cpu.RBX] = 3; c.r[Cpu.RSP] = LongModeFixture.STACK_TOP; });
        assertEquals(2, taken.cpu.instructionsRetired);
        assertEquals(addressOf("cmp rax, rbx\njl 1f\nmov rcx, 1\n1:"), taken.cpu.rip);
        Result notTaken = sameAsInterpreter(asm, c -> { c.r[Cpu.RAX] = 5; c.r[Cpu.RBX] = 3; c.r[Cpu.RSP] = LongModeFixture.STACK_TOP; });
        assertEquals(5, notTaken.cpu.instructionsRetired);
        assertEquals(1, notTaken.cpu.r[Cpu.RCX]);
    }

    private static final String[] JCC = {"jo", "jno", "jb", "jae", "je", "jne", "jbe", "ja", "js", "jns", "jp", "jnp", "jl", "jge", "jle", "jg"};

    @Test
    void everyConditionAfterEveryInlineAluKindAndSizeBranchesAsTheInterpreterDoes() throws Throwable {
        long[] values = {0, -1, 0x8000_0000L};
        String[][] ops = {{"cmp rax, rbx", "cmp eax, ebx"}, {"sub rax, rbx", "sub eax, ebx"}, {"test rax, rbx", "test eax, ebx"},
                {"and rax, rbx", "and eax, ebx"}, {"xor rax, rbx", "xor eax, ebx"}, {"add rax, rbx", "add eax, ebx"},
                {"cmp rax, 5", "cmp eax, 5"}, {"or rax, 0", "or eax, 0"}};
        int taken = 0, notTaken = 0;
        for (String[] op : ops)
            for (String form : op)
                for (String jcc : JCC)
                    for (int k = 0; k < values.length; k++) {
                        long a = values[k], b = values[(k + 1) % values.length];
                        // a MOV between the flag setter and the Jcc keeps the inline condition test
                        String asm = form + "\nmov rdx, 7\n" + jcc + " 1f\nmov rcx, 1\n1: ret\n";
                        Result r = sameAsInterpreter(asm, c -> { c.r[Cpu.RAX] = a; c.r[Cpu.RBX] = b; c.r[Cpu.RSP] = LongModeFixture.STACK_TOP; },
                                new boolean[] {true});
                        r.machine.close();
                        if (r.cpu.instructionsRetired == 3) taken++; else notTaken++;
                    }
        assertTrue(taken > 20 && notTaken > 20, "both outcomes covered: " + taken + " taken, " + notTaken + " not taken");
    }

    @Test
    void aPageFaultInTheMiddleIsPreciseTheFaultingInstructionsRipAndTheRetiredCountBeforeIt() throws Throwable {
        String before = "mov rax, 1\nadd rbx, rax\n";
        Result r = sameAsInterpreter(before + "mov rcx, [rdx]\nmov rsi, 5\nret\n", c -> {
            c.r[Cpu.RDX] = 0x40_0000_0000L; // beyond the fixture's 1 GiB identity map: not present
            c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
        });
        assertEquals(Exceptions.PF, r.vector);
        assertEquals(addressOf(before), r.cpu.rip);
        assertEquals(2, r.cpu.instructionsRetired);
        assertEquals(1, r.cpu.r[Cpu.RBX], "the instructions before the fault completed");
        assertEquals(0x40_0000_0000L, r.cpu.cr2);
    }

    @Test
    void readOnlyFormsNeedNoExitCheckAndAFaultingLoadAfterThemIsStillPrecise() throws Throwable {
        String reads = """
                mov rax, [rdi]
                mov ecx, [rdi+8]
                movzx edx, word ptr [rdi+2]
                add rax, [rdi+16]
                cmp dword ptr [rdi], 5
                test [rdi+8], rcx
                lea rsi, [rax+rcx*2]
                shr rsi, 2
                """;
        for (String line : reads.strip().split("\n")) {
            Trace t = decoded(line + "\nret\n");
            assertTrue(dev.polyvisor.cpu.exec.JitForms.readsOnly(t.insns()[0]), line + " counts as read-only");
        }
        assertFalse(dev.polyvisor.cpu.exec.JitForms.readsOnly(decoded("mov [rdi], rax\nret\n").insns()[0]), "a store is not");
        assertFalse(dev.polyvisor.cpu.exec.JitForms.readsOnly(decoded("add [rdi], eax\nret\n").insns()[0]), "nor a read-modify-write");
        java.util.function.Consumer<Cpu> setup = c -> {
            c.r[Cpu.RDI] = DATA;
            c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
            c.r[Cpu.RBX] = 0x40_0000_0000L; // not present
        };
        Result ok = sameAsInterpreter(reads + "ret\n", setup);
        assertEquals(-1, ok.vector);
        assertEquals(9, ok.cpu.instructionsRetired);
        Result pf = sameAsInterpreter(reads + "mov r8, [rbx]\nmov r9, 1\nret\n", setup);
        assertEquals(Exceptions.PF, pf.vector);
        assertEquals(8, pf.cpu.instructionsRetired, "every read before the faulting load retired");
        assertEquals(addressOf(reads), pf.cpu.rip);
    }

    /** The trace decoded from {@code asm} (its handlers outlive the machine, which is closed). */
    private static Trace decoded(String asm) {
        try (LongModeFixture m = new LongModeFixture()) {
            m.mem.load(CODE, Asm.assemble(64, asm));
            return m.traces.lookup(m.cpu, CODE, CODE);
        }
    }

    @Test
    void generalProtectionAndDivideErrorsAreDeliveredAtTheirInstruction() throws Throwable {
        Result gp = sameAsInterpreter("xor eax, eax\nmov rcx, [rdx]\nret\n", c -> {
            c.r[Cpu.RDX] = 0x8000_0000_0000_0000L; // non-canonical
            c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
        });
        assertEquals(Exceptions.GP, gp.vector);
        assertEquals(1, gp.cpu.instructionsRetired);
        Result de = sameAsInterpreter("add eax, 3\nsub rdx, rdx\ndiv rcx\nmov rbx, 1\nret\n", c -> c.r[Cpu.RCX] = 0);
        assertEquals(Exceptions.DE, de.vector);
        assertEquals(addressOf("add eax, 3\nsub rdx, rdx\n"), de.cpu.rip);
        assertEquals(2, de.cpu.instructionsRetired);
    }

    @Test
    void aStoreIntoTheTracesOwnCodeEndsTheTraceAfterTheStore() throws Throwable {
        String asm = """
                mov eax, 1
                mov byte ptr [rip+1f], 0x90
                add eax, 1
                1: add eax, 2
                ret
                """;
        Result r = sameAsInterpreter(asm, c -> c.r[Cpu.RSP] = LongModeFixture.STACK_TOP);
        assertEquals(2, r.cpu.instructionsRetired, "the write invalidates the trace: the loop stops after it");
        assertEquals(1, r.cpu.r[Cpu.RAX]);
        assertEquals(addressOf("mov eax, 1\nmov byte ptr [rip+1f], 0x90\n1:"), r.cpu.rip);
    }
    @Test
    void inlineShiftsZeroExtensionsAndAFollowedJumpMatchTheInterpreter() throws Throwable {
        String asm = """
                shl rax, 5
                shr ebx, 31
                sar rcx, 63
                sar edx, 7
                shl esi, 1
                movzx edi, al
                movzx ebp, bh
                movzx r9, cx
                jmp 1f
                mov r10, 1
                1: mov r11, 2
                ret
                """;
        Result r = sameAsInterpreter(asm, c -> {
            for (int i = 0; i < 16; i++) c.r[i] = 0x8765_4321_FEDC_BA98L * (i + 3);
            c.r[Cpu.RCX] = 0xF000_0000_0000_1234L; // SAR of a negative value: all ones
            c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
        });
        assertEquals(-1, r.vector);
        assertEquals(-1L, r.cpu.r[Cpu.RCX]);
        assertEquals(11, r.cpu.instructionsRetired, "the trace follows the JMP to its target in the same page, up to the RET");
        assertEquals(2, r.cpu.r[11]);
        assertNotEquals(1, r.cpu.r[10], "the instruction jumped over did not run");
    }

    /**
     * INC/DEC/NOT/NEG on 32/64-bit registers and NOPs are emitted inline: INC and DEC keep CF from the operation
     * before (here a CMP that borrows, read through the lazy record in the Cpu), NEG records a subtraction from 0,
     * NOT changes no flag, so the JB after it still sees the CMP's borrow; registers, RFLAGS and the lazy record
     * are compared with the interpreter's.
     */
    @Test
    void inlineIncDecNotNegAndNopsMatchTheInterpreter() throws Throwable {
        String asm = """
                neg rdi
                neg r9d
                inc r10
                dec r11d
                not r12
                cmp eax, ebx
                inc ecx
                nop
                dec rdx
                nop dword ptr [rax]
                not esi
                jb 1f
                mov r8, 1
                1: ret
                """;
        for (long rcx : new long[] {0xFFFF_FFFFL, 7}) {
            Result r = sameAsInterpreter(asm, c -> {
                for (int i = 0; i < 16; i++) c.r[i] = 0x8765_4321_FEDC_BA98L * (i + 3);
                c.r[Cpu.RAX] = 1;
                c.r[Cpu.RBX] = 2; // CMP 1, 2 borrows: CF = 1, kept by INC/DEC
                c.r[Cpu.RCX] = rcx;
                c.r[Cpu.RDX] = 0;
                c.r[9] = 0x8000_0000L; // NEG of the most negative 32-bit value: OF
                c.r[11] = 0;
                c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
            });
            assertEquals(-1, r.vector);
            assertEquals((rcx + 1) & 0xFFFF_FFFFL, r.cpu.r[Cpu.RCX]);
            assertEquals(-1L, r.cpu.r[Cpu.RDX]);
            assertEquals(0xFFFF_FFFFL, r.cpu.r[11], "DEC of 0 (32 bits) zero-extends");
            assertNotEquals(1L, r.cpu.r[8], "NOT kept CF from the CMP: JB taken");
            assertEquals(0x8000_0000L, r.cpu.r[9]);
        }
    }

    /**
     * PUSH/POP r64 are emitted inline: PUSH RSP pushes the old value, POP RSP keeps the popped one, and a stack
     * pointer that is not canonical is #SS(0) before RSP or memory change (SDM Vol. 3A 6.15).
     */
    @Test
    void inlinePushAndPopMatchTheInterpreter() throws Throwable {
        String asm = """
                push rax
                push rbx
                push rsp
                pop rcx
                pop rdx
                push r12
                pop rsi
                pop rdi
                push rsp
                pop rsp
                ret
                """;
        Result r = sameAsInterpreter(asm, c -> {
            for (int i = 0; i < 16; i++) c.r[i] = 0x1111_2222_3333_4444L * (i + 1);
            c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
        });
        assertEquals(-1, r.vector);
        assertEquals(LongModeFixture.STACK_TOP - 16, r.cpu.r[Cpu.RCX], "PUSH RSP pushed the value before the push");
        assertEquals(r.cpu.r[Cpu.RBX], r.cpu.r[Cpu.RDX]);
        assertEquals(r.cpu.r[12], r.cpu.r[Cpu.RSI]);
        assertEquals(r.cpu.r[Cpu.RAX], r.cpu.r[Cpu.RDI]);
        assertEquals(LongModeFixture.STACK_TOP + 8, r.cpu.r[Cpu.RSP], "POP RSP kept the popped value, then RET popped");
        Result ss = sameAsInterpreter("mov eax, 1\npush rax\nret\n", c -> c.r[Cpu.RSP] = 0x8000_0000_0000_0004L);
        assertEquals(Exceptions.SS, ss.vector, "a push below a non-canonical RSP");
        assertEquals(0x8000_0000_0000_0004L, ss.cpu.r[Cpu.RSP], "RSP unchanged by the faulting push");
        assertEquals(1, ss.cpu.r[Cpu.RAX], "the MOV before it retired");
        Result pop = sameAsInterpreter("mov eax, 1\npop rbx\nret\n", c -> {
            c.r[Cpu.RSP] = 0x7FFF_FFFF_FFFF_FFFCL;
            c.r[Cpu.RBX] = 5;
        });
        assertEquals(Exceptions.SS, pop.vector, "an 8-byte pop whose last byte is not canonical");
        assertEquals(5, pop.cpu.r[Cpu.RBX]);
    }

    /**
     * CMP/TEST with a memory operand and an immediate or register, 1 to 8 bytes, are emitted inline; a JL/JB/JE
     * after them branches as the interpreter's does (on the locals after a 4- or 8-byte one, through Flags.cond
     * after the smaller ones). Each sequence runs with RBX at data that makes the branch go each way.
     */
    @Test
    void inlineCompareAndTestWithAMemoryOperandMatchTheInterpreter() throws Throwable {
        String[] branches = {
                "cmp dword ptr [rbx], 100\njl 1f", "cmp qword ptr [rbx+8], rcx\njb 1f", "cmp byte ptr [rbx+1], 0x80\njae 1f",
                "test word ptr [rbx+2], 0x8001\njne 1f", "test dword ptr [rbx], edx\nje 1f", "cmp byte ptr [rbx], dl\njg 1f",
                "test byte ptr [rbx+3], 0x80\njs 1f"};
        for (String branch : branches) {
            for (long v : new long[] {0, 99, 0x8000_0000_0000_0064L, -1L}) {
                String asm = "mov eax, 1\n" + branch + "\nmov r8, 5\n1: mov r9, 6\nret\n";
                Result r = sameAsInterpreter(asm, c -> {
                    c.memory.writePhys(DATA, 8, v);
                    c.memory.writePhys(DATA + 8, 8, ~v);
                    c.r[Cpu.RBX] = DATA;
                    c.r[Cpu.RCX] = 0x7000;
                    c.r[Cpu.RDX] = 0x33;
                    c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
                });
                assertEquals(-1, r.vector, branch);
            }
        }
        Result pf = sameAsInterpreter("mov eax, 1\ncmp dword ptr [rbx], 3\nret\n", c -> {
            c.r[Cpu.RBX] = 0x8000_0000_0000_0000L;
            c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
        });
        assertEquals(Exceptions.GP, pf.vector, "a non-canonical operand: #GP(0), the MOV before it retired");
        assertEquals(1, pf.cpu.instructionsRetired);
    }

    /**
     * ROL/ROR r, imm (32/64 bits) are emitted inline: the result, CF and OF (the record materialized) as the
     * handler leaves them, a count of 0 (after masking) changes no flag but zero-extends a 32-bit register; a
     * JB/JO after each branches as in the interpreter.
     */
    @Test
    void inlineRotatesMatchTheInterpreter() throws Throwable {
        String[] rotates = {"rol eax, 1", "ror eax, 1", "rol rax, 63", "ror rax, 17", "rol eax, 8", "ror eax, 32", "rol rax, 64",
                "ror r9d, 31", "rol r10, 1"};
        for (String rot : rotates) {
            for (String jcc : new String[] {"jb", "jo"}) {
                for (long v : new long[] {0x8000_0000_0000_0001L, 0x4000_0000_C000_0000L, 0x1234_5678_9ABC_DEF0L}) {
                    String asm = "cmp ecx, edx\n" + rot + "\n" + jcc + " 1f\nmov r8, 5\n1: ret\n";
                    Result r = sameAsInterpreter(asm, c -> {
                        c.r[Cpu.RAX] = v;
                        c.r[9] = v;
                        c.r[10] = ~v;
                        c.r[Cpu.RCX] = 1;
                        c.r[Cpu.RDX] = 2; // the CMP borrows: CF=1 before the rotate
                        c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
                    });
                    assertEquals(-1, r.vector, rot);
                }
            }
        }
    }

    /**
     * 8- and 16-bit CMP/TEST on registers, MOVSX/MOVSXD from registers and memory, and SETcc r8 are emitted inline:
     * each sequence runs with values that make its branch go both ways and is compared with the interpreter.
     */
    @Test
    void inlineNarrowComparesSignExtensionsAndSetccMatchTheInterpreter() throws Throwable {
        String[] bodies = {
                "cmp al, 0x80\nsetl cl\njl 1f", "cmp ax, bx\nsetb dl\njae 1f", "test al, 0x81\nsete sil\njne 1f",
                "cmp bl, al\nsetg r9b\njle 1f", "test bx, ax\nsets dil\njs 1f", "cmp al, 3\nsetbe cl\njbe 1f",
                "movsxd rcx, eax\nmovsx edx, bl\nmovsx r9, bx\ncmp rcx, rdx\njg 1f",
                "movsxd rcx, dword ptr [rbp]\nmovsx edx, byte ptr [rbp+4]\nmovsx r9, word ptr [rbp+6]\ntest rcx, rcx\njs 1f"};
        for (String body : bodies) {
            for (long v : new long[] {0, 0x7F, 0x80FF_8003L, -1L, 0x1234_5678_9ABC_DEF0L}) {
                String asm = "mov r8d, 1\n" + body + "\nmov r10, 5\n1: mov r11, 6\nret\n";
                Result r = sameAsInterpreter(asm, c -> {
                    c.memory.writePhys(DATA, 8, v);
                    c.r[Cpu.RAX] = v;
                    c.r[Cpu.RBX] = ~v * 3;
                    c.r[Cpu.RCX] = 0x1111_1111_1111_1111L;
                    c.r[Cpu.RDX] = 0x2222_2222_2222_2222L;
                    c.r[Cpu.RSI] = c.r[Cpu.RDI] = c.r[9] = -1L;
                    c.r[Cpu.RBP] = DATA;
                    c.ccSrc2 = 1; // a carry-in record left by an earlier ADC: CMP/TEST clear it
                    c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
                });
                assertEquals(-1, r.vector, body);
            }
        }
        Result gp = sameAsInterpreter("mov eax, 1\nmovsxd rcx, dword ptr [rbp]\nret\n", c -> {
            c.r[Cpu.RBP] = 0x8000_0000_0000_0000L;
            c.r[Cpu.RCX] = 9;
        });
        assertEquals(Exceptions.SS, gp.vector, "an RBP-based operand that is not canonical: #SS(0)");
        assertEquals(9, gp.cpu.r[Cpu.RCX], "the load faulted before writing");
    }

    /** MOV m, r of 1 and 2 bytes and MOV m, imm of every size are emitted inline and write what the handlers write. */
    @Test
    void inlineNarrowStoresAndStoresOfImmediatesMatchTheInterpreter() throws Throwable {
        String asm = """
                mov byte ptr [rbx], cl
                mov word ptr [rbx+2], dx
                mov byte ptr [rbx+5], 0x9c
                mov word ptr [rbx+6], 0x1234
                mov dword ptr [rbx+8], 0x89abcdef
                mov qword ptr [rbx+16], -2
                mov qword ptr [rbx+24], 0x7fffffff
                ret
                """;
        Result r = sameAsInterpreter(asm, c -> {
            c.r[Cpu.RBX] = DATA;
            c.r[Cpu.RCX] = 0x1122_3344_5566_7788L;
            c.r[Cpu.RDX] = 0x99AA_BBCC_DDEE_FF00L;
            c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
        });
        assertEquals(-1, r.vector);
        var m = r.machine.mem;
        assertEquals(0x88, m.readPhys(DATA, 1));
        assertEquals(0xFF00, m.readPhys(DATA + 2, 2));
        assertEquals(0x9C, m.readPhys(DATA + 5, 1));
        assertEquals(0x1234, m.readPhys(DATA + 6, 2));
        assertEquals(0x89AB_CDEFL, m.readPhys(DATA + 8, 4));
        assertEquals(-2L, m.readPhys(DATA + 16, 8));
        assertEquals(0x7FFF_FFFFL, m.readPhys(DATA + 24, 8));
        Result gp = sameAsInterpreter("mov eax, 1\nmov byte ptr [rbx], 7\nret\n", c -> {
            c.r[Cpu.RBX] = 0x8000_0000_0000_0000L;
            c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
        });
        assertEquals(Exceptions.GP, gp.vector);
    }

    @Test
    void inlineMemoryFormsFaultBeforeWritingAndStackOperandsAreCheckedCanonical() throws Throwable {
        // A non-canonical RSP-based operand is #SS(0), any other #GP(0) (SDM Vol. 3A 6.15); a load leaves its
        // destination as it was, a store leaves RAM as it was.
        Result ss = sameAsInterpreter("mov eax, 1\nmov rcx, [rsp+8]\nret\n", c -> {
            c.r[Cpu.RCX] = 77;
            c.r[Cpu.RSP] = 0x8000_0000_0000_0000L;
        });
        assertEquals(Exceptions.SS, ss.vector);
        assertEquals(77, ss.cpu.r[Cpu.RCX]);
        assertEquals(1, ss.cpu.instructionsRetired);
        Result pf = sameAsInterpreter("mov [rdi], eax\nmov [rdx], rax\nadd ebx, [rdx]\nret\n", c -> {
            c.r[Cpu.RAX] = 0x1234_5678_9ABC_DEF0L;
            c.r[Cpu.RDI] = DATA;
            c.r[Cpu.RDX] = 0x40_0000_0000L; // not present
            c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
        });
        assertEquals(Exceptions.PF, pf.vector);
        assertEquals(1, pf.cpu.instructionsRetired);
        assertEquals(0x9ABC_DEF0L, pf.machine.mem.readPhys(DATA, 4), "the store before the fault was made");
    }

    @Test
    void aDwordStoreIntoTheTracesOwnCodeEndsTheTraceAfterTheStore() throws Throwable {
        String asm = """
                mov eax, 0x90909090
                mov dword ptr [rip+1f], eax
                add ecx, 1
                1: add ecx, 2
                ret
                """;
        Result r = sameAsInterpreter(asm, c -> c.r[Cpu.RSP] = LongModeFixture.STACK_TOP);
        assertEquals(2, r.cpu.instructionsRetired, "the write invalidates the trace: the compiled code stops after it");
        assertEquals(0, r.cpu.r[Cpu.RCX]);
    }
    @Test
    void inlineImulAndCmovOf32And64BitsMatchTheInterpreterWithAndWithoutOverflow() throws Throwable {
        // SETO/SETC store each IMUL's overflow into RAM, which is compared too.
        String asm = """
                imul rax, rbx
                seto byte ptr [rsp-1]
                imul ecx, edx
                setc byte ptr [rsp-2]
                imul esi, edi, 1000
                seto byte ptr [rsp-3]
                imul r8, r9, -3
                setc byte ptr [rsp-4]
                imul r10d, r11d
                seto byte ptr [rsp-5]
                cmp r12, r13
                cmovl r14, r15
                cmovge r12d, r13d
                cmovb eax, ebx
                ret
                """;
        long[][] inputs = {{3, 5}, {0x7FFF_FFFF_FFFF_FFFFL, 2}, {0x8000_0000L, -1}, {-7, 0x1234_5678_9ABC_DEF0L}};
        for (long[] in : inputs) {
            Result r = sameAsInterpreter(asm, c -> {
                for (int i = 0; i < 16; i++) c.r[i] = (i & 1) == 0 ? in[0] : in[1];
                c.r[Cpu.RSP] = LongModeFixture.STACK_TOP;
            });
            assertEquals(15, r.cpu.instructionsRetired);
            assertEquals((long) ((int) in[1] * (int) in[0]) & 0xFFFF_FFFFL, r.cpu.r[Cpu.RCX],
                    "IMUL r32: the low 32 bits, zero-extended");
            assertEquals(in[1] * -3, r.cpu.r[8], "IMUL r64, r64, imm8: the low 64 bits");
            assertEquals(0, r.cpu.r[12] >>> 32, "a 32-bit CMOV zero-extends whether or not it moves");
            r.machine.close();
        }
    }
}
