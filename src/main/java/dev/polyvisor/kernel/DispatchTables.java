package dev.polyvisor.kernel;

import dev.polyvisor.kernel.BtfType.Array;
import dev.polyvisor.kernel.BtfType.Composite;
import dev.polyvisor.kernel.BtfType.EnumType;
import dev.polyvisor.kernel.BtfType.Ptr;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * What a running kernel bound at boot, read from its memory: a flat, ordered map from a C-like
 * path to the value found there. Each function pointer is named after the symbol it points at
 * ({@code pv_ops.mmu.flush_tlb_multi = kvm_flush_tlb_multi}), so two boots under different
 * hypervisor ABIs can be compared entry by entry. The roots, in this order:
 * <ul>
 * <li>{@code pv_ops.*} (arch/x86/include/asm/paravirt_types.h, struct paravirt_patch_template: cpu, irq,
 * mmu, lock), recursively; a {@code struct paravirt_callee_save} is one entry named after the member
 * holding it ({@code pv_ops.lock.vcpu_is_preempted}), its {@code func}; where the lock ops are a
 * variable of their own ({@code pv_ops_lock}, 7.x) they are reported as {@code pv_ops.lock.*} too;</li>
 * <li>{@code static_call.*}: every static call key {@code __SCK__<name>} (include/linux/static_call_types.h)
 * except the tracepoints' — in 6.1 sched_clock and steal_clock are static calls
 * ({@code pv_sched_clock}, {@code pv_steal_clock}, arch/x86/kernel/paravirt.c), no longer pv_ops.time;</li>
 * <li>{@code apic.*}: the driver {@code apic} points at (arch/x86/include/asm/apic.h), its {@code name} first;</li>
 * <li>{@code x86_platform.*}, {@code x86_init.*}, {@code x86_cpuinit.*}
 * (arch/x86/include/asm/x86_init.h); x86_init is {@code __initdata}, so once free_initmem() has run
 * (system_state &ge; SYSTEM_FREEING_INITMEM) it is reported as freed rather than read, unless an
 * earlier {@link #readInitData} supplies its entries;</li>
 * <li>{@code static_key.*}: the enable count of the PV static keys (include/linux/jump_label.h);</li>
 * <li>{@code clocksource.*}: {@code curr_clocksource} (kernel/time/clocksource.c), name and callbacks;</li>
 * <li>{@code clockevent[cpu].*}: each online CPU's {@code tick_cpu_device.evtdev} (kernel/time/tick-common.c,
 * per-CPU: found through {@code __per_cpu_offset} and the direct map), name and callbacks.</li>
 * </ul>
 * A root that cannot be read (a symbol this kernel lacks, a pointer outside the image and the
 * direct map) becomes one {@link Unreadable} entry; reading never fails as a whole.
 */
public final class DispatchTables {
    /** One value found in the guest. */
    public sealed interface Value {
        /** The value as reported: a symbol name, "NULL", hex, a string, a count, or a reason in angle brackets. */
        String display();
    }

    /** A code pointer (function pointer or callee-save thunk): its runtime value and the symbol there. */
    public record Code(long address, String symbol) implements Value {
        public String display() { return symbol; }
    }

    /** A C string the kernel points at (a driver's name). */
    public record Text(String text) implements Value {
        public String display() { return text; }
    }

    /** A counter, e.g. a static key's {@code enabled}. */
    public record Count(long value) implements Value {
        public String display() { return Long.toString(value); }
    }

    public record Unreadable(String reason) implements Value {
        public String display() { return "<" + reason + ">"; }
    }

    /** The PV static keys read (kernel/sched/cputime.c and arch/x86/kernel/paravirt.c, tsc.c, kvm.c). */
    public static final List<String> STATIC_KEYS = List.of("paravirt_steal_enabled", "paravirt_steal_rq_enabled",
            "virt_spin_lock_key", "__use_tsc", "kvm_async_pf_enabled");
    /** 7.x's separate PV spinlock ops (arch/x86/include/asm/paravirt_types.h), read as {@code pv_ops.lock}. */
    public static final String PV_OPS_LOCK = "pv_ops_lock";
    /** Plain struct roots, in report order. */
    public static final List<String> STRUCT_ROOTS = List.of("x86_platform", "x86_init", "x86_cpuinit");
    /** Clockevent devices are read for at most this many CPUs. */
    public static final int MAX_CPUS = 64;
    private static final int MAX_NAME = 64, MAX_DEPTH = 24, MAX_ARRAY = 256;

