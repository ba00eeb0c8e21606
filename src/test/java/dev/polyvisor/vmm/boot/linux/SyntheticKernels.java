package dev.polyvisor.vmm.boot.linux;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.zip.GZIPOutputStream;

/** Builds small but well-formed bzImages and vmlinux ELF files for loader tests. */
final class SyntheticKernels {
    static final int SETUP_SECTS = 3;
    static final long PVH_ENTRY = 0x1000040;

    private SyntheticKernels() {}

    /** A bzImage whose protected-mode part is {@code pm} and whose payload is the first payloadLen bytes of it at payloadOff. */
    static byte[] bzImage(byte[] pm, int payloadOff, int payloadLen) {
        int setup = (SETUP_SECTS + 1) * 512;
        byte[] img = new byte[setup + pm.length];
        ByteBuffer b = ByteBuffer.wrap(img).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0x1F1, (byte) SETUP_SECTS);
        b.putInt(0x1F4, pm.length / 16);
        b.putShort(0x1FE, (short) 0xAA55);
        b.put(0x200, (byte) 0xEB);
        b.put(0x201, (byte) 0x6A); // header ends at 0x26C, as in Linux 6.1
        b.putInt(0x202, 0x53726448);
        b.putShort(0x206, (short) 0x020F);
        b.put(0x211, (byte) BzImage.LOADED_HIGH);
        b.putInt(0x22C, 0x7FFFFFFF);
        b.putInt(0x230, 0x200000);
        b.put(0x234, (byte) 1);
        b.putShort(0x236, (short) 0x7F);
        b.putInt(0x238, 2047);
        b.putInt(0x248, payloadOff);
        b.putInt(0x24C, payloadLen);
        b.putLong(0x258, 0x1000000);
        b.putInt(0x260, 0x400000);
        System.arraycopy(pm, 0, img, setup, pm.length);
        return img;
    }

    /** A bzImage with a 4 KiB protected-mode kernel of recognisable bytes, payload = its middle. */
    static byte[] bzImage() {
        byte[] pm = new byte[4096];
        for (int i = 0; i < pm.length; i++) pm[i] = (byte) (i * 7 + 1);
        return bzImage(pm, 0x400, 0x100);
    }

    /** A bzImage whose payload is {@code payload}. */
    static byte[] bzImageWithPayload(byte[] payload) {
        byte[] pm = new byte[0x400 + payload.length];
        System.arraycopy(payload, 0, pm, 0x400, payload.length);
        return bzImage(pm, 0x400, payload.length);
    }

    /**
     * An x86-64 vmlinux: one PT_LOAD at 0x1000000 with 0x100 bytes of text and 0x1000 of memory
     * (the rest is .bss), and a PT_NOTE holding the Xen PHYS32_ENTRY note if {@code withPvhNote}.
     */
    static byte[] vmlinux(boolean withPvhNote) {
        ByteBuffer b = ByteBuffer.allocate(0x400).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {0x7F, 'E', 'L', 'F', 2, 1, 1});
        b.putShort(0x10, (short) 2);
        b.putShort(0x12, (short) 62);
        b.putInt(0x14, 1);
        b.putLong(0x18, 0xFFFFFFFF81000000L);
        b.putLong(0x20, 0x40);
        b.putShort(0x34, (short) 64);
        b.putShort(0x36, (short) 56);
        b.putShort(0x38, (short) 2);
        // PT_LOAD: file 0x200..0x300 to paddr 0x1000000, memsz 0x1000
        int ph = 0x40;
        b.putInt(ph, 1).putInt(ph + 4, 5).putLong(ph + 8, 0x200).putLong(ph + 16, 0xFFFFFFFF81000000L)
                .putLong(ph + 24, 0x1000000).putLong(ph + 32, 0x100).putLong(ph + 40, 0x1000).putLong(ph + 48, 0x200000);
        // PT_NOTE at 0x300: a GNU note then (maybe) the Xen note
        ph += 56;
        int at = 0x300;
        b.putInt(at, 4).putInt(at + 4, 4).putInt(at + 8, 3);
        b.put(at + 12, "GNU\0".getBytes(StandardCharsets.US_ASCII));
        b.putInt(at + 16, 0xDEADBEEF);
        at += 20;
        if (withPvhNote) {
            b.putInt(at, 4).putInt(at + 4, 8).putInt(at + 8, 18);
            b.put(at + 12, "Xen\0".getBytes(StandardCharsets.US_ASCII));
            b.putLong(at + 16, PVH_ENTRY);
            at += 24;
        }
        b.putInt(ph, 4).putInt(ph + 4, 4).putLong(ph + 8, 0x300).putLong(ph + 24, 0).putLong(ph + 32, at - 0x300).putLong(ph + 40, at - 0x300);
        byte[] elf = b.array();
        for (int i = 0; i < 0x100; i++) elf[0x200 + i] = (byte) (0x90 + (i & 3));
        return elf;
    }

    static byte[] gzip(byte[] data) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            try (GZIPOutputStream gz = new GZIPOutputStream(out)) { gz.write(data); }
            return out.toByteArray();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
