package dev.polyvisor.cpu.jit;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuFault;
import dev.polyvisor.cpu.Trace;
import dev.polyvisor.cpu.Vcpu;
import dev.polyvisor.cpu.decode.Insn;
import dev.polyvisor.cpu.exec.JitForms;
import dev.polyvisor.cpu.mmu.Mmu;

import java.lang.classfile.ClassFile;
import java.lang.classfile.CodeBuilder;
import java.lang.classfile.Label;
import java.lang.classfile.MethodModel;
import java.lang.classfile.instruction.SwitchCase;
import java.lang.constant.ClassDesc;
import java.lang.constant.ConstantDescs;
import java.lang.constant.DirectMethodHandleDesc;
import java.lang.constant.DynamicConstantDesc;
import java.lang.foreign.MemorySegment;
import java.lang.constant.MethodTypeDesc;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

import static java.lang.classfile.ClassFile.ACC_FINAL;
import static java.lang.classfile.ClassFile.ACC_PUBLIC;
import static java.lang.constant.ConstantDescs.CD_Object;
import static java.lang.constant.ConstantDescs.CD_boolean;
import static java.lang.constant.ConstantDescs.CD_int;
import static java.lang.constant.ConstantDescs.CD_long;
import static java.lang.constant.ConstantDescs.CD_void;

/**
 * Compiles a region (a {@link Trace} and up to three traces its branches reach in the same page) to a hidden class
 * implementing {@link CompiledTrace}. The class data is the list of the region's handler objects, then the
 * Traces of its other blocks; each is loaded with a dynamic constant ({@link MethodHandles#classDataAt}),
 * which C2 treats as a constant, so a handler's {@code exec} call is bound to its exact class and inlined.
 * The forms {@link InlineEmitter} knows are emitted as bytecode instead.
 *
 * <p>Generated shape of {@code run(cpu, trace, vcpu)}:
 * <pre>
 *   top:   c.traceExit = false; BASE = c.rip; load the cached registers and flag record into locals
 *   block k (its start BASE + delta_k):
 *          per instruction: RETIRED = index in the block; INSN = index in the region;
 *            inline form (RIP = BASE + constant; prevRip stored only if it may fault), or
 *            store rip/prevRip and what is dirty, exec(c), reload the locals;
 *            after a store or a handler that may branch: if (c.traceExit) goto exit_i
 *          a taken inline branch to block j's start: retired += n; if (vcpu.loopsBack(c, trace, trace_j)) goto block j
 *          end of block: store RIP and what is dirty; RETIRED = its length; goto exit
 *   exit_i: store what was dirty there (and RIP after a store); RETIRED = i + 1
 *   exit:  c.instructionsRetired += RETIRED; if (vcpu != null && vcpu.again(c, trace)) goto top; return
 *   catch (CpuFault f): store what was dirty before instruction INSN; c.rip = c.prevRip;
 *          c.instructionsRetired += RETIRED; throw f
 * </pre>
 * The exit check is left out where the instruction provably cannot set traceExit (the inline forms that
 * do not store, the handlers that only read, {@link JitForms#readsOnly}), and after a block's last one.
 * The class is defined without {@code STRONG}, so it is unloaded once its trace drops it.
 */
