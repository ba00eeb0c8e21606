package dev.polyvisor.vmm;

import dev.polyvisor.cpu.Platform;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.memory.MmioHandler;
import dev.polyvisor.memory.MmioRegion;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

import static org.junit.jupiter.api.Assertions.*;

class LockedPlatformTest {
    @Test
    void everyPlatformMethodIsOverriddenSoNoExitBypassesTheLock() throws Exception {
        List<String> missing = new ArrayList<>();
        for (Method m : Platform.class.getMethods()) {
            if (Modifier.isStatic(m.getModifiers())) continue;
            try {
                Method o = LockedPlatform.class.getDeclaredMethod(m.getName(), m.getParameterTypes());
                assertFalse(o.isDefault());
            } catch (NoSuchMethodException e) {
                missing.add(m.getName());
            }
        }
        assertEquals(List.of(), missing, "Platform methods LockedPlatform does not override");
    }

    @Test
    void exitsRunHoldingTheBigLockAndReleaseIt() {
        ReentrantLock bql = new ReentrantLock();
        List<String> held = new ArrayList<>();
        Platform inner = new Platform() {
            private long note(String what) { if (bql.isHeldByCurrentThread()) held.add(what); return 0; }
            @Override public long portIn(int port, int size) { return note("in"); }
            @Override public void portOut(int port, int size, long value) { note("out"); }
            @Override public int[] cpuid(int vcpuId, int leaf, int subleaf) { note("cpuid"); return new int[4]; }
            @Override public MsrResult rdmsr(int vcpuId, int index) { note("rdmsr"); return MsrResult.gp(); }
            @Override public boolean wrmsr(int vcpuId, int index, long value) { note("wrmsr"); return false; }
            @Override public boolean hypercall(VcpuExit.Hypercall call) { note("hypercall"); return false; }
            @Override public long tsc(int vcpuId) { return 0; }
            @Override public long mmioRead(MmioRegion r, long offset, int size) { return note("mmio read"); }
            @Override public void mmioWrite(MmioRegion r, long offset, int size, long v) { note("mmio write"); }
            @Override public long unassignedMmio(VcpuExit.Mmio access) { return note("unassigned"); }
        };
        LockedPlatform p = new LockedPlatform(inner, bql);
        MmioRegion region = new MmioRegion("dev", 0x1000, 0x1000, new MmioHandler() {
            @Override public long read(long offset, int size) { return 0; }
            @Override public void write(long offset, int size, long value) { }
        });
        p.portIn(0x3F8, 1);
        p.portOut(0x3F8, 1, 0);
        p.cpuid(0, 0, 0);
        p.rdmsr(0, 0x10);
        p.wrmsr(0, 0x10, 0);
        p.hypercall(null);
        p.mmioRead(region, 0, 4);
        p.mmioWrite(region, 0, 4, 0);
        p.unassignedMmio(new VcpuExit.Mmio(0, 1, false, 0));
        assertEquals(List.of("in", "out", "cpuid", "rdmsr", "wrmsr", "hypercall", "mmio read", "mmio write", "unassigned"), held);
        assertFalse(bql.isLocked(), "released after each exit");
    }
}
