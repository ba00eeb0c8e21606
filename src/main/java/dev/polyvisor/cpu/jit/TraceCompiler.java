package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuFault;
import dev.polyvisor.cpu.Trace;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.exec.JitForms;
import dev.polyvisor.cpu.mmu.Mmu;

import java.lang.classfile.ClassFile;
import java.lang.classfile.CodeBuilder;
import java.lang.classfile.Label;
import java.lang.constant.ClassDesc;
import java.lang.constant.ConstantDescs;
import java.lang.constant.DirectMethodHandleDesc;
import java.lang.constant.DynamicConstantDesc;
import java.lang.constant.MethodTypeDesc;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.List;

import static java.lang.classfile.ClassFile.ACC_FINAL;
import static java.lang.classfile.ClassFile.ACC_PUBLIC;
import static java.lang.constant.ConstantDescs.CD_Object;
import static java.lang.constant.ConstantDescs.CD_boolean;
import static java.lang.constant.ConstantDescs.CD_int;
import static java.lang.constant.ConstantDescs.CD_long;
import static java.lang.constant.ConstantDescs.CD_void;

/**
 * Compiles one {@link Trace} to a hidden class implementing {@link CompiledTrace}. The class data is
 * the list of the trace's handler objects; each is loaded with a dynamic constant
 * ({@link MethodHandles#classDataAt}), which C2 treats as a constant, so its {@code exec} call is bound
 * to the exact class and inlined. The forms {@link InlineEmitter} knows are emitted as bytecode instead.
 *
 * <p>Generated shape (locals: 0 this, 1 cpu, 2 trace, 3 retired-before-current):
 * <pre>
 *   c.traceExit = false;
 *   // per instruction i:  n = i; c.prevRip = c.rip; c.rip += len_i; exec_i(c);
 *   //                     if (c.traceExit) { c.instructionsRetired += i + 1; return; }   (a write to a code page sets it too)
 *   c.instructionsRetired += N;
 *   catch (CpuFault f) { c.rip = c.prevRip; c.instructionsRetired += n; throw f; }
 * </pre>
 * The check after an instruction is left out where the instruction provably cannot set traceExit or
 * write memory (the inline forms that only touch registers and flags, and the handlers that only read,
 * {@link JitForms#readsOnly}), and after the last one.
 * The class is defined without {@code STRONG}, so it is unloaded once its trace drops it.
 */
public final class TraceCompiler {
    static final ClassDesc CD_CPU = ClassDesc.of(Cpu.class.getName());
    static final ClassDesc CD_TRACE = ClassDesc.of(Trace.class.getName());
    static final ClassDesc CD_INSN = ClassDesc.of(Insn.class.getName());
    static final ClassDesc CD_FAULT = ClassDesc.of(CpuFault.class.getName());
    private static final ClassDesc CD_COMPILED = ClassDesc.of(CompiledTrace.class.getName());
    private static final MethodTypeDesc MTD_RUN = MethodTypeDesc.of(CD_void, CD_CPU, CD_TRACE);
    private static final MethodTypeDesc MTD_EXEC = MethodTypeDesc.of(CD_void, CD_CPU);
    private static final DirectMethodHandleDesc CLASS_DATA_AT = ConstantDescs.ofConstantBootstrap(
            ClassDesc.of(MethodHandles.class.getName()), "classDataAt", CD_Object, CD_int);
    private static final MethodHandles.Lookup LOOKUP = MethodHandles.lookup();
    private static final ClassDesc THIS_CLASS = ClassDesc.of(TraceCompiler.class.getPackageName() + ".Trace");

    static final ClassDesc CD_MMU = ClassDesc.of(Mmu.class.getName());
    private static final ClassDesc CD_VAR_HANDLE = ClassDesc.of(java.lang.invoke.VarHandle.class.getName());
    static final ClassDesc CD_LONG_ARRAY = CD_long.arrayType();

    /** Locals: 5-10 are InlineEmitter's, LA holds a memory operand's linear address. */
    static final int CPU = 1, TRACE = 2, RETIRED = 3, FAULT = 4, LA = 11;

    /** Whether the forms {@link InlineEmitter} knows are emitted as bytecode (else every handler is called). */
    private final boolean inlineForms;
    /**
     * Whether another vCPU thread may observe this one's memory accesses, so that a LoadLoad fence goes
     * between instructions (x86-TSO keeps a processor's loads in program order, SDM Vol. 3A 9.2.2, and C2
     * could move a later instruction's load above an earlier one's once both are inlined here). The fence is
     * no instruction on an x86 host, but to C2 it is a barrier for every memory access, the Cpu's fields
     * included, which then are reloaded after it: the CPU-bound guest ran 15% slower with it (bench/
     * cpu-vs-qemu.sh, JIT=on: 256 vs 304 MIPS), so a single vCPU, which has no other observer, goes without.
     * The interpreter needs none: it calls every handler out of line, and a call orders memory for C2.
     */
    private final boolean orderLoads;

    public TraceCompiler(boolean inlineForms) { this(inlineForms, false); }