public final class TraceCompiler {
    static final ClassDesc CD_CPU = ClassDesc.of(Cpu.class.getName());
    static final ClassDesc CD_TRACE = ClassDesc.of(Trace.class.getName());
    static final ClassDesc CD_INSN = ClassDesc.of(Insn.class.getName());
    static final ClassDesc CD_FAULT = ClassDesc.of(CpuFault.class.getName());
    private static final ClassDesc CD_COMPILED = ClassDesc.of(CompiledTrace.class.getName());
    static final ClassDesc CD_VCPU = ClassDesc.of(Vcpu.class.getName());
    private static final MethodTypeDesc MTD_RUN = MethodTypeDesc.of(CD_void, CD_CPU, CD_TRACE);
    private static final MethodTypeDesc MTD_RUN_LOOP = MethodTypeDesc.of(CD_void, CD_CPU, CD_TRACE, CD_VCPU);
    static final MethodTypeDesc MTD_AGAIN = MethodTypeDesc.of(CD_boolean, CD_CPU, CD_TRACE);
    static final MethodTypeDesc MTD_LOOPS_BACK = MethodTypeDesc.of(CD_boolean, CD_CPU, CD_TRACE, CD_TRACE);
    private static final MethodTypeDesc MTD_EXEC = MethodTypeDesc.of(CD_void, CD_CPU);
    private static final DirectMethodHandleDesc CLASS_DATA_AT = ConstantDescs.ofConstantBootstrap(
            ClassDesc.of(MethodHandles.class.getName()), "classDataAt", CD_Object, CD_int);
    private static final MethodHandles.Lookup LOOKUP = MethodHandles.lookup();
    private static final ClassDesc THIS_CLASS = ClassDesc.of(TraceCompiler.class.getPackageName() + ".Trace");

    static final ClassDesc CD_MMU = ClassDesc.of(Mmu.class.getName());
    static final ClassDesc CD_SEGMENT = ClassDesc.of(MemorySegment.class.getName());
    private static final ClassDesc CD_VAR_HANDLE = ClassDesc.of(java.lang.invoke.VarHandle.class.getName());
    static final ClassDesc CD_LONG_ARRAY = CD_long.arrayType();

    /**
     * Locals: the arguments (cpu, trace, the vCPU whose loop the trace may repeat), the instructions retired
     * before the current one, the caught fault, InlineEmitter's operands (A, B, RES: two slots each), a memory
     * operand's linear address, and BASE, the entry RIP that {@link RipState} adds offsets to.
     */
    static final int CPU = 1, TRACE = 2, LOOP = 3, RETIRED = 4, FAULT = 5, A = 6, B = 8, RES = 10, LA = 12, BASE = 14;
    /** Locals of {@link StateCache}: a scratch long, the lazy-flag record (ccOp, ccDst, ccSrc), then r0-r15. */
    static final int TMP = 16, CC_OP = 18, CC_DST = 19, CC_SRC = 21, R0 = 23;
    /** The instruction's index in the region (RETIRED counts within its block), for the fault handler. */
    static final int INSN = R0 + 32;

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
    public CompiledTrace compile(Trace t) throws Throwable { return compile(t, List.of()); }

    /**
     * Compiles a region: trace {@code t} and traces its branches may reach in the same page ({@code more}, each
     * starting {@code physAddr - t.physAddr} bytes from it in the same linear page too), whose instructions the
     * code continues at in place while the vCPU's loop would only run that trace next ({@code Vcpu.loopsBack}).
     * Traces are left out from the end while the method would be too large for C2 ({@link #MAX_CODE}).
     */
    public CompiledTrace compile(Trace t, List<Trace> more) throws Throwable { return compile(t, more, null); }

    /**
     * As {@link #compile(Trace, List)}; with {@code ram} (the VM's {@code Mmu.compiledRam()}) the class holds guest
     * RAM as a constant and passes it to the Mmu's accesses, so that C2 folds the segment's checks.
     */
    public CompiledTrace compile(Trace t, List<Trace> more, MemorySegment ram) throws Throwable {
        for (int k = more.size(); ; k--) {
            List<Block> blocks = new ArrayList<>();
            blocks.add(new Block(t.insns(), 0, null));
            for (Trace m : more.subList(0, k)) blocks.add(new Block(m.insns(), m.physAddr() - t.physAddr(), m));
            byte[] bytes = generate(blocks, ram != null);
            if (k > 0 && runCodeLength(bytes) > MAX_CODE) continue;
            return define(bytes, blocks, ram);
        }
    }

