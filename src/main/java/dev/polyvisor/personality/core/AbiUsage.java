package dev.polyvisor.personality.core;

import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * How much a guest used each ABI element, counted on the VMM side: CPUID leaves in the hypervisor range,
 * MSR reads and writes (and the #GP a disabled one raises), hypercalls and backdoor commands by number,
 * port I/O to a personality's ports, and the interrupts, wake-ups and TLB flushes a personality asked the
 * VMM for. Each count is keyed by the personality that handled it ({@value #NONE} when none did), the
 * kind of access, its number (MSR index, hypercall number, vector, port, leaf; for CPUID leaves no personality
 * owns, the offset within a base, since Linux probes the signature at all 256 bases), the sub-operation where the
 * ABI has one (Xen's command argument) and the ABI element id the contract attributes it to (null when no
 * single element owns it). Thread-safe; adding is a hash lookup and a {@link LongAdder} increment.
 */
public final class AbiUsage {
    /** The owner of accesses no personality claimed (e.g. CPUID leaves between bases, VMCALL on bare). */
    public static final String NONE = "none";
    /** The sub-operation of an ABI with none. */
    public static final int ANY = AbiElement.HypercallRef.ANY;

    /** What sort of use. The name in lower case with '-' is what reports print. */
    public enum Kind {
        CPUID, RDMSR, WRMSR, RDMSR_GP, WRMSR_GP, HYPERCALL, BACKDOOR, PORT_IN, PORT_OUT,
        INJECT_FIXED, INJECT_NMI, UPCALL, WAKE, FLUSH_TLB, BLOCK, SHARED_UPDATE;

        public String label() { return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-'); }
    }

    /**
     * Guest structures the VMM writes on a personality's behalf: the number of a {@link Kind#SHARED_UPDATE}
     * counter (its ordinal), counted once per (re)write of the structure, each seqlock-protected update
     * or message being one. The label is what reports print.
     */
    public enum Structure {
        /** pvclock_vcpu_time_info (KVM MSR_KVM_SYSTEM_TIME; Xen vcpu_info.time and VCPUOP_register_vcpu_time_memory_area). */
        PVCLOCK,
        /** pvclock_wall_clock (KVM MSR_KVM_WALL_CLOCK; Xen shared_info.wc_*). */
        WALL_CLOCK,
        /** KVM struct kvm_steal_time. */
        STEAL_TIME,
        /** Hyper-V reference TSC page (TLFS 12.7). */
        REFERENCE_TSC,
        /** A Hyper-V SynIC message slot (TLFS 11.8: HVMSG_TIMER_EXPIRED, messages of host-side connections). */
        SYNIC_MESSAGE,
        /** Xen shared_info placed or moved (XENMAPSPACE_shared_info). */
        SHARED_INFO,
        /** Xen vcpu_info placed or moved (VCPUOP_register_vcpu_info). */
        VCPU_INFO,
        /** Xen vcpu_runstate_info. */
        RUNSTATE,
        /** Xen event channel pending bits and the vCPU's pending selector/upcall flag. */
        EVENT_CHANNEL,
        /** VMware struct vmware_steal_time. */
        STEAL_CLOCK,
        /** A Hyper-V SynIC event flags slot (TLFS 11.9, SIEFP; HvSignalEvent, host-side connections). */
        SYNIC_EVENT_FLAGS;

        public String label() { return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-'); }

        /** The label of a SHARED_UPDATE counter's number, or the number itself if it names no structure. */
        public static String label(long number) {
            Structure[] all = values();
            return number >= 0 && number < all.length ? all[(int) number].label() : Long.toString(number);
        }
    }

    /** A call's number and sub-operation, read from the guest's registers before it is handled. */
    public record Call(long number, int subop) {
        public static Call of(long number) { return new Call(number, ANY); }
    }

    /** One counter's identity. {@code element} may be null. */
    public record Key(String personality, Kind kind, long number, int subop, String element) {
        public Key { Objects.requireNonNull(personality); Objects.requireNonNull(kind); }

        /** Stable report order: personality, kind, number, sub-operation, element. */
        public static final Comparator<Key> ORDER = Comparator.comparing(Key::personality).thenComparing(Key::kind)
                .thenComparingLong(Key::number).thenComparingInt(Key::subop)
                .thenComparing(Key::element, Comparator.nullsFirst(Comparator.naturalOrder()));
    }

    /** A counter's value at the time of {@link #snapshot()}. */
    public record Count(Key key, long count) {}

    private final ConcurrentHashMap<Key, LongAdder> counts = new ConcurrentHashMap<>();

    public void add(String personality, Kind kind, long number, int subop, String element) {
        counts.computeIfAbsent(new Key(personality, kind, number, subop, element), k -> new LongAdder()).increment();
    }

    /** Every non-zero counter, in {@link Key#ORDER}. */
    public List<Count> snapshot() {
        return counts.entrySet().stream().map(e -> new Count(e.getKey(), e.getValue().sum()))
                .filter(c -> c.count() != 0).sorted(Comparator.comparing(Count::key, Key.ORDER)).toList();
    }

    /** The count of one key (0 when never seen). */
    public long count(Key key) {
        LongAdder a = counts.get(key);
        return a == null ? 0 : a.sum();
    }

    /** The sum over every key of {@code personality} and {@code kind} with {@code number}, whatever sub-operation or element. */
    public long total(String personality, Kind kind, long number) {
        long n = 0;
        for (Map.Entry<Key, LongAdder> e : counts.entrySet()) {
            Key k = e.getKey();
            if (k.personality().equals(personality) && k.kind() == kind && k.number() == number) n += e.getValue().sum();
        }
        return n;
    }

    public void reset() { counts.clear(); }
}