    public TraceCompiler(boolean inlineForms, boolean orderLoads) {
        this.inlineForms = inlineForms;
        this.orderLoads = orderLoads;
    }

    /** Generates and defines the class; throws (IllegalArgumentException, LinkageError...) if it cannot. */
    public CompiledTrace compile(Trace t) throws Throwable { return compile(t.insns()); }

    /**
     * Compiles a sequence of decoded instructions. The result is run with the {@link Trace} they came from,
     * whose validity it checks between instructions; a single instruction never reads it (no check follows
     * the last instruction), so the host-CPU oracle runs one-instruction code with a null trace.
     */
    public CompiledTrace compile(Insn[] insns) throws Throwable {
        byte[] bytes = generate(insns);
        MethodHandles.Lookup hidden = LOOKUP.defineHiddenClassWithClassData(bytes, List.of(insns), true);
        return (CompiledTrace) hidden.findConstructor(hidden.lookupClass(), MethodType.methodType(void.class)).invoke();
    }

    byte[] generate(Insn[] insns) {
        return ClassFile.of().build(THIS_CLASS, cb -> cb
                .withFlags(ACC_PUBLIC | ACC_FINAL)
                .withInterfaceSymbols(CD_COMPILED)
                .withMethodBody(ConstantDescs.INIT_NAME, ConstantDescs.MTD_void, ACC_PUBLIC, code -> code
                        .aload(0)
                        .invokespecial(CD_Object, ConstantDescs.INIT_NAME, ConstantDescs.MTD_void)
                        .return_())
                .withMethodBody("run", MTD_RUN, ACC_PUBLIC | ACC_FINAL, code -> body(code, insns)));
    }

    private void body(CodeBuilder code, Insn[] insns) {
        int n = insns.length;
        Label start = code.newLabel(), end = code.newLabel(), handler = code.newLabel();
        Label[] exits = new Label[n];
        boolean[] exitUsed = new boolean[n];
        InlineEmitter inline = inlineForms ? new InlineEmitter() : null;
        code.aload(CPU).iconst_0().putfield(CD_CPU, "traceExit", CD_boolean);
        code.iconst_0().istore(RETIRED);
        code.labelBinding(start);
        for (int i = 0; i < n; i++) {
            Insn insn = insns[i];
            if (i > 0) {
                code.loadConstant(i).istore(RETIRED);
                if (orderLoads) code.invokestatic(CD_VAR_HANDLE, "loadLoadFence", ConstantDescs.MTD_void);
            }
            // c.prevRip = c.rip; c.rip += len
            code.aload(CPU).aload(CPU).getfield(CD_CPU, "rip", CD_long).putfield(CD_CPU, "prevRip", CD_long);
            code.aload(CPU).dup().getfield(CD_CPU, "rip", CD_long).loadConstant((long) insn.len).ladd().putfield(CD_CPU, "rip", CD_long);
            Label exit = exits[i] = code.newLabel();
            InlineEmitter.Emitted e = inline == null ? InlineEmitter.Emitted.NO : inline.emit(code, insn, exit);
            if (e == InlineEmitter.Emitted.MAY_EXIT) exitUsed[i] = true; // a taken branch jumps there itself
            if (e == InlineEmitter.Emitted.NO) {
                code.ldc(DynamicConstantDesc.ofNamed(CLASS_DATA_AT, ConstantDescs.DEFAULT_NAME, CD_INSN, i));
                code.aload(CPU).invokevirtual(CD_INSN, "exec", MTD_EXEC);
            }
            // A store (into a code page it ends the trace) or a handler that may branch or store: test traceExit.
            boolean mayExit = e == InlineEmitter.Emitted.WRITES || e == InlineEmitter.Emitted.NO && !JitForms.readsOnly(insn);
            if (mayExit && i < n - 1) {
                exitUsed[i] = true;
                code.aload(CPU).getfield(CD_CPU, "traceExit", CD_boolean).ifne(exit);
            }
        }
        code.labelBinding(end);
        retire(code, n);
        for (int i = 0; i < n; i++) {
            if (!exitUsed[i]) continue;
            code.labelBinding(exits[i]);
            retire(code, i + 1);
        }
        code.labelBinding(handler);
        code.astore(FAULT);
        code.aload(CPU).aload(CPU).getfield(CD_CPU, "prevRip", CD_long).putfield(CD_CPU, "rip", CD_long);
        code.aload(CPU).dup().getfield(CD_CPU, "instructionsRetired", CD_long).iload(RETIRED).i2l().ladd()
                .putfield(CD_CPU, "instructionsRetired", CD_long);
        code.aload(FAULT).athrow();
        code.exceptionCatch(start, end, handler, CD_FAULT);
    }

    private static void retire(CodeBuilder code, int count) {
        code.aload(CPU).dup().getfield(CD_CPU, "instructionsRetired", CD_long).loadConstant((long) count).ladd()
                .putfield(CD_CPU, "instructionsRetired", CD_long);
        code.return_();
    }
}
