package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.vmm.boot.LoadException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A parsed bzImage: the real-mode setup header at offset 0x1F1 (Documentation/arch/x86/boot.rst,
 * "THE REAL-MODE KERNEL HEADER") and the protected-mode kernel that follows the setup sectors.
 * Only what the 64-bit boot protocol and PVH loading need is exposed; {@link #parse} rejects
 * anything a 64-bit loader cannot use with a one-line reason.
 */
public final class BzImage {
    // Setup header offsets (boot.rst, field table).
    static final int SETUP_SECTS = 0x1F1, SYSSIZE = 0x1F4, VID_MODE = 0x1FA, BOOT_FLAG = 0x1FE, JUMP = 0x200,
            HEADER = 0x202, VERSION = 0x206, TYPE_OF_LOADER = 0x210, LOADFLAGS = 0x211, CODE32_START = 0x214,
            RAMDISK_IMAGE = 0x218, RAMDISK_SIZE = 0x21C, HEAP_END_PTR = 0x224, CMD_LINE_PTR = 0x228,
            INITRD_ADDR_MAX = 0x22C, KERNEL_ALIGNMENT = 0x230, RELOCATABLE_KERNEL = 0x234, MIN_ALIGNMENT = 0x235,
            XLOADFLAGS = 0x236, CMDLINE_SIZE = 0x238, PAYLOAD_OFFSET = 0x248, PAYLOAD_LENGTH = 0x24C,
            PREF_ADDRESS = 0x258, INIT_SIZE = 0x260;
    /** "HdrS" read as a little-endian dword. */
    static final int HDRS = 0x53726448;
    public static final int LOADED_HIGH = 0x01, CAN_USE_HEAP = 0x80;
    public static final int XLF_KERNEL_64 = 1, XLF_CAN_BE_LOADED_ABOVE_4G = 2;
    /** Protocol 2.12 added xloadflags, which is how a kernel says it has a 64-bit entry point. */
    public static final int MIN_VERSION = 0x020C;

    private static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** The image file's bytes: an array's, or native memory ({@code ImageFile.readOffHeap}). */
    private final MemorySegment image;
    public final int version;
    public final int setupSects;
    /** Offset of the protected-mode kernel in the file: (setup_sects + 1) * 512. */
    public final int kernelOffset;
    public final int loadflags, xloadflags;
    public final long kernelAlignment, prefAddress, initSize, initrdAddrMax, cmdlineSize;
    public final boolean relocatable;
    public final int payloadOffset, payloadLength;
    /** Length of the setup header: it ends at 0x202 plus the byte at 0x201 (the jump's displacement). */
    public final int headerEnd;

    private BzImage(MemorySegment image) {
        this.image = image;
        int sects = u8(SETUP_SECTS);
        this.setupSects = sects == 0 ? 4 : sects; // boot.rst: "if this field is 0, the real value is 4"
        this.kernelOffset = (setupSects + 1) * 512;
        this.version = u16(VERSION);
        this.loadflags = u8(LOADFLAGS);
        this.xloadflags = u16(XLOADFLAGS);
        this.kernelAlignment = u32(KERNEL_ALIGNMENT);
        this.relocatable = u8(RELOCATABLE_KERNEL) != 0;
        this.cmdlineSize = u32(CMDLINE_SIZE);
        this.initrdAddrMax = u32(INITRD_ADDR_MAX);
        this.payloadOffset = (int) u32(PAYLOAD_OFFSET);
        this.payloadLength = (int) u32(PAYLOAD_LENGTH);
        this.prefAddress = image.get(LE64, PREF_ADDRESS);
        this.initSize = u32(INIT_SIZE);
        this.headerEnd = HEADER + u8(JUMP + 1);
    }

    /** Validates and parses a bzImage. */
    public static BzImage parse(byte[] image) throws LoadException { return parse(MemorySegment.ofArray(image)); }

    /** Validates and parses a bzImage held in a segment (an image file read off the heap, ImageFile.readOffHeap); the BzImage reads from it, so it must stay alive. */
    public static BzImage parse(MemorySegment image) throws LoadException {
        if (image.byteSize() > Integer.MAX_VALUE) throw new LoadException("kernel image too large: " + image.byteSize() + " bytes");
        if (image.byteSize() < INIT_SIZE + 4)
            throw new LoadException(String.format("kernel image truncated: %d bytes, the setup header alone needs 0x%x", image.byteSize(), INIT_SIZE + 4));
        BzImage k = new BzImage(image);
        if (k.u16(BOOT_FLAG) != 0xAA55)
            throw new LoadException(String.format("not a bzImage: missing boot flag 0xAA55 at 0x1FE (found 0x%04x)", k.u16(BOOT_FLAG)));
        if (image.get(LE32, HEADER) != HDRS) throw new LoadException("not a bzImage: missing HdrS signature at 0x202");
        if (k.version < MIN_VERSION)
            throw new LoadException(String.format("boot protocol %d.%02d is too old: the 64-bit entry needs 2.12 or later",
                    k.version >> 8, k.version & 0xFF));
        if ((k.loadflags & LOADED_HIGH) == 0) throw new LoadException("not a bzImage: loadflags.LOADED_HIGH is clear (a zImage loads at 0x10000)");
        if (k.headerEnd > k.kernelOffset || k.headerEnd < INIT_SIZE + 4)
            throw new LoadException(String.format("corrupt setup header: it claims to end at 0x%x, setup code ends at 0x%x", k.headerEnd, k.kernelOffset));
        if (k.kernelOffset >= image.byteSize())
            throw new LoadException(String.format("kernel image truncated: %d setup sectors need 0x%x bytes but the file has 0x%x",
                    k.setupSects, k.kernelOffset, image.byteSize()));
        long sysBytes = k.u32(SYSSIZE) * 16L;
        if (sysBytes > k.kernelLength())
            throw new LoadException(String.format("kernel image truncated: the protected-mode kernel is 0x%x bytes, syssize says 0x%x",
                    k.kernelLength(), sysBytes));
        if (k.kernelAlignment == 0 || Long.bitCount(k.kernelAlignment) != 1)
            throw new LoadException(String.format("corrupt setup header: kernel_alignment 0x%x is not a power of two", k.kernelAlignment));
        if (k.payloadLength == 0 || Integer.toUnsignedLong(k.payloadOffset) + Integer.toUnsignedLong(k.payloadLength) > k.kernelLength())
            throw new LoadException(String.format("kernel image truncated: payload 0x%x+0x%x lies outside the 0x%x-byte protected-mode kernel",
                    k.payloadOffset, k.payloadLength, k.kernelLength()));
        return k;
    }

    public boolean supports64BitEntry() { return (xloadflags & XLF_KERNEL_64) != 0; }

    public boolean canLoadInitrdAbove4G() { return (xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G) != 0; }

    public String versionString() { return (version >> 8) + "." + String.format("%02d", version & 0xFF); }

    /** Length of the protected-mode kernel (everything after the setup sectors). */
    public int kernelLength() { return (int) image.byteSize() - kernelOffset; }

    /** The protected-mode kernel, to be loaded at the 64-bit load address. */
    public MemorySegment protectedModeKernel() { return image.asSlice(kernelOffset); }

    /** Where {@link #payload} starts in the image file. */
    public int payloadStart() { return kernelOffset + payloadOffset; }

    /** The compressed vmlinux (payload_offset is relative to the protected-mode kernel), copied. */
    public byte[] payload() { return payloadInPlace().toArray(ValueLayout.JAVA_BYTE); }

    /** The compressed vmlinux where it lies in the image. */
    public MemorySegment payloadInPlace() { return image.asSlice(payloadStart(), payloadLength); }

    /** The setup header bytes 0x1F1 up to {@link #headerEnd}, to be copied into boot_params. */
    public byte[] setupHeader() { return image.asSlice(SETUP_SECTS, headerEnd - SETUP_SECTS).toArray(ValueLayout.JAVA_BYTE); }

    /** The kernel's version string, which the header points at (kernel_version at 0x20E, relative to 0x200). */
    public String kernelVersionString() {
        int ptr = u16(0x20E);
        if (ptr == 0) return "";
        int at = ptr + 0x200;
        int end = at;
        while (end < image.byteSize() && end < kernelOffset && u8(end) != 0) end++;
        return at >= kernelOffset ? "" : new String(image.asSlice(at, end - at).toArray(ValueLayout.JAVA_BYTE), java.nio.charset.StandardCharsets.US_ASCII);
    }

    private int u8(int off) { return image.get(ValueLayout.JAVA_BYTE, off) & 0xFF; }

    private int u16(int off) { return Short.toUnsignedInt(image.get(LE16, off)); }

    private long u32(int off) { return Integer.toUnsignedLong(image.get(LE32, off)); }
}
