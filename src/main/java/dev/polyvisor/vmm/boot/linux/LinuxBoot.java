package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.vmm.boot.LoadException;
import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.memory.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.random.RandomGenerator;

/**
 * Loads a bzImage with the x86 64-bit boot protocol (Documentation/arch/x86/boot.rst,
 * "64-bit BOOT PROTOCOL"): the protected-mode kernel goes to its preferred, suitably aligned
 * address; a zeroed boot_params (the "zero page") receives the kernel's own setup header plus
 * what the loader fills in (loader type, command line, initrd, e820 map, RSDP); the CPU enters at
 * load address + 0x200 in 64-bit mode with RSI = &boot_params, flat __BOOT_CS/__BOOT_DS segments,
 * an identity map covering at least the loaded parts (here all of 0-4 GiB) and interrupts off.
 *
 * <p>Low-memory layout: GDT at 0x500, boot_params at 0x7000, page tables at 0x9000-0xEFFF,
 * command line at 0x20000, setup_data (the RNG seed) at 0x30000; the initrd goes as high as the kernel and
 * the e820 map allow.
 */
public final class LinuxBoot {
    public static final long BOOT_PARAMS = 0x7000, CMDLINE = 0x20000, STACK_TOP = 0x8FF0;
    /** Largest command line this loader places (the window below 0x30000); the kernel's own limit is cmdline_size. */
    static final int CMDLINE_WINDOW = 0x10000;
    /** Where the setup_data list goes: above the command line's window, in low RAM that nothing else here uses. */
    public static final long SETUP_DATA = CMDLINE + CMDLINE_WINDOW;
    /** boot_params.hdr.setup_data (boot.rst: offset 0x250, 64-bit physical pointer to the list; protocol 2.09+). */
    static final int BP_SETUP_DATA = 0x250;
    /** setup_data types (arch/x86/include/uapi/asm/bootparam.h): SETUP_RNG_SEED, a seed for the kernel's RNG. */
    static final int SETUP_RNG_SEED = 9;
    /** The seed's length: 256 bits, what the kernel's pool needs to be ready (QEMU passes the same 32 bytes). */
    public static final int RNG_SEED_BYTES = 32;
    // boot_params offsets (arch/x86/include/uapi/asm/bootparam.h).
    static final int BP_ACPI_RSDP_ADDR = 0x070, BP_EXT_RAMDISK_IMAGE = 0x0C0, BP_EXT_RAMDISK_SIZE = 0x0C4,
            BP_EXT_CMD_LINE_PTR = 0x0C8, BP_E820_ENTRIES = 0x1E8, BP_E820_TABLE = 0x2D0;
    public static final int E820_MAX_ENTRIES_ZEROPAGE = 128;
    /** Default load address when the header gives none (boot.rst: "typically 0x100000"). */
    static final long DEFAULT_LOAD = 0x100000;

    private LinuxBoot() {}

    public static LoadedKernel load(GuestMemory mem, byte[] kernel, byte[] initrd, String cmdline, List<E820Entry> e820)
            throws LoadException {
        return load(mem, kernel, initrd, cmdline, e820, 0);
    }

    /**
     * Loads {@code kernel} (a bzImage) and {@code initrd} (may be null or empty) into {@code mem}.
     *
     * @param acpiRsdp physical address of the ACPI RSDP for boot_params.acpi_rsdp_addr, or 0 to let
     *                 the kernel search the BIOS areas for it
     */
    public static LoadedKernel load(GuestMemory mem, byte[] kernel, byte[] initrd, String cmdline, List<E820Entry> e820,
                                    long acpiRsdp) throws LoadException {
        return load(mem, kernel, false, initrd, cmdline, e820, acpiRsdp);
    }

