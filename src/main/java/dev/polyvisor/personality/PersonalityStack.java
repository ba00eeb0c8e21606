package dev.polyvisor.personality;

import dev.polyvisor.cpu.GuestContext;
import dev.polyvisor.cpu.InterruptSource;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.cpu.model.CpuModel;
import dev.polyvisor.personality.core.AbiElement;
import dev.polyvisor.personality.core.AbiUsage;
import dev.polyvisor.personality.core.GuestPortIo;
import dev.polyvisor.personality.core.InterruptInjector;
import dev.polyvisor.personality.core.MsrAccess;
import dev.polyvisor.personality.core.PersonalityEnv;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * The personalities of one VM, stacked at successive CPUID bases: {@code hyperv+kvm} puts Hyper-V at
 * 0x40000000 and KVM at 0x40000100, as QEMU/KVM does with Hyper-V enlightenments (pv-abi.md 9).
 *
 * <p>Spec grammar: {@code name[:key=value[,key=value]]('+' ...)}, names bare, kvm, hyperv, xen, vmware, unknown;
 * option {@code base=0x40000100} places a personality explicitly (otherwise the n-th gets
 * 0x40000000 + 0x100·n). Errors are one line each.
 *
 * <p>The stack routes the VMM's requests: MSRs go to the first personality that owns them; VMCALL/VMMCALL
 * goes to the personality with the strongest claim (a Hyper-V hypercall page the guest enabled beats the
 * default), ties going to the highest base - the personality Linux selected. Every routed request is
 * counted in {@link #usage()}.
 */
public final class PersonalityStack {
    private final List<Personality> personalities;
    private final AbiUsage usage;
    /**
     * The ABI element whose hypercall or MSR write is being handled, so that the interrupts, wake-ups and
     * flushes it asks for are attributed to it (null outside one). The vCPUs of a VM share one host
     * thread; with several threads an attribution could be wrong, never a count.
     */
    private String cause;

    private PersonalityStack(List<Personality> personalities, AbiUsage usage) {
        this.personalities = List.copyOf(personalities);
        this.usage = usage;
    }

    public List<Personality> personalities() { return personalities; }

    /**
     * What the guest used of each personality's ABI so far (VMM-side counters, see {@link AbiUsage}):
     * hypervisor-range CPUID leaves, the MSRs a personality handled or refused, hypercalls and backdoor
     * commands by number, personality port I/O, and the interrupts, wake-ups and TLB flushes personalities
     * asked the VMM for, each attributed to an ABI element id through the contracts where one owns it.
     */
    public AbiUsage usage() { return usage; }

    /** Parses a spec and the {@code --abi-disable} ids (each entry may hold several, comma separated). */
    public static List<PersonalityConfig> parse(String spec, Collection<String> abiDisable) {
        if (spec == null || spec.isBlank()) throw new IllegalArgumentException("empty personality spec (known: " + String.join(", ", AbiCatalog.names()) + ")");
        Map<String, PersonalityConfig> byName = new LinkedHashMap<>();
        int next = PersonalityConfig.FIRST_BASE;
        for (String part : spec.trim().split("\\+", -1)) {
            String p = part.trim();
            if (p.isEmpty()) throw new IllegalArgumentException("empty personality name in '" + spec + "'");
            String name = p, opts = "";
            int colon = p.indexOf(':');
            if (colon >= 0) { name = p.substring(0, colon); opts = p.substring(colon + 1); }
            name = name.trim();
            AbiCatalog.contract(name); // unknown name → one-line error
            if (byName.containsKey(name)) throw new IllegalArgumentException("personality '" + name + "' appears twice in '" + spec + "'");
            Map<String, String> options = new HashMap<>();
            if (!opts.isBlank())
                for (String kv : opts.split(",")) {
                    int eq = kv.indexOf('=');
                    if (eq <= 0) throw new IllegalArgumentException("bad option '" + kv + "' for " + name + " (expected key=value)");
                    options.put(kv.substring(0, eq).trim(), kv.substring(eq + 1).trim());
                }
            int base = next;
            String b = options.remove("base");
            if (b != null) base = parseBase(name, b);
            checkOptions(name, options);
            byName.put(name, new PersonalityConfig(name, base, Set.of(), options));
            next = base + 0x100;
        }
        if (byName.containsKey("bare") && byName.size() > 1)
            throw new IllegalArgumentException("'bare' cannot be stacked with other personalities");
        Set<Integer> bases = new TreeSet<>();
        for (PersonalityConfig c : byName.values())
            if (!c.name().equals("bare") && !bases.add(c.base()))
                throw new IllegalArgumentException(String.format("two personalities at CPUID base 0x%x in '%s'", c.base(), spec));

        Map<String, Set<String>> disabled = new HashMap<>();
        for (String entry : abiDisable)
            for (String raw : entry.split(",")) {
                String id = raw.trim();
                if (id.isEmpty()) continue;
                int dot = id.indexOf('.');
                String owner = dot < 0 ? id : id.substring(0, dot);
                if (AbiCatalog.element(id).isEmpty())
                    throw new IllegalArgumentException("unknown ABI element '" + id + "' (see 'polyvisor abi list')");
                if (!byName.containsKey(owner))
                    throw new IllegalArgumentException("ABI element '" + id + "' belongs to " + owner + ", which is not in '" + spec + "'");
                disabled.computeIfAbsent(owner, k -> new TreeSet<>()).add(id);
            }
        List<PersonalityConfig> out = new ArrayList<>();
        for (PersonalityConfig c : byName.values()) out.add(c.withDisabled(disabled.getOrDefault(c.name(), Set.of())));
        return out;
    }

    private static int parseBase(String name, String s) {
        try {
            String t = s.toLowerCase().startsWith("0x") ? s.substring(2) : s;
            return Integer.parseUnsignedInt(t, 16);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("bad CPUID base '" + s + "' for " + name + " (expected hex like 0x40000100)");
        }
    }

    private static void checkOptions(String name, Map<String, String> options) {
        Set<String> allowed = switch (name) {
            case "vmware" -> Set.of("backdoor");
            default -> Set.of();
        };
        String backdoor = options.get("backdoor");
        if (backdoor != null && !Set.of("port", "vmcall", "vmmcall").contains(backdoor))
            throw new IllegalArgumentException("vmware backdoor must be port, vmcall or vmmcall, not '" + backdoor + "'");
        for (String k : options.keySet())
            if (!allowed.contains(k))
                throw new IllegalArgumentException("unknown option '" + k + "' for " + name
                        + (allowed.isEmpty() ? " (it takes only base=)" : " (known: base, " + String.join(", ", allowed) + ")"));
    }

    public static PersonalityStack build(List<PersonalityConfig> configs, PersonalityEnv env) {
        AbiUsage usage = new AbiUsage();
        List<Personality> ps = new ArrayList<>();
        PersonalityStack[] self = new PersonalityStack[1];
        for (PersonalityConfig c : configs) {
            PersonalityEnv counted = new PersonalityEnv(env.memory(), env.clock(),
                    new CountingInjector(env.injector(), c.name(), usage, () -> self[0] == null ? null : self[0].cause),
                    env.vcpus(), env.amdVendor(), env.apicBusHz(), env.utcNanos());
            ps.add(create(c, counted));
        }
        self[0] = new PersonalityStack(ps, usage);
        return self[0];
    }

    public static PersonalityStack of(String spec, Collection<String> abiDisable, PersonalityEnv env) {
        return build(parse(spec, abiDisable), env);
    }

    static Personality create(PersonalityConfig c, PersonalityEnv env) {
        return switch (c.name()) {
            case "bare" -> new BarePersonality(c);
            case "kvm" -> new KvmPersonality(c, env);
            case "hyperv" -> new HypervPersonality(c, env);
            case "xen" -> new XenPersonality(c, env);
            case "vmware" -> new VmwarePersonality(c, env);
            case "unknown" -> new UnknownPersonality(c);
            default -> throw new IllegalArgumentException(AbiCatalog.unknownPersonality(c.name()));
        };
    }

    public CpuidTable cpuidTable(CpuModel base, int vcpus) { return new CpuidTable(base, personalities, vcpus, usage); }

    public <T extends Personality> Optional<T> find(Class<T> type) {
        return personalities.stream().filter(type::isInstance).map(type::cast).findFirst();
    }

    public MsrAccess rdmsr(int vcpu, int index) {
        for (Personality p : personalities) {
            MsrAccess a = p.rdmsr(vcpu, index);
            if (!(a instanceof MsrAccess.NotHandled)) {
                usage.add(p.name(), a instanceof MsrAccess.Gp ? AbiUsage.Kind.RDMSR_GP : AbiUsage.Kind.RDMSR,
                        Integer.toUnsignedLong(index), AbiUsage.ANY, msrElement(p, index));
                return a;
            }
        }
        return MsrAccess.NOT_HANDLED;
    }

    public MsrAccess wrmsr(int vcpu, int index, long value) {
        for (Personality p : personalities) {
            String element = msrElement(p, index);
            String outer = cause;
            cause = element;
            MsrAccess a;
            try {
                a = p.wrmsr(vcpu, index, value);
            } finally {
                cause = outer;
            }
            if (!(a instanceof MsrAccess.NotHandled)) {
                usage.add(p.name(), a instanceof MsrAccess.Gp ? AbiUsage.Kind.WRMSR_GP : AbiUsage.Kind.WRMSR,
                        Integer.toUnsignedLong(index), AbiUsage.ANY, element);
                return a;
            }
        }
        return MsrAccess.NOT_HANDLED;
    }

    /** The element of {@code p}'s contract that owns MSR {@code index}, or null. */
    static String msrElement(Personality p, int index) {
        for (AbiElement e : p.contract().elements()) if (e.msrs().contains(index)) return e.id();
        return null;
    }

    /** The element of {@code p}'s contract whose hypercall list covers {@code call}, or null. */
    static String callElement(Personality p, AbiUsage.Call call) {
        for (AbiElement e : p.contract().elements())
            for (AbiElement.HypercallRef h : e.hypercalls())
                if (call.number() >= 0 && call.number() <= Integer.MAX_VALUE && h.covers((int) call.number(), call.subop())) return e.id();
        return null;
    }

    /** Routes VMCALL/VMMCALL; false (no claimant) means #UD. */
    public boolean hypercall(VcpuExit.Hypercall call) {
        int vcpu = call.context().vcpuId();
        Personality best = null;
        int bestClaim = Personality.CLAIM_NONE;
        for (Personality p : personalities) {
            int claim = p.hypercallClaim(vcpu);
            if (claim > bestClaim || (claim == bestClaim && claim > 0 && p.base() > best.base())) {
                best = p;
                bestClaim = claim;
            }
        }
        if (best == null) {
            usage.add(AbiUsage.NONE, AbiUsage.Kind.HYPERCALL, call.context().reg(0), AbiUsage.ANY, null);
            return false;
        }
        AbiUsage.Call c = best.abiCall(call.context());
        String element = callElement(best, c);
        usage.add(best.name(), AbiUsage.Kind.HYPERCALL, c.number(), c.subop(), element);
        String outer = cause;
        cause = element;
        try {
            return best.hypercall(call);
        } finally {
            cause = outer;
        }
    }

    /**
     * The personality port handler claiming {@code port}, if any (the VMware backdoor 0x5658, Xen's
     * platform ports), wrapped so that each access is counted: a backdoor IN as the command it carries.
     */
    public Optional<GuestPortIo> portIo(int port) {
        for (Personality p : personalities) {
            Optional<GuestPortIo> io = p.portIo();
            if (io.isPresent() && io.get().claims(port)) return Optional.of(new CountingPortIo(p, io.get()));
        }
        return Optional.empty();
    }

    /** A personality's pseudo-performance counter {@code index} (see {@link Personality#pseudoCounter}), counted as a backdoor call. */
    public java.util.OptionalLong pseudoCounter(int vcpu, int index) {
        for (Personality p : personalities) {
            java.util.OptionalLong v = p.pseudoCounter(vcpu, index);
            if (v.isPresent()) {
                usage.add(p.name(), AbiUsage.Kind.BACKDOOR, index, AbiUsage.ANY, callElement(p, AbiUsage.Call.of(index)));
                return v;
            }
        }
        return java.util.OptionalLong.empty();
    }

    /** Whether some personality defines pseudo-counter {@code index} (not counted: the CPU's privilege check asks). */
    public boolean hasPseudoCounter(int index) {
        for (Personality p : personalities) if (p.hasPseudoCounter(index)) return true;
        return false;
    }

    /** Whether the hypervisor whose emulator completes MMIO instructions reads REX.W far pointers as m16:64. */
    public boolean mmioFarPointersHonourRexW() {
        for (Personality p : personalities) if (p.mmioFarPointersHonourRexW()) return true;
        return false;
    }

    private final class CountingPortIo implements GuestPortIo {
        private final Personality owner;
        private final GuestPortIo io;

        CountingPortIo(Personality owner, GuestPortIo io) { this.owner = owner; this.io = io; }

        @Override public boolean claims(int port) { return io.claims(port); }

        @Override public boolean openToAllPrivilegeLevels(int port) { return io.openToAllPrivilegeLevels(port); }

        @Override
        public long in(GuestContext ctx, int port, int size) {
            if (owner instanceof VmwarePersonality) {
                AbiUsage.Call c = owner.abiCall(ctx);
                usage.add(owner.name(), AbiUsage.Kind.BACKDOOR, c.number(), c.subop(), callElement(owner, c));
            } else {
                usage.add(owner.name(), AbiUsage.Kind.PORT_IN, port, AbiUsage.ANY, portElement(owner));
            }
            return io.in(ctx, port, size);
        }

        @Override
        public void out(GuestContext ctx, int port, int size, long value) {
            usage.add(owner.name(), AbiUsage.Kind.PORT_OUT, port, AbiUsage.ANY, portElement(owner));
            io.out(ctx, port, size, value);
        }
    }

    /** The contract's element of kind PORT when there is exactly one, else null. */
    private static String portElement(Personality p) {
        List<AbiElement> ports = p.contract().elements().stream().filter(e -> e.kind() == AbiElement.Kind.PORT).toList();
        return ports.size() == 1 ? ports.getFirst().id() : null;
    }

    /** The VMM callbacks of one personality, counted (kind, vector) and attributed to the element being handled. */
    private record CountingInjector(InterruptInjector inner, String personality, AbiUsage usage,
                                    java.util.function.Supplier<String> cause) implements InterruptInjector {
        @Override public void fixed(int vcpu, int vector) { count(AbiUsage.Kind.INJECT_FIXED, vector & 0xFF); inner.fixed(vcpu, vector); }

        @Override public void nmi(int vcpu) { count(AbiUsage.Kind.INJECT_NMI, 2); inner.nmi(vcpu); }

        @Override public void setAutoEoiVectors(int vcpu, long[] vectors) { inner.setAutoEoiVectors(vcpu, vectors); }

        @Override public void upcall(int vcpu, int vector) { count(AbiUsage.Kind.UPCALL, vector & 0xFF); inner.upcall(vcpu, vector); }

        @Override public void wake(int vcpu) { count(AbiUsage.Kind.WAKE, 0); inner.wake(vcpu); }

        @Override public void flushTlb(int vcpu) { count(AbiUsage.Kind.FLUSH_TLB, 0); inner.flushTlb(vcpu); }

        @Override
        public void block(int vcpu, boolean ignoreIf, java.util.function.BooleanSupplier until, long deadlineNs) {
            count(AbiUsage.Kind.BLOCK, 0);
            inner.block(vcpu, ignoreIf, until, deadlineNs);
        }

        @Override public void shutdown(String reason) { inner.shutdown(reason); }

        @Override
        public void sharedUpdate(String element, AbiUsage.Structure structure) {
            usage.add(personality, AbiUsage.Kind.SHARED_UPDATE, structure.ordinal(), AbiUsage.ANY, element);
            inner.sharedUpdate(element, structure);
        }

        private void count(AbiUsage.Kind kind, long number) { usage.add(personality, kind, number, AbiUsage.ANY, cause.get()); }
    }

    public void onTick(long nowNs) { for (Personality p : personalities) p.onTick(nowNs); }

    public long nextDeadlineNs() {
        long d = Long.MAX_VALUE;
        for (Personality p : personalities) d = Math.min(d, p.nextDeadlineNs());
        return d;
    }

    public void addSteal(int vcpu, long ns) { for (Personality p : personalities) p.addSteal(vcpu, ns); }

    public boolean consumeUnhalt(int vcpu) {
        boolean any = false;
        for (Personality p : personalities) any |= p.consumeUnhalt(vcpu);
        return any;
    }

    /** True when a HLT with IF=0 can still end: some personality offers PV unhalt and there is another vCPU to kick. */
    public boolean canUnhalt(int vcpus) {
        if (vcpus < 2) return false;
        for (Personality p : personalities) if (p.offersUnhalt()) return true;
        return false;
    }

    /**
     * The vCPU's interrupt source as the personalities extend it: with an upcall-capable personality (Xen),
     * its callback vector comes first while pending; otherwise {@code lapic} itself.
     */
    public InterruptSource interruptSource(int vcpu, InterruptSource lapic) {
        List<Personality> upcalls = personalities.stream().filter(p -> p instanceof XenPersonality).toList();
        return upcalls.isEmpty() ? lapic : new UpcallInterruptSource(vcpu, upcalls, lapic);
    }

    public boolean upcallPending(int vcpu) {
        for (Personality p : personalities) if (p.upcallPending(vcpu)) return true;
        return false;
    }
}
