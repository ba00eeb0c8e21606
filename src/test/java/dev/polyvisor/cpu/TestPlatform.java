package dev.polyvisor.cpu;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;

/** A Platform for CPU tests: records port writes, answers CPUID from a fixed model, #GP for unknown MSRs. */
public class TestPlatform implements Platform {
    public final ByteArrayOutputStream console = new ByteArrayOutputStream();
    public final List<long[]> outs = new ArrayList<>();
    public int exitCode = -1;

    @Override public long portIn(int port, int size) { return -1L; }

    @Override public void portOut(int port, int size, long value) {
        outs.add(new long[] {port, size, value});
        if (port == 0x3F8 || port == 0xE9) console.write((int) value);
        if (port == 0xF4) exitCode = (int) ((value << 1) | 1);
    }

    @Override public int[] cpuid(int vcpuId, int leaf, int subleaf) { return new int[4]; }
    @Override public MsrResult rdmsr(int vcpuId, int index) { return MsrResult.gp(); }
    @Override public boolean wrmsr(int vcpuId, int index, long value) { return false; }
    /** Performance counters RDPMC can read (index = ECX); any other index is #GP(0). */
    public long[] pmc = {};
    @Override public MsrResult rdpmc(int vcpuId, int index) {
        if (index == pseudoPmc) return MsrResult.of(pseudoPmcValue);
        return index >= 0 && index < pmc.length ? MsrResult.of(pmc[index]) : MsrResult.gp();
    }
    /** A hypervisor pseudo-counter index readable at any CPL (-1: none), and the value it reads. */
    public int pseudoPmc = -1;
    public long pseudoPmcValue;
    @Override public boolean pseudoCounter(int index) { return index == pseudoPmc; }
    /** An I/O port open to every privilege level (-1: none), as a hypervisor backdoor. */
    public int openPort = -1;
    @Override public boolean portOpenToAllPrivilegeLevels(int port) { return port == openPort; }
    /** Answers {@link Platform#mmioFarPointersHonourRexW}: a KVM-like emulator completes MMIO instructions. */
    public boolean kvmEmulatorForMmio;
    @Override public boolean mmioFarPointersHonourRexW() { return kvmEmulatorForMmio; }
    public long tscValue;
    @Override public long tsc(int vcpuId) { return tscValue += 1000; }
    @Override public boolean hypercall(VcpuExit.Hypercall call) { return false; }

    public String consoleText() { return console.toString(java.nio.charset.StandardCharsets.ISO_8859_1); }
}
