package dev.polyvisor.kernel;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The C types of the kernel globals this package reads. vmlinux BTF has a BTF_KIND_VAR only for
 * per-CPU variables (pahole emits the {@code .data..percpu} DATASEC and nothing else), so the type
 * of an ordinary global comes from here, as written in the Linux 6.1 source cited beside each.
 */
public final class KernelVariables {
    private KernelVariables() {}

    private static final Map<String, String> TYPES = new LinkedHashMap<>();

    static {
        // arch/x86/kernel/paravirt.c
        TYPES.put("pv_ops", "struct paravirt_patch_template");
        // 7.x (Debian's 7.2): the PV spinlock ops are a variable of their own beside pv_ops, of the type
        // 6.1's pv_ops.lock member has (arch/x86/include/asm/paravirt_types.h)
        TYPES.put("pv_ops_lock", "struct pv_lock_ops");
        TYPES.put("paravirt_steal_enabled", "struct static_key");
        TYPES.put("paravirt_steal_rq_enabled", "struct static_key");
        // arch/x86/kernel/x86_init.c
        TYPES.put("x86_platform", "struct x86_platform_ops");
        TYPES.put("x86_init", "struct x86_init_ops");
        TYPES.put("x86_cpuinit", "struct x86_cpuinit_ops");
        // arch/x86/kernel/apic/apic_flat_64.c: struct apic *apic __ro_after_init = &apic_flat
        TYPES.put("apic", "struct apic *");
        // arch/x86/kernel/paravirt.c, DEFINE_STATIC_KEY_TRUE(virt_spin_lock_key)
        TYPES.put("virt_spin_lock_key", "struct static_key_true");
        // arch/x86/kernel/tsc.c, static DEFINE_STATIC_KEY_FALSE(__use_tsc)
        TYPES.put("__use_tsc", "struct static_key_false");
        // arch/x86/kernel/kvm.c, DEFINE_STATIC_KEY_FALSE(kvm_async_pf_enabled)
        TYPES.put("kvm_async_pf_enabled", "struct static_key_false");
        // kernel/time/clocksource.c
        TYPES.put("curr_clocksource", "struct clocksource *");
        // arch/x86/kernel/setup_percpu.c, include/asm-generic/percpu.h: unsigned long __per_cpu_offset[NR_CPUS]
        TYPES.put("nr_cpu_ids", "unsigned int");
        // arch/x86/kernel/head64.c; arch/x86/mm/kaslr.c
        TYPES.put("phys_base", "unsigned long");
        TYPES.put("page_offset_base", "unsigned long");
    }

    /** The C type of {@code name}, e.g. {@code struct apic *} for {@code apic}. */
    public static Optional<String> typeOf(String name) { return Optional.ofNullable(TYPES.get(name)); }

    public static Map<String, String> all() { return java.util.Collections.unmodifiableMap(TYPES); }
}