    private final Map<String, Value> entries;

    private DispatchTables(Map<String, Value> entries) { this.entries = Collections.unmodifiableMap(entries); }

    public Map<String, Value> entries() { return entries; }

    public Optional<Value> value(String path) { return Optional.ofNullable(entries.get(path)); }

    /** The displayed value at {@code path}; an unknown path is an error (so a typo in a test is not a silent null). */
    public String get(String path) {
        Value v = entries.get(path);
        if (v == null) throw new IllegalArgumentException("no entry " + path + " (entries: " + entries.size() + ")");
        return v.display();
    }

    /** The entries whose path starts with {@code prefix}. */
    public Map<String, Value> under(String prefix) {
        return entries.entrySet().stream().filter(e -> e.getKey().startsWith(prefix))
                .collect(Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue, (a, b) -> a, LinkedHashMap::new));
    }

    /** One "path = value" line per entry. */
    public String format() {
        StringBuilder sb = new StringBuilder();
        entries.forEach((k, v) -> sb.append(k).append(" = ").append(v.display()).append('\n'));
        return sb.toString();
    }

    /**
     * Reads every root from the running (or powered-off, not yet closed) guest. Cheap: a few hundred
     * small reads. x86_init, once freed, is reported as freed; {@link #read(KernelMemory, DispatchTables)}
     * fills it in from an earlier read.
     */
    public static DispatchTables read(KernelMemory km) { return read(km, null); }

    /**
     * Reads every root, taking the entries of an {@code __initdata} root that free_initmem() has
     * released from {@code beforeFree} (a {@link #readInitData} made before it ran) instead of
     * reporting it as freed. Without such entries (null, or that read failed) the root is one
     * "freed" entry as before.
     */
    public static DispatchTables read(KernelMemory km, DispatchTables beforeFree) {
        Map<String, Value> out = new LinkedHashMap<>();
        Reader r = new Reader(km, out);
        r.root("pv_ops", () -> r.structAt("pv_ops", km.btf().typeOfVariable("pv_ops"), km.symbol("pv_ops")));
        // 7.x keeps the PV spinlock ops apart from pv_ops, in pv_ops_lock (the same struct pv_lock_ops
        // that was pv_ops.lock): reported under pv_ops.lock so that kernels compare entry by entry.
        if (km.hasSymbol(PV_OPS_LOCK))
            r.root("pv_ops.lock", () -> r.structAt("pv_ops.lock", km.btf().typeOfVariable(PV_OPS_LOCK), km.symbol(PV_OPS_LOCK)));
        r.root("static_call", r::staticCalls);
        r.root("apic", () -> r.pointee("apic", km.btf().typeOfVariable("apic"), km.symbol("apic")));
        for (String name : STRUCT_ROOTS) r.root(name, () -> {
            int state = r.freedInitData(name);
            if (state < 0) {
                r.structAt(name, km.btf().typeOfVariable(name), km.symbol(name));
                return;
            }
            Map<String, Value> kept = beforeFree == null ? Map.of() : beforeFree.under(name + ".");
            if (kept.isEmpty()) out.put(name, new Unreadable("__initdata, freed by free_initmem() (system_state " + state + ")"));
            else out.putAll(kept);
        });
        for (String key : STATIC_KEYS) r.root("static_key." + key, () -> r.staticKey(key));
        r.root("clocksource", () -> r.pointee("clocksource", km.btf().typeOfVariable("curr_clocksource"), km.symbol("curr_clocksource")));
        r.root("clockevent", r::clockevents);
        return new DispatchTables(out);
    }

    /**
     * The struct roots that live in the kernel's init sections (x86_init: {@code __initdata},
     * arch/x86/kernel/x86_init.c), read now. Meant for the moment just before free_initmem()
     * (init/main.c, kernel_init) releases them, when they hold every hook the kernel bound at boot;
     * a root read after that is reported as freed.
     */
    public static DispatchTables readInitData(KernelMemory km) {
        Map<String, Value> out = new LinkedHashMap<>();
        Reader r = new Reader(km, out);
        for (String name : STRUCT_ROOTS) r.root(name, () -> {
            if (!r.inInitSections(name)) return;
            // kernel_init sets SYSTEM_FREEING_INITMEM before it calls free_initmem(), and SYSTEM_RUNNING after.
            int state = r.freedInitData(name);
            if (state > r.freeingInitmemState()) out.put(name, new Unreadable("__initdata, freed by free_initmem() (system_state " + state + ")"));
            else r.structAt(name, km.btf().typeOfVariable(name), km.symbol(name));
        });
        return new DispatchTables(out);
    }

    private static final class Reader {
        private final KernelMemory km;
        private final Btf btf;
        private final Map<String, Value> out;

        Reader(KernelMemory km, Map<String, Value> out) {
            this.km = km;
            this.btf = km.btf();
            this.out = out;
        }

        /** Runs one root's reading; if it fails, the root is one Unreadable entry (entries it added before failing stay). */
        void root(String name, Runnable read) {
            try {
                read.run();
            } catch (UnreadableMemoryException | IllegalArgumentException e) {
                out.put(name, new Unreadable(e.getMessage()));
            }
        }

        /** A struct in memory at {@code addr}: its function pointers, recursively. */
        void structAt(String prefix, int type, long addr) {
            long size = btf.sizeOf(type);
            if (size <= 0 || size > 1 << 20) throw new IllegalArgumentException(prefix + " has size " + size);
            walk(prefix, type, km.read(addr, (int) size), 0, 0);
        }

        /** A pointer variable at {@code addr} of type {@code ptrType}: "name" first if the struct has one, then its function pointers. */
        void pointee(String prefix, int ptrType, long addr) {
            if (!(btf.resolve(ptrType) instanceof Ptr p)) throw new IllegalArgumentException(prefix + " is not a pointer but " + btf.describe(ptrType));
            long target = km.u64(addr);
            if (target == 0) {
                out.put(prefix, new Unreadable("NULL"));
                return;
            }
            struct(prefix, p.target(), target);
        }

        /** A struct at {@code target}: its {@code name} (a {@code char *}) first if it has one, then its code pointers. */
        void struct(String prefix, int type, long target) {
            if (btf.resolve(type) instanceof Composite c && c.members().stream().anyMatch(m -> m.name().equals("name"))) {
                Btf.Location loc = btf.member(c, "name");
                Value name = switch (btf.resolve(loc.type())) {
                    case Ptr p -> {
                        long s = km.u64(target + loc.byteOffset());
                        yield s == 0 ? new Unreadable("NULL") : new Text(km.cString(s, MAX_NAME));
                    }
                    default -> new Unreadable("name is a " + btf.describe(loc.type()));
                };
                out.put(prefix + ".name", name);
            }
            structAt(prefix, type, target);
        }

        private void walk(String prefix, int type, byte[] buf, long off, int depth) {
            if (depth > MAX_DEPTH) return;
            switch (btf.resolve(type)) {
                case Composite c when c.name().equals("paravirt_callee_save") -> {
                    Btf.Location func = btf.member(c, "func");
                    code(prefix, buf, off + func.byteOffset());
                }
                case Composite c -> {
                    for (Composite.Member m : c.members()) {
                        if (m.bitfieldSize() != 0 || m.bitOffset() % 8 != 0) continue;
                        walk(m.name().isEmpty() ? prefix : prefix + "." + m.name(), m.type(), buf, off + m.bitOffset() / 8, depth + 1);
                    }
                }
                case Ptr p when btf.isFunctionPointer(p.id()) -> code(prefix, buf, off);
                case Array a when a.count() <= MAX_ARRAY && holdsCode(a.element(), 0) -> {
                    long step = btf.sizeOf(a.element());
                    for (long i = 0; i < a.count(); i++) walk(prefix + "[" + i + "]", a.element(), buf, off + i * step, depth + 1);
                }
                default -> { }
            }
        }

        /** Whether a type contains a function pointer or callee-save slot (so arrays of plain data are skipped). */
        private boolean holdsCode(int type, int depth) {
            if (depth > MAX_DEPTH) return false;
            return switch (btf.resolve(type)) {
                case Ptr p -> btf.isFunctionPointer(p.id());
                case Composite c -> c.name().equals("paravirt_callee_save") || c.members().stream().anyMatch(m -> holdsCode(m.type(), depth + 1));
                case Array a -> holdsCode(a.element(), depth + 1);
                default -> false;
            };
        }

        private void code(String path, byte[] buf, long off) {
            if (off < 0 || off + 8 > buf.length) {
                out.put(path, new Unreadable("outside the struct"));
                return;
            }
            long v = Bytes.le(buf, (int) off, 8);
            out.put(path, new Code(v, km.describe(v)));
        }

        /** Every static call key but the tracepoints', by name. */
        void staticCalls() {
            long func = btf.memberOffset("static_call_key", "func");
            km.symbols().all().stream().map(KernelSymbols.Symbol::name)
                    .filter(n -> n.startsWith("__SCK__") && !n.startsWith("__SCK__tp_func_")).sorted().distinct()
                    .forEach(n -> root("static_call." + n.substring(7), () -> {
                        long v = km.u64(km.symbol(n) + func);
                        out.put("static_call." + n.substring(7), new Code(v, km.describe(v)));
                    }));
        }

        /** A static key's enable count: {@code struct static_key.enabled}, inside {@code .key} for static_key_true/false. */
        void staticKey(String name) {
            if (!km.hasSymbol(name)) {
                out.put("static_key." + name, new Unreadable("absent from this kernel"));
                return;
            }
            Composite c = (Composite) btf.resolve(btf.typeOfVariable(name));
            Btf.Location loc = c.name().equals("static_key") ? btf.member(c, "enabled") : btf.member(c, "key.enabled");
            out.put("static_key." + name, new Count(km.u32(km.symbol(name) + loc.byteOffset())));
        }

        /** Whether {@code name} lives in the kernel's init sections, [__init_begin, __init_end). */
        boolean inInitSections(String name) {
            KernelSymbols s = km.symbols();
            long at = s.require(name);
            if (s.address("__init_begin").isEmpty() || s.address("__init_end").isEmpty()) return false;
            return Long.compareUnsigned(at, s.require("__init_begin")) >= 0 && Long.compareUnsigned(at, s.require("__init_end")) < 0;
        }

        /**
         * The kernel's system_state when {@code name} lives in its init sections and free_initmem()
         * has released them (system_state has reached SYSTEM_FREEING_INITMEM, init/main.c,
         * kernel_init; the value from BTF's enum system_states), else -1.
         */
        int freedInitData(String name) {
            if (!inInitSections(name)) return -1;
            long freeing = freeingInitmemState();
            int state = km.u32(km.symbol("system_state"));
            return freeing < 0 || state < freeing ? -1 : state;
        }

        /** SYSTEM_FREEING_INITMEM's value in this kernel's enum system_states, -1 if it has none. */
        long freeingInitmemState() {
            for (BtfType t : btf.named("system_states"))
                if (t instanceof EnumType e)
                    for (EnumType.Enumerator v : e.values()) if (v.name().equals("SYSTEM_FREEING_INITMEM")) return v.value();
            return -1;
        }

        /** Each online CPU's tick device's clock_event_device. */
        void clockevents() {
            int cpus = km.hasSymbol("nr_cpu_ids") ? km.u32(km.symbol("nr_cpu_ids")) : 1;
            int evtdevType = btf.typeOfVariable("tick_cpu_device");
            long evtdev = btf.member((Composite) btf.resolve(evtdevType), "evtdev").byteOffset();
            int devType = btf.typeId("struct clock_event_device");
            for (int cpu = 0; cpu < Math.min(Math.max(cpus, 1), MAX_CPUS); cpu++) {
                String prefix = "clockevent[" + cpu + "]";
                int c = cpu;
                root(prefix, () -> {
                    long dev = km.u64(km.perCpu("tick_cpu_device", c) + evtdev);
                    if (dev == 0) out.put(prefix, new Unreadable("NULL"));
                    else struct(prefix, devType, dev);
                });
            }
        }
    }
}
