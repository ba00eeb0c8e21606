package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.vmm.boot.LoadException;
import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class BzImageTest {
    private static String failure(byte[] img) {
        return assertThrows(LoadException.class, () -> BzImage.parse(img)).getMessage();
    }

    private static byte[] patch(byte[] img, int off, int value, int size) {
        byte[] c = img.clone();
        ByteBuffer b = ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN);
        switch (size) {
            case 1 -> b.put(off, (byte) value);
            case 2 -> b.putShort(off, (short) value);
            default -> b.putInt(off, value);
        }
        return c;
    }

    @Test
    void parsesTheSetupHeaderFields() throws LoadException {
        BzImage k = BzImage.parse(SyntheticKernels.bzImage());
        assertEquals(0x020F, k.version);
        assertEquals("2.15", k.versionString());
        assertEquals(3, k.setupSects);
        assertEquals(4 * 512, k.kernelOffset);
        assertEquals(4096, k.kernelLength());
        assertEquals(0x200000, k.kernelAlignment);
        assertEquals(0x1000000, k.prefAddress);
        assertEquals(0x400000, k.initSize);
        assertEquals(2047, k.cmdlineSize);
        assertTrue(k.relocatable);
        assertTrue(k.supports64BitEntry());
        assertTrue(k.canLoadInitrdAbove4G());
        assertEquals(0x26C, k.headerEnd);
        byte[] payload = k.payload();
        assertEquals(0x100, payload.length);
        assertEquals((byte) (0x400 * 7 + 1), payload[0]);
        assertEquals(0x26C - 0x1F1, k.setupHeader().length);
    }

    @Test
    void zeroSetupSectsMeansFour() throws LoadException {
        BzImage k = BzImage.parse(patch(patch(SyntheticKernels.bzImage(), 0x1F1, 0, 1), 0x1F4, 0xE0, 4));
        assertEquals(4, k.setupSects);
        assertEquals(5 * 512, k.kernelOffset);
    }

    @Test
    void rejectsAFileTooShortForTheHeader() {
        assertTrue(failure(new byte[0x100]).startsWith("kernel image truncated: 256 bytes"), failure(new byte[0x100]));
    }

    @Test
    void rejectsAMissingBootFlag() {
        assertEquals("not a bzImage: missing boot flag 0xAA55 at 0x1FE (found 0x0000)", failure(patch(SyntheticKernels.bzImage(), 0x1FE, 0, 2)));
    }

    @Test
    void rejectsAMissingHdrSSignature() {
        assertEquals("not a bzImage: missing HdrS signature at 0x202", failure(patch(SyntheticKernels.bzImage(), 0x202, 0x12345678, 4)));
    }

    @Test
    void rejectsProtocolsOlderThan212() {
        assertEquals("boot protocol 2.11 is too old: the 64-bit entry needs 2.12 or later", failure(patch(SyntheticKernels.bzImage(), 0x206, 0x020B, 2)));
    }

    @Test
    void rejectsAzImage() {
        assertTrue(failure(patch(SyntheticKernels.bzImage(), 0x211, 0, 1)).contains("LOADED_HIGH"));
    }

    @Test
    void rejectsAnImageCutInsideTheSetupSectors() {
        byte[] cut = Arrays.copyOf(SyntheticKernels.bzImage(), 0x700);
        assertEquals("kernel image truncated: 3 setup sectors need 0x800 bytes but the file has 0x700", failure(cut));
    }

    @Test
    void rejectsAnImageShorterThanSyssize() {
        byte[] cut = Arrays.copyOf(SyntheticKernels.bzImage(), 0x800 + 2048);
        assertEquals("kernel image truncated: the protected-mode kernel is 0x800 bytes, syssize says 0x1000", failure(cut));
    }

    @Test
    void rejectsAPayloadOutsideTheKernel() {
        String m = failure(patch(SyntheticKernels.bzImage(), 0x24C, 0x10000, 4));
        assertEquals("kernel image truncated: payload 0x400+0x10000 lies outside the 0x1000-byte protected-mode kernel", m);
    }

    @Test
    void rejectsANonPowerOfTwoAlignment() {
        assertTrue(failure(patch(SyntheticKernels.bzImage(), 0x230, 0x300000, 4)).contains("kernel_alignment 0x300000 is not a power of two"));
    }
}