    /**
     * Bytecode size of a compiled region's run method at most: HotSpot does not compile a larger method at all
     * (-XX:HugeMethodLimit, 8000 bytes, with DontCompileHugeMethods), so the whole region would stay in the JVM's
     * interpreter; a single trace always fits.
     */
    static final int MAX_CODE = 7000;

    /**
     * Compiles a sequence of decoded instructions as a region of one block. Run without a vCPU (the two-argument
     * {@code run}) it never reads its Trace, so the host-CPU oracle runs one-instruction code with a null trace.
     */
    public CompiledTrace compile(Insn[] insns) throws Throwable {
        List<Block> blocks = List.of(new Block(insns, 0, null));
        return define(generate(blocks, false), blocks, null);
    }

    /** One trace of a region: its instructions, its start's offset from the entry's, and its Trace (null: the entry). */
    record Block(Insn[] insns, long delta, Trace trace) {}

    private static CompiledTrace define(byte[] bytes, List<Block> blocks, MemorySegment ram) throws Throwable {
        // Class data: every instruction's handler in order, then the Trace of each block after the first, then the RAM.
        List<Object> data = new ArrayList<>();
        for (Block b : blocks) data.addAll(Arrays.asList(b.insns()));
        for (Block b : blocks.subList(1, blocks.size())) data.add(b.trace());
        if (ram != null) data.add(ram);
        MethodHandles.Lookup hidden = LOOKUP.defineHiddenClassWithClassData(bytes, data, true);
        return (CompiledTrace) hidden.findConstructor(hidden.lookupClass(), MethodType.methodType(void.class)).invoke();
    }

    static int runCodeLength(byte[] bytes) {
        for (MethodModel m : ClassFile.of().parse(bytes).methods())
            if (m.methodName().equalsString("run") && m.methodTypeSymbol().equals(MTD_RUN_LOOP))
                return m.code().map(c -> ((java.lang.classfile.attribute.CodeAttribute) c).codeLength()).orElse(0);
        throw new IllegalStateException("no run method");
    }

    byte[] generate(Insn[] insns) { return generate(List.of(new Block(insns, 0, null)), false); }

    byte[] generate(List<Block> blocks, boolean constantRam) {
        return ClassFile.of().build(THIS_CLASS, cb -> cb
                .withFlags(ACC_PUBLIC | ACC_FINAL)
                .withInterfaceSymbols(CD_COMPILED)
                .withMethodBody(ConstantDescs.INIT_NAME, ConstantDescs.MTD_void, ACC_PUBLIC, code -> code
                        .aload(0)
                        .invokespecial(CD_Object, ConstantDescs.INIT_NAME, ConstantDescs.MTD_void)
                        .return_())
                .withMethodBody("run", MTD_RUN, ACC_PUBLIC | ACC_FINAL, code -> code
                        .aload(0).aload(CPU).aload(TRACE).aconst_null()
                        .invokevirtual(THIS_CLASS, "run", MTD_RUN_LOOP)
                        .return_())
                .withMethodBody("run", MTD_RUN_LOOP, ACC_PUBLIC | ACC_FINAL, code -> body(code, blocks, constantRam)));
    }

    /**
     * The blocks of the region being compiled, for {@link InlineEmitter}'s branches: the label of the block that
     * starts at a given offset from the entry, entered again with the guest state in locals.
     */
    static final class Blocks {
        private final List<Block> blocks;
        private final Label[] tops;
        private final int firstTrace;
        private final boolean constantRam;

        Blocks(CodeBuilder code, List<Block> blocks, int instructions, boolean constantRam) {
            this.blocks = blocks;
            this.tops = new Label[blocks.size()];
            for (int k = 0; k < tops.length; k++) tops[k] = code.newLabel();
            this.firstTrace = instructions;
            this.constantRam = constantRam;
        }

        /** Whether the class data ends with guest RAM ({@link #pushRam}). */
        boolean constantRam() { return constantRam; }