    /**
     * As {@link #load(GuestMemory, byte[], byte[], String, List, long)}, but with {@code skipDecompressor} the
     * bzImage's decompressor does not run in the guest: the VMM decompresses the payload ({@link VmlinuxStream})
     * and puts the vmlinux's segments where the decompressor would have (their physical addresses;
     * arch/x86/boot/compressed/misc.c parse_elf), and the CPU enters at the ELF entry, startup_64, in the same
     * 64-bit state with RSI = &boot_params, as the decompressor's final jump does (and as Firecracker boots a
     * vmlinux). The kernel stays at its link address: the overload with a random source does the decompressor's
     * KASLR too.
     */
    public static LoadedKernel load(GuestMemory mem, byte[] kernel, boolean skipDecompressor, byte[] initrd, String cmdline,
                                    List<E820Entry> e820, long acpiRsdp) throws LoadException {
        return load(mem, MemorySegment.ofArray(kernel), skipDecompressor, initrd == null ? null : MemorySegment.ofArray(initrd),
                cmdline, e820, acpiRsdp);
    }

    /** As {@link #load(GuestMemory, byte[], boolean, byte[], String, List, long)}, for images in segments (image files read off the heap). */
    public static LoadedKernel load(GuestMemory mem, MemorySegment kernel, boolean skipDecompressor, MemorySegment initrd, String cmdline,
                                    List<E820Entry> e820, long acpiRsdp) throws LoadException {
        return load(mem, kernel, skipDecompressor, null, initrd, cmdline, e820, acpiRsdp);
    }

    /**
     * As {@link #load(GuestMemory, MemorySegment, boolean, MemorySegment, String, List, long)}, with the VM's
     * {@code entropy} (null: none). With it the VMM does what a boot loader does for the kernel's RNG: a 32-byte
     * SETUP_RNG_SEED in setup_data, which the kernel mixes into its pool and, as Debian's kernels trust the boot
     * loader (CONFIG_RANDOM_TRUST_BOOTLOADER, random.trust_bootloader), credits in setup_arch (arch/x86/kernel/
     * setup.c, parse_setup_data; drivers/char/random.c, add_bootloader_randomness), so the pool is ready from the
     * start, as QEMU seeds it. Without that, and with no RDRAND in the CPU model, every get_random_bytes() before
     * the pool filled hashed the whole input pool (crng_make_state while crng_init was CRNG_EMPTY: 3,172 calls, 30 M
     * of a default boot's 420 M guest instructions), and a Debian rootfs's systemd and sshd blocked in getrandom(2).
     * With {@code skipDecompressor} a command line without nokaslr also gets the decompressor's KASLR from the VMM:
     * a random virtual base, the vmlinux's relocations applied for it, and KASLR_FLAG in loadflags, which the kernel
     * reads to randomize its memory regions too (arch/x86/boot/compressed/kaslr.c, choose_random_location;
     * {@link KernelRelocations}). Without a source such a kernel runs at its link address.
     */
    public static LoadedKernel load(GuestMemory mem, MemorySegment kernel, boolean skipDecompressor, RandomGenerator entropy,
                                    MemorySegment initrd, String cmdline, List<E820Entry> e820, long acpiRsdp) throws LoadException {
        if (KernelPayload.detect(kernel) == KernelPayload.Format.ELF)
            throw new LoadException("kernel is an ELF vmlinux, not a bzImage: boot it with PVH");
        BzImage k = BzImage.parse(kernel);
        if (!k.supports64BitEntry())
            throw new LoadException("kernel does not support the 64-bit boot protocol (xloadflags lacks XLF_KERNEL_64)");
        if (e820.size() > E820_MAX_ENTRIES_ZEROPAGE)
            throw new LoadException("e820 map has " + e820.size() + " entries; boot_params holds at most " + E820_MAX_ENTRIES_ZEROPAGE);
        byte[] cmd = (cmdline == null ? "" : cmdline).getBytes(StandardCharsets.UTF_8);
        long maxCmd = Math.min(k.cmdlineSize, CMDLINE_WINDOW - 1);
        if (cmd.length > maxCmd)
            throw new LoadException("kernel command line is " + cmd.length + " bytes; this kernel accepts at most " + maxCmd);

        // Load address: pref_address (2.10+), aligned to kernel_alignment, which a relocatable kernel requires.
        long load = k.prefAddress != 0 ? k.prefAddress : DEFAULT_LOAD;
        if (load % k.kernelAlignment != 0) {
            if (!k.relocatable) throw new LoadException(String.format("kernel wants 0x%x, which is not aligned to its kernel_alignment 0x%x", load, k.kernelAlignment));
            load = BootTables.alignUp(load, k.kernelAlignment);
        }
        // init_size is the memory the kernel needs from the load address before it sets up its own allocator.
        long kernelEnd = load + Math.max(k.initSize, k.kernelLength());
        RandomGenerator randomize = skipDecompressor && k.relocatable && !kaslrDisabled(cmdline) ? entropy : null;
        LoadedKernel loaded;
        try (VmlinuxStream vmlinux = skipDecompressor ? VmlinuxStream.of(kernel) : null) {
            loaded = load(mem, k, vmlinux, randomize, load, kernelEnd, initrd, cmd, e820, acpiRsdp);
        }
        if (entropy != null) writeRngSeed(mem, entropy);
        return loaded;
    }

