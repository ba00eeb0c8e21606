package dev.polyvisor.vmm.boot;

import dev.polyvisor.devices.IoBus;
import dev.polyvisor.memory.GuestMemory;

/**
 * The machine state a PC BIOS hands to what it boots, for images that are not Linux: QEMU's
 * {@code -kernel} runs SeaBIOS before its multiboot option ROM enters the image, and images that go
 * back to real mode (kvm-unit-tests' realmode) find what SeaBIOS left there. Set up here, as SeaBIOS
 * does it (src/post.c ivt_init, src/hw/pic.c pic_reset/enable_hwirq, src/hw/timer.c pit_setup, src/clock.c
 * clock_setup):
 * <ul>
 * <li>8259A pair initialised (ICW1 0x11, ICW2 vector bases 0x08 and 0x70, ICW3 cascade on IR2, ICW4 8086
 *     mode), every IRQ masked but IRQ0 (timer), IRQ2 (cascade) and IRQ8 (RTC);</li>
 * <li>8254 channel 0 in mode 2 (rate generator), binary, count 0 = 65536: IRQ0 at 18.2 Hz;</li>
 * <li>the real-mode IVT: every vector points at an IRET (F000:FF53, the IBM-compatible dummy handler);
 *     IRQ0's vector 0x08 at a handler at F000:FEA5 that counts ticks in the BDA (0040:006C, wrapping at
 *     0x1800B0 ticks a day with the midnight flag at 0040:0070), chains INT 1Ch and sends EOI; the other
 *     hardware vectors 0x09-0x0F and 0x70-0x77 at handlers that only send EOI (SeaBIOS handle_hwpic1/2);</li>
 * <li>the BDA's base memory size (0040:0013, KiB) and EBDA segment (0040:000E).</li>
 * </ul>
 * The BSP's LAPIC is already in virtual wire mode (LINT0 ExtINT), as QEMU's APIC reset leaves it.
 * Written before the image is loaded, so an image that overlaps these bytes wins, as it would over the BIOS.
 */
public final class BiosHandover {
    public static final int BIOS_SEGMENT = 0xF000;
    /** Handler offsets in the BIOS segment. */
    public static final int IRET_OFFSET = 0xFF53, TIMER_OFFSET = 0xFEA5, HWPIC1_OFFSET = 0xFF54, HWPIC2_OFFSET = 0xFF5B;
    public static final int HWIRQ0_VECTOR = 0x08, HWIRQ8_VECTOR = 0x70;
    /** Unmasked: IRQ0 (timer), IRQ2 (cascade) on the master; IRQ8 (RTC) on the slave. */
    public static final int MASTER_IMR = 0xFA, SLAVE_IMR = 0xFE;
    public static final long BDA = 0x400, BDA_EBDA_SEGMENT = 0x40E, BDA_BASE_MEMORY_KIB = 0x413, BDA_TICKS = 0x46C,
            BDA_MIDNIGHT = 0x470;
    public static final int TICKS_PER_DAY = 0x1800B0;

    /**
     * IRQ0: push ds; push ax; xor ax,ax; mov ds,ax; inc dword [046C]; cmp dword [046C],001800B0; jb +13;
     * mov dword [046C],0; inc byte [0470]; int 1Ch; mov al,20h; out 20h,al; pop ax; pop ds; iret.
     */
    static final byte[] TIMER_HANDLER = bytes(
            0x1E, 0x50, 0x31, 0xC0, 0x8E, 0xD8,
            0x66, 0xFF, 0x06, 0x6C, 0x04,
            0x66, 0x81, 0x3E, 0x6C, 0x04, 0xB0, 0x00, 0x18, 0x00,
            0x72, 0x0D,
            0x66, 0xC7, 0x06, 0x6C, 0x04, 0x00, 0x00, 0x00, 0x00,
            0xFE, 0x06, 0x70, 0x04,
            0xCD, 0x1C,
            0xB0, 0x20, 0xE6, 0x20,
            0x58, 0x1F, 0xCF);
    /** Master EOI: push ax; mov al,20h; out 20h,al; pop ax; iret. */
    static final byte[] HWPIC1_HANDLER = bytes(0x50, 0xB0, 0x20, 0xE6, 0x20, 0x58, 0xCF);
    /** Slave then master EOI: push ax; mov al,20h; out 0A0h,al; out 20h,al; pop ax; iret. */
    static final byte[] HWPIC2_HANDLER = bytes(0x50, 0xB0, 0x20, 0xE6, 0xA0, 0xE6, 0x20, 0x58, 0xCF);

    private BiosHandover() {}

    /** Writes the IVT, BDA and handlers into {@code mem} and programs the PIC pair and the PIT through {@code io}. */
    public static void apply(GuestMemory mem, IoBus io, long baseMemoryEnd) {
        long bios = (long) BIOS_SEGMENT << 4;
        mem.st8(bios + IRET_OFFSET, 0xCF);
        mem.load(bios + TIMER_OFFSET, TIMER_HANDLER);
        mem.load(bios + HWPIC1_OFFSET, HWPIC1_HANDLER);
        mem.load(bios + HWPIC2_OFFSET, HWPIC2_HANDLER);
        for (int v = 0; v < 256; v++) {
            int off = v == HWIRQ0_VECTOR ? TIMER_OFFSET
                    : v > HWIRQ0_VECTOR && v < HWIRQ0_VECTOR + 8 ? HWPIC1_OFFSET
                    : v >= HWIRQ8_VECTOR && v < HWIRQ8_VECTOR + 8 ? HWPIC2_OFFSET
                    : IRET_OFFSET;
            mem.st32(4L * v, BIOS_SEGMENT << 16 | off); // IVT entry: offset in the low word, segment in the high
        }
        for (long a = BDA; a < BDA + 0x100; a += 8) mem.st64(a, 0);
        mem.st16(BDA_EBDA_SEGMENT, (int) (baseMemoryEnd >>> 4));
        mem.st16(BDA_BASE_MEMORY_KIB, (int) (baseMemoryEnd / 1024));

        // pic_reset(0x08, 0x70), then the mask with IRQ0, cascade and IRQ8 enabled.
        io.out(0x20, 1, 0x11); io.out(0xA0, 1, 0x11);
        io.out(0x21, 1, HWIRQ0_VECTOR); io.out(0xA1, 1, HWIRQ8_VECTOR);
        io.out(0x21, 1, 0x04); io.out(0xA1, 1, 0x02);
        io.out(0x21, 1, 0x01); io.out(0xA1, 1, 0x01);
        io.out(0x21, 1, MASTER_IMR); io.out(0xA1, 1, SLAVE_IMR);
        // pit_setup: channel 0, lobyte/hibyte, mode 2, binary; count 0000h.
        io.out(0x43, 1, 0x34);
        io.out(0x40, 1, 0); io.out(0x40, 1, 0);
    }

    private static byte[] bytes(int... v) {
        byte[] b = new byte[v.length];
        for (int i = 0; i < v.length; i++) b[i] = (byte) v[i];
        return b;
    }
}
