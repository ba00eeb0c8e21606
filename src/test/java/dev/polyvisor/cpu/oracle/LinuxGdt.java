package dev.polyvisor.cpu.oracle;

/**
 * The GDT a 64-bit Linux process runs under, as the emulator sees it (arch/x86/include/asm/segment.h,
 * "64-bit" GDT layout; arch/x86/kernel/cpu/common.c gdt_page): 16 entries, limit 0x7F, no LDT.
 * Every code/data entry has its accessed bit set already, as on the host (LAR of 0x33 reads
 * 0x00affb00), so far transfers never write the table.
 *
 * <p>Entries 8-9 are the 64-bit TSS (busy, DPL 0), 10-11 the LDT descriptor (absent: the process has
 * no LDT), 12-14 the TLS slots (empty in a 64-bit process, glibc uses the FS base), 15 the per-CPU
 * entry (limit = CPU number: never used by the oracle, as its value differs between host CPUs).
 */
final class LinuxGdt {
    private LinuxGdt() {}

    /** Where the emulator maps the table: the Linux cpu_entry_area GDT address (supervisor-only page). */
    static final long LA = 0xFFFF_FE00_0000_1000L;
    static final int LIMIT = 16 * 8 - 1;

    static final int KERNEL32_CS = 0x08, KERNEL_CS = 0x10, KERNEL_DS = 0x18, USER32_CS = 0x23, USER_DS = 0x2B,
            USER_CS = 0x33, TSS = 0x40, LDT = 0x50, TLS0 = 0x60, CPUNODE = 0x78;

    /** The 16 descriptors, index = selector >> 3. */
    static long[] descriptors() { return descriptors(true); }

    /**
     * As {@link #descriptors()}; without {@code user32Cs} entry 4 (0x23) stays empty, mirroring a host whose
     * kernel offers no 32-bit user code segment (IA-32 emulation off; {@link HostCapabilities#user32Cs}). At
     * CPL 3 an empty entry and Linux's DPL-0 placeholder behave alike: LAR/VERR fail, loads and far transfers
     * raise #GP(0x20).
     */
    static long[] descriptors(boolean user32Cs) {
        long[] g = new long[16];
        g[KERNEL32_CS >> 3] = 0x00CF_9B00_0000_FFFFL; // 32-bit kernel code, DPL 0
        g[KERNEL_CS >> 3] = 0x00AF_9B00_0000_FFFFL;   // 64-bit kernel code, DPL 0
        g[KERNEL_DS >> 3] = 0x00CF_9300_0000_FFFFL;   // kernel data, DPL 0
        if (user32Cs) g[USER32_CS >> 3] = 0x00CF_FB00_0000_FFFFL; // 32-bit user code, DPL 3 (LAR 0x00cffb00)
        g[USER_DS >> 3] = 0x00CF_F300_0000_FFFFL;     // user data, DPL 3 (LAR 0x00cff300)
        g[USER_CS >> 3] = 0x00AF_FB00_0000_FFFFL;     // 64-bit user code, DPL 3 (LAR 0x00affb00)
        // 64-bit busy TSS (type 0xB, DPL 0) at a cpu_entry_area address: 16 bytes.
        long tssBase = 0xFFFF_FE00_0000_3000L, tssLimit = 0x4087;
        g[TSS >> 3] = (tssLimit & 0xFFFF) | (tssBase & 0xFF_FFFFL) << 16 | 0x8BL << 40 | (tssLimit >> 16 & 0xF) << 48
                | (tssBase >>> 24 & 0xFF) << 56;
        g[(TSS >> 3) + 1] = tssBase >>> 32;
        // 10-11 (LDT), 12-14 (TLS) and 15 (per-CPU) stay empty: see the class comment.
        return g;
    }
}