    /** boot_params.hdr.setup_data = a one-entry list: struct setup_data { u64 next; u32 type; u32 len; u8 data[len]; }. */
    private static void writeRngSeed(GuestMemory mem, RandomGenerator entropy) {
        byte[] seed = new byte[RNG_SEED_BYTES];
        entropy.nextBytes(seed);
        mem.checkRam(SETUP_DATA, 16 + seed.length);
        mem.st64(SETUP_DATA, 0);
        mem.st32(SETUP_DATA + 8, SETUP_RNG_SEED);
        mem.st32(SETUP_DATA + 12, seed.length);
        mem.load(SETUP_DATA + 16, seed);
        mem.st64(BOOT_PARAMS + BP_SETUP_DATA, SETUP_DATA);
    }

    private static LoadedKernel load(GuestMemory mem, BzImage k, VmlinuxStream vmlinux, RandomGenerator kaslr, long load, long kernelEnd,
                                     MemorySegment initrd, byte[] cmd, List<E820Entry> e820, long acpiRsdp) throws LoadException {
        boolean randomized = false;
        if (vmlinux != null) {
            if (vmlinux.lowestAddress() < load)
                throw new LoadException(String.format("the vmlinux starts at 0x%x, below the bzImage's load address 0x%x", vmlinux.lowestAddress(), load));
            kernelEnd = Math.max(kernelEnd, vmlinux.highestAddress());
        }
        if (kernelEnd > mem.ramSize || !BootTables.isRam(e820, load, kernelEnd))
            throw new LoadException(String.format("guest RAM too small: the kernel needs RAM at 0x%x-0x%x (init_size 0x%x)",
                    load, kernelEnd, k.initSize));
        long entryAt = load + 0x200;
        if (vmlinux == null) {
            mem.adviseHugePages(load, k.protectedModeKernel().byteSize());
            mem.load(load, k.protectedModeKernel());
        } else {
            entryAt = vmlinux.entry;
            if (entryAt < vmlinux.lowestAddress() || entryAt >= vmlinux.highestAddress())
                throw new LoadException(String.format("the vmlinux's entry 0x%x is outside its segments", entryAt));
            vmlinux.loadInto(mem);
            byte[] relocs = kaslr == null ? null : vmlinux.relocationTable();
            // No table (a kernel without CONFIG_RANDOMIZE_BASE) or a damaged one: the link address, as with nokaslr.
            randomized = kaslr != null && KernelRelocations.valid(relocs, vmlinux.lowestAddress(), vmlinux.highestAddress());
            if (randomized) {
                // needed_size in misc.c: the decompressed image or the kernel's whole extent, whichever is larger.
                long size = Math.max(Math.max(vmlinux.length(), vmlinux.highestAddress() - load), k.initSize);
                long delta = KernelRelocations.randomDelta(kaslr, load, size, k.kernelAlignment);
                if (delta != 0) KernelRelocations.apply(mem, relocs, delta, vmlinux.lowestAddress(), vmlinux.highestAddress());
            }
        }

        long initrdAt = 0, initrdLen = initrd == null ? 0 : initrd.byteSize();
        if (initrdLen > 0) {
            long max = k.initrdAddrMax == 0 ? 0x37FF_FFFFL : k.initrdAddrMax; // boot.rst: default for protocols < 2.03
            initrdAt = BootTables.placeHigh(e820, mem.ramSize, initrdLen, Math.min(max + 1, 1L << 32), load, kernelEnd);
            if (initrdAt < 0 && k.canLoadInitrdAbove4G())
                initrdAt = BootTables.placeHigh(e820, mem.ramSize, initrdLen, Long.MAX_VALUE, load, kernelEnd);
            if (initrdAt < 0)
                throw new LoadException(String.format("guest RAM too small: no room for the %d-byte initrd below 0x%x beside the kernel",
                        initrdLen, Math.min(max + 1, 1L << 32)));
            mem.adviseHugePages(initrdAt, initrdLen); // filled whole: see GuestMemory.adviseHugePages
            mem.load(initrdAt, initrd);
        }

        mem.checkRam(CMDLINE, cmd.length + 1);
        mem.load(CMDLINE, cmd);
        mem.st8(CMDLINE + cmd.length, 0);

        writeBootParams(mem, k, initrdAt, initrdLen, e820, acpiRsdp);
        if (randomized) mem.st8(BOOT_PARAMS + BzImage.LOADFLAGS, mem.ld8(BOOT_PARAMS + BzImage.LOADFLAGS) | KASLR_FLAG);
        BootTables.writeGdt(mem, true);
        long cr3 = BootTables.writeIdentityMap(mem);
        EntryState entry = new EntryState(EntryState.Mode.LONG_64, entryAt, BOOT_PARAMS, 0, STACK_TOP,
                Cpu.CR0_PE | Cpu.CR0_ET | Cpu.CR0_PG, cr3, Cpu.CR4_PAE, Cpu.EFER_LME | Cpu.EFER_LMA,
                BootTables.GDT, BootTables.GDT_LIMIT, BootTables.BOOT_CS, BootTables.BOOT_DS);
        return new LoadedKernel(entry, load, kernelEnd, initrdAt, initrdLen, CMDLINE, BOOT_PARAMS);
    }

