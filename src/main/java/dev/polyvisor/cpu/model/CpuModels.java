package dev.polyvisor.cpu.model;

import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The CPU models Polyvisor offers, chosen as QEMU spells them ({@code -cpu MODEL[,+FEATURE][,-FEATURE]
 * [,FEATURE=on|off][,vendor=VENDOR]}, QEMU docs "x86 CPU models"): {@code qemu64} (the default),
 * {@code max} and the named model {@code Opteron_G1}. A feature is added only if the emulated CPU implements it; any other request is a
 * one-line {@link IllegalArgumentException}, since a guest that is told about a feature will use it.
 * Removing a feature the model does not have is allowed whatever its name (it is already absent).
 */
public final class CpuModels {
    private CpuModels() {}

    public static final String DEFAULT = "qemu64";

    /** QEMU's feature names (target/i386/cpu.c feature_word_info) of the features the CPU implements. */
    private static final Map<String, CpuFeature> OFFERED = offered();

    private static Map<String, CpuFeature> offered() {
        Map<String, CpuFeature> m = new TreeMap<>();
        m.put("fpu", CpuFeature.FPU); m.put("de", CpuFeature.DE); m.put("pse", CpuFeature.PSE);
        m.put("tsc", CpuFeature.TSC); m.put("msr", CpuFeature.MSR); m.put("pae", CpuFeature.PAE);
        m.put("cx8", CpuFeature.CX8); m.put("apic", CpuFeature.APIC); m.put("sep", CpuFeature.SEP);
        m.put("mtrr", CpuFeature.MTRR); m.put("pge", CpuFeature.PGE); m.put("cmov", CpuFeature.CMOV);
        m.put("pat", CpuFeature.PAT); m.put("pse36", CpuFeature.PSE36); m.put("clflush", CpuFeature.CLFSH);
        m.put("mmx", CpuFeature.MMX); m.put("fxsr", CpuFeature.FXSR); m.put("sse", CpuFeature.SSE);
        m.put("sse2", CpuFeature.SSE2); m.put("syscall", CpuFeature.SYSCALL); m.put("nx", CpuFeature.NX);
        m.put("xd", CpuFeature.NX); m.put("lm", CpuFeature.LM); m.put("i64", CpuFeature.LM);
        m.put("lahf-lm", CpuFeature.LAHF_LM); m.put("lahf_lm", CpuFeature.LAHF_LM);
        m.put("invtsc", CpuFeature.INVARIANT_TSC); m.put("rdtscp", CpuFeature.RDTSCP); m.put("umip", CpuFeature.UMIP);
        m.put("tsc-deadline", CpuFeature.TSC_DEADLINE); m.put("tsc_deadline", CpuFeature.TSC_DEADLINE);
        m.put("pdpe1gb", CpuFeature.PDPE1GB); m.put("erms", CpuFeature.ERMS); m.put("fsrm", CpuFeature.FSRM);
        m.put("rdpid", CpuFeature.RDPID); m.put("pcid", CpuFeature.PCID); m.put("invpcid", CpuFeature.INVPCID);
        m.put("x2apic", CpuFeature.X2APIC);
        m.put("smep", CpuFeature.SMEP); m.put("smap", CpuFeature.SMAP); m.put("pku", CpuFeature.PKU); m.put("pks", CpuFeature.PKS);
        m.put("tsc-adjust", CpuFeature.TSC_ADJUST); m.put("tsc_adjust", CpuFeature.TSC_ADJUST);
        return m;
    }

    /** Parses a {@code --cpu} spec; the message of the exception is the whole one-line complaint. */
    public static CpuModel parse(String spec) {
        String s = spec == null || spec.isBlank() ? DEFAULT : spec.trim();
        String[] parts = s.split(",");
        CpuModel m = switch (parts[0].toLowerCase(Locale.ROOT)) {
            case "qemu64" -> CpuModel.qemu64();
            case "max" -> CpuModel.max();
            case "opteron_g1" -> CpuModel.opteronG1();
            case "host" -> throw new IllegalArgumentException(
                    "CPU model 'host' passes the host CPU through a hardware accelerator; Polyvisor emulates the CPU (use max)");
            default -> throw new IllegalArgumentException("unknown CPU model '" + parts[0] + "' (Polyvisor offers qemu64, max and Opteron_G1)");
        };
        for (int i = 1; i < parts.length; i++) {
            String p = parts[i].trim();
            if (p.isEmpty()) continue;
            if (p.startsWith("+")) m = add(m, p.substring(1));
            else if (p.startsWith("-")) m = remove(m, p.substring(1));
            else if (p.contains("=")) {
                String k = p.substring(0, p.indexOf('=')), v = p.substring(p.indexOf('=') + 1);
                if (k.equals("force-emulation-prefix")) {
                    // Not a CPUID feature: KVM's module parameter force_emulation_prefix, offered per VM here.
                    if (!v.equals("on") && !v.equals("off")) throw new IllegalArgumentException("force-emulation-prefix must be on or off, got '" + v + "'");
                    m = m.withForceEmulationPrefix(v.equals("on"));
                } else if (k.equals("vendor")) {
                    if (v.length() != 12) throw new IllegalArgumentException("vendor must be 12 characters, got '" + v + "'");
                    m = m.withVendor(v);
                } else if (v.equals("on") || v.equals("true")) m = add(m, k);
                else if (v.equals("off") || v.equals("false")) m = remove(m, k);
                else throw new IllegalArgumentException("CPU property '" + p + "' is not offered");
            } else m = add(m, p);
        }
        return m;
    }

    private static CpuModel add(CpuModel m, String name) {
        CpuFeature f = OFFERED.get(name.toLowerCase(Locale.ROOT));
        if (f == null)
            throw new IllegalArgumentException("CPU feature '" + name + "' is not offered: Polyvisor does not implement it");
        return m.with(f);
    }

    private static CpuModel remove(CpuModel m, String name) {
        CpuFeature f = OFFERED.get(name.toLowerCase(Locale.ROOT));
        return f == null ? m : m.without(f);
    }
}