        /** Pushes guest RAM, the class data's last entry, when the region has it; nothing otherwise. */
        void pushRam(CodeBuilder code) {
            if (constantRam)
                code.ldc(DynamicConstantDesc.ofNamed(CLASS_DATA_AT, ConstantDescs.DEFAULT_NAME, CD_SEGMENT, firstTrace + tops.length - 1));
        }

        /** The block starting {@code off} bytes from the entry, or -1. */
        int at(long off) {
            for (int k = 0; k < tops.length; k++) if (blocks.get(k).delta() == off) return k;
            return -1;
        }

        Label top(int k) { return tops[k]; }

        /** Pushes block k's Trace. */
        void pushTrace(CodeBuilder code, int k) {
            if (k == 0) code.aload(TRACE);
            else code.ldc(DynamicConstantDesc.ofNamed(CLASS_DATA_AT, ConstantDescs.DEFAULT_NAME, CD_TRACE, firstTrace + k - 1));
        }
    }

    private void body(CodeBuilder code, List<Block> blockList, boolean constantRam) {
        int n = 0;
        for (Block b : blockList) n += b.insns().length;
        Insn[] insns = new Insn[n];
        int[] blockOf = new int[n], local = new int[n];
        for (int k = 0, g = 0; k < blockList.size(); k++) {
            Insn[] bi = blockList.get(k).insns();
            for (int j = 0; j < bi.length; j++, g++) { insns[g] = bi[j]; blockOf[g] = k; local[g] = j; }
        }
        Label top = code.newLabel(), start = code.newLabel(), end = code.newLabel(), handler = code.newLabel();
        Label exit = code.newLabel();
        Label[] exits = new Label[n];
        boolean[] exitUsed = new boolean[n];
        // What is dirty in the StateCache at each exit, and where a fault in each instruction may come from.
        long[] exitDirty = new long[n], faultDirty = new long[n];
        // RIP to store at an exit (as an offset from BASE) where the Cpu's is not the next instruction's yet.
        long[] exitRip = new long[n];
        Arrays.fill(exitRip, Long.MIN_VALUE);
        StateCache state = StateCache.of(insns, inlineForms);
        Blocks blocks = new Blocks(code, blockList, n, constantRam);
        Set<Long> entered = new HashSet<>();
        if (inlineForms) for (Block b : blockList) entered.addAll(RipState.branchTargets(b.insns(), b.delta()));
        InlineEmitter inline = inlineForms ? new InlineEmitter(state, blocks) : null;
        code.labelBinding(top);
        code.aload(CPU).iconst_0().putfield(CD_CPU, "traceExit", CD_boolean);
        code.aload(CPU).getfield(CD_CPU, "rip", CD_long).lstore(BASE);
        state.load(code);
        code.iconst_0().istore(RETIRED); // assigned before the range the fault handler covers, for the verifier
        code.iconst_0().istore(INSN);
        code.labelBinding(start);
        RipState rip = null;
        for (int i = 0; i < n; i++) {
            Insn insn = insns[i];
            int k = blockOf[i], j = local[i], len = blockList.get(k).insns().length;
            if (j == 0) {
                code.labelBinding(blocks.top(k));
                // Entered from a branch in place, with whatever that path left dirty.
                if (entered.contains(blockList.get(k).delta())) state.assumeWritten();
                rip = new RipState(blockList.get(k).delta());
                code.iconst_0().istore(RETIRED);
            } else {
                code.loadConstant(j).istore(RETIRED);
                if (orderLoads) code.invokestatic(CD_VAR_HANDLE, "loadLoadFence", ConstantDescs.MTD_void);
            }
            code.loadConstant(i).istore(INSN);
            rip.next(insn.len);
            exits[i] = code.newLabel();
            faultDirty[i] = state.dirty();
            exitDirty[i] = state.dirty(); // a taken inline Jcc leaves with what was dirty before it
            InlineEmitter.Emitted e = inline == null ? InlineEmitter.Emitted.NO : inline.emit(code, insn, j, exits[i], rip);
            if (e == InlineEmitter.Emitted.MAY_EXIT) exitUsed[i] = true; // a taken branch jumps there itself
            if (e == InlineEmitter.Emitted.NO) {
                rip.store(code);
                state.flush(code);
                faultDirty[i] = 0; // the handler works on the Cpu: after a fault its copy is the truth
                code.ldc(DynamicConstantDesc.ofNamed(CLASS_DATA_AT, ConstantDescs.DEFAULT_NAME, CD_INSN, i));
                code.aload(CPU).invokevirtual(CD_INSN, "exec", MTD_EXEC);
                if (j < len - 1) {
                    rip.rebase(code); // a handler may have set RIP (a followed JMP without inline forms)
                    state.load(code);
                }
            }
            // A store (into a code page it ends the trace) or a handler that may branch or store: test traceExit.
            boolean mayExit = e == InlineEmitter.Emitted.WRITES || e == InlineEmitter.Emitted.NO && !JitForms.readsOnly(insn);
            if (mayExit && j < len - 1) {
                exitUsed[i] = true;
                exitDirty[i] = state.dirty();
                if (!rip.stored) exitRip[i] = rip.next; // after a store, which set only prevRip
                code.aload(CPU).getfield(CD_CPU, "traceExit", CD_boolean).ifne(exits[i]);
            }
            if (j == len - 1) { // the block's end: RIP in the Cpu may still be an earlier instruction's
                rip.storeNext(code);
                state.flush(code);
                code.loadConstant(len).istore(RETIRED).goto_(exit);
            }
        }
        code.labelBinding(end);
        for (int i = 0; i < n; i++) {
            if (!exitUsed[i]) continue;
            code.labelBinding(exits[i]);
            StateCache.flush(code, exitDirty[i]);
            if (exitRip[i] != Long.MIN_VALUE) {
                code.aload(CPU);
                RipState.push(code, exitRip[i]);
                code.putfield(CD_CPU, "rip", CD_long);
            }
            code.loadConstant(local[i] + 1).istore(RETIRED).goto_(exit);
        }
        // Every way out: count the instructions, then run again from the top while the vCPU's loop would only do that.
        code.labelBinding(exit);
        retire(code, c -> c.iload(RETIRED).i2l());
        Label done = code.newLabel();
        code.aload(LOOP).ifnull(done);
        code.aload(LOOP).aload(CPU).aload(TRACE).invokevirtual(CD_VCPU, "again", MTD_AGAIN).ifne(top);
        code.labelBinding(done);
        code.return_();
        // A fault: what the faulting inline form's predecessors left dirty goes to the Cpu, RIP back to the instruction.
        code.labelBinding(handler);
        code.astore(FAULT);
        Label rethrow = code.newLabel();
        List<SwitchCase> cases = new ArrayList<>();
        Map<Long, Label> byDirty = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            if (faultDirty[i] == 0) continue;
            cases.add(SwitchCase.of(i, byDirty.computeIfAbsent(faultDirty[i], d -> code.newLabel())));
        }
        if (!cases.isEmpty()) {
            code.iload(INSN).lookupswitch(rethrow, cases);
            for (var d : byDirty.entrySet()) {
                code.labelBinding(d.getValue());
                StateCache.flush(code, d.getKey());
                code.goto_(rethrow);
            }
        }
        code.labelBinding(rethrow);
        code.aload(CPU).aload(CPU).getfield(CD_CPU, "prevRip", CD_long).putfield(CD_CPU, "rip", CD_long);
        retire(code, c -> c.iload(RETIRED).i2l());
        code.aload(FAULT).athrow();
        code.exceptionCatch(start, end, handler, CD_FAULT);
    }

    /** {@code c.instructionsRetired += n}, the long that {@code count} pushes. */
    static void retire(CodeBuilder code, Consumer<CodeBuilder> count) {
        code.aload(CPU).dup().getfield(CD_CPU, "instructionsRetired", CD_long);
        count.accept(code);
        code.ladd().putfield(CD_CPU, "instructionsRetired", CD_long);
    }
}