    /** loadflags bit 1: the boot loader (here the VMM, in the decompressor's place) randomized the kernel (boot.rst). */
    static final int KASLR_FLAG = 0x02;

    /**
     * Whether the command line turns KASLR off, so that the kernel runs at its link address and the VMM may
     * do the decompressor's work: the decompressor's own test (arch/x86/boot/compressed/kaslr.c,
     * choose_random_location: cmdline_find_option_bool("nokaslr"), a whole word anywhere on the line).
     */
    public static boolean kaslrDisabled(String cmdline) {
        if (cmdline == null) return false;
        for (String w : cmdline.trim().split("\\s+")) if (w.equals("nokaslr")) return true;
        return false;
    }

    private static void writeBootParams(GuestMemory mem, BzImage k, long initrdAt, long initrdLen, List<E820Entry> e820, long rsdp) {
        mem.checkRam(BOOT_PARAMS, 4096);
        for (int i = 0; i < 4096; i += 8) mem.st64(BOOT_PARAMS + i, 0);
        // boot.rst, 64-bit protocol: "the setup header of the kernel image loaded into struct boot_params".
        mem.load(BOOT_PARAMS + BzImage.SETUP_SECTS, k.setupHeader());
        long bp = BOOT_PARAMS;
        mem.st16(bp + BzImage.VID_MODE, 0xFFFF);        // "normal" video mode
        mem.st8(bp + BzImage.TYPE_OF_LOADER, 0xFF);     // undefined boot loader
        mem.st32(bp + BzImage.CMD_LINE_PTR, (int) CMDLINE);
        mem.st32(bp + BP_EXT_CMD_LINE_PTR, (int) (CMDLINE >>> 32));
        mem.st32(bp + BzImage.RAMDISK_IMAGE, (int) initrdAt);
        mem.st32(bp + BzImage.RAMDISK_SIZE, (int) initrdLen);
        mem.st32(bp + BP_EXT_RAMDISK_IMAGE, (int) (initrdAt >>> 32));
        mem.st32(bp + BP_EXT_RAMDISK_SIZE, (int) (initrdLen >>> 32));
        mem.st64(bp + BP_ACPI_RSDP_ADDR, rsdp);
        mem.st8(bp + BP_E820_ENTRIES, e820.size());
        long at = bp + BP_E820_TABLE;
        for (E820Entry e : e820) { // struct boot_e820_entry: u64 addr, u64 size, u32 type (packed, 20 bytes)
            mem.st64(at, e.addr());
            mem.st64(at + 8, e.size());
            mem.st32(at + 16, e.type());
            at += 20;
        }
    }
}
