package dev.polyvisor.cpu.model;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

/** The qemu64-derived model of reference/cpu-design.md 2.2 (QEMU target/i386/cpu.c "qemu64"). */
class CpuModelTest {
    final CpuModel m = CpuModel.qemu64();

    static String regs(int a, int b, int c) {
        return new String(ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt(a).putInt(b).putInt(c).array(), StandardCharsets.US_ASCII);
    }

    @Test
    void vendorAndSignatureAreQemu64() {
        int[] r = m.leaf(0, 0, 0, 1);
        assertEquals(7, r[0]);
        assertEquals("AuthenticAMD", regs(r[1], r[3], r[2]));
        assertEquals(0x60FB1, m.leaf(1, 0, 0, 1)[0], "family 15 model 107 stepping 1, as QEMU's qemu64");
        int[] e = m.leaf(0x80000000, 0, 0, 1);
        assertEquals(0x80000008, e[0]);
        assertEquals("AuthenticAMD", regs(e[1], e[3], e[2]));
    }

    @Test
    void leaf1AdvertisesExactlyTheImplementedSet() {
        int[] r = m.leaf(1, 0, 0, 1);
        // FPU DE PSE TSC MSR PAE CX8 APIC SEP MTRR PGE CMOV PAT PSE36 CLFSH MMX FXSR SSE SSE2
        int expected = 1 | 1 << 2 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 8 | 1 << 9 | 1 << 11 | 1 << 12 | 1 << 13
                | 1 << 15 | 1 << 16 | 1 << 17 | 1 << 19 | 1 << 23 | 1 << 24 | 1 << 25 | 1 << 26;
        assertEquals(expected, r[3]);
        assertEquals(0, r[2], "no SSE3/SSSE3/CX16/XSAVE/AVX/RDRAND/TSC-deadline/x2APIC, and no hypervisor bit from the model");
        assertThrows(IllegalArgumentException.class, () -> m.with(CpuFeature.HYPERVISOR));
    }

    @Test
    void leaf1EbxCarriesApicIdLogicalCountAndClflushSize() {
        int[] r = m.leaf(1, 0, 3, 4);
        assertEquals(3, r[1] >>> 24);
        assertEquals(4, (r[1] >>> 16) & 0xFF);
        assertEquals(8, (r[1] >>> 8) & 0xFF, "CLFLUSH line 64 bytes");
        assertNotEquals(0, r[3] & CpuFeature.HTT.mask(), "HTT with more than one logical CPU");
        assertEquals(0, m.leaf(1, 0, 0, 1)[3] & CpuFeature.HTT.mask());
        int[] x = m.leaf(0x80000008, 0, 3, 4);
        assertEquals(3, x[2] & 0xFF, "cores - 1");
        assertEquals(2, (x[2] >>> 12) & 0xF, "APIC ID size");
    }

    @Test
    void extendedLeavesDescribeLongModeCachesAndAddressSizes() {
        int[] e1 = m.leaf(0x80000001, 0, 0, 1);
        assertNotEquals(0, e1[3] & 1 << 11, "SYSCALL");
        assertNotEquals(0, e1[3] & 1 << 20, "NX");
        assertNotEquals(0, e1[3] & 1 << 29, "LM");
        assertEquals(m.leaf(1, 0, 0, 1)[3] & CpuModel.AMD_EDX_ALIASES, e1[3] & CpuModel.AMD_EDX_ALIASES, "AMD aliases of leaf 1");
        assertEquals(1, e1[2], "LAHF_LM only");
        assertEquals(512, m.caches().l2KiB());
        assertEquals(16 * 1024, m.caches().l3KiB());
        assertNotEquals(0, m.leaf(0x80000005, 0, 0, 1)[2] >>> 24, "L1D size");
        assertEquals(1 << 8, m.leaf(0x80000007, 0, 0, 1)[3], "invariant TSC");
        assertEquals(40 | 48 << 8, m.leaf(0x80000008, 0, 0, 1)[0]);
        StringBuilder brand = new StringBuilder();
        for (int l = 0x80000002; l <= 0x80000004; l++) {
            int[] r = m.leaf(l, 0, 0, 1);
            brand.append(regs(r[0], r[1], r[2])).append(regs(r[3], 0, 0), 0, 4);
        }
        assertEquals(m.brand(), brand.toString().replace("\0", ""));
    }

    @Test
    void leavesOutsideTheModelReadAsZeros() {
        assertArrayEquals(new int[4], m.leaf(2, 0, 0, 1));
        assertArrayEquals(new int[4], m.leaf(0xD, 0, 0, 1));
        assertArrayEquals(new int[4], m.leaf(0x80000009, 0, 0, 1));
        assertArrayEquals(new int[4], m.leaf(0x7FFFFFFF, 0, 0, 1));
        assertArrayEquals(new int[4], m.leaf(0xFFFFFFFF, 0, 0, 1));
        assertArrayEquals(new int[4], m.leaf(7, 1, 0, 1));
    }

    @Test
    void featuresAreDataThatCanGrow() {
        CpuModel withSse3 = m.with(CpuFeature.SSE3).with(CpuFeature.ERMS);
        assertEquals(1, withSse3.leaf(1, 0, 0, 1)[2]);
        assertEquals(1 << 9, withSse3.leaf(7, 0, 0, 1)[1]);
        assertFalse(withSse3.without(CpuFeature.SSE3).has(CpuFeature.SSE3));
    }
}
