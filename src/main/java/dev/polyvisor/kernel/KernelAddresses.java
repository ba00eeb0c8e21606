package dev.polyvisor.kernel;

import java.util.Arrays;
import java.util.OptionalLong;

/**
 * How an x86-64 kernel's virtual addresses map to guest-physical ones, without walking page tables
 * (arch/x86/include/asm/page_64.h, {@code __phys_addr_nodebug}):
 * <ul>
 * <li>the kernel image: {@code phys = virt - __START_KERNEL_map + phys_base} for virt in
 * [__START_KERNEL_map, +KERNEL_IMAGE_SIZE), where {@code phys_base} is the kernel's variable of that
 * name (arch/x86/kernel/head64.c: the physical load address minus the link-time one, minus the
 * virtual KASLR slide);</li>
 * <li>the direct map of all RAM: {@code phys = virt - page_offset_base} (the variable is randomized
 * by CONFIG_RANDOMIZE_MEMORY unless KASLR is off).</li>
 * </ul>
 * Symbol tables give link-time addresses; at run time each is {@code + virtualSlide} (KASLR's
 * virtual offset, {@code kaslr_offset()}), and pointers read from memory are runtime addresses.
 *
 * <p>With {@code nokaslr} on the command line nothing is randomized: Polyvisor's Linux boot protocol
 * loader puts the bzImage at its pref_address, which for a relocatable x86-64 kernel is
 * LOAD_PHYSICAL_ADDR (CONFIG_PHYSICAL_START, 0x1000000 on Debian); the decompressor
 * (arch/x86/boot/compressed/head_64.S) writes the kernel at that same address, so phys_base is 0 and
 * the image maps as {@code phys = virt - 0xffffffff80000000}; PVH loads the ELF segments at their
 * p_paddr with the same result. {@link #nokaslr()} is that case. With KASLR on, {@link #detect} finds the
 * physical slide by scanning for the kernel's banner and reads phys_base and page_offset_base from
 * the guest.
 */
public record KernelAddresses(long virtualSlide, long physBase, long pageOffsetBase) {
    /** arch/x86/include/asm/page_64_types.h. */
    public static final long START_KERNEL_MAP = 0xFFFF_FFFF_8000_0000L;
    /** KERNEL_IMAGE_SIZE with CONFIG_RANDOMIZE_BASE (page_64_types.h). */
    public static final long KERNEL_IMAGE_SIZE = 1L << 30;
    /** __PAGE_OFFSET_BASE_L4: the direct map's base with 4-level paging and no memory randomization. */
    public static final long DEFAULT_PAGE_OFFSET = 0xFFFF_8880_0000_0000L;
    /** The direct map spans at most 64 TiB with 4-level paging (Documentation/x86/x86_64/mm.rst). */
    public static final long DIRECT_MAP_SIZE = 64L << 40;
    /** CONFIG_PHYSICAL_ALIGN on Debian (and the x86-64 default): KASLR's physical and virtual granule. */
    public static final long PHYSICAL_ALIGN = 0x20_0000;

    /** KASLR off: no slide, phys_base 0, the direct map at its default base. */
    public static KernelAddresses nokaslr() { return new KernelAddresses(0, 0, DEFAULT_PAGE_OFFSET); }

    /** The physical slide: how far the image sits above its link-time physical address. */
    public long physicalSlide() { return physBase + virtualSlide; }

    /** Where a link-time (System.map, kallsyms) address is at run time. */
    public long runtime(long linkAddress) { return linkAddress + virtualSlide; }

    /** The link-time address of a runtime one (to look a pointer up in the symbol table). */
    public long link(long runtimeAddress) { return runtimeAddress - virtualSlide; }

    /** True when a runtime virtual address lies in the kernel image mapping. */
    public static boolean inImage(long virt) { return Long.compareUnsigned(virt - START_KERNEL_MAP, KERNEL_IMAGE_SIZE) < 0; }

    /** The guest-physical address of a runtime kernel virtual address, if it is in the image or the direct map. */
    public OptionalLong toPhysical(long virt) {
        if (inImage(virt)) return OptionalLong.of(virt - START_KERNEL_MAP + physBase);
        if (Long.compareUnsigned(virt - pageOffsetBase, DIRECT_MAP_SIZE) < 0) return OptionalLong.of(virt - pageOffsetBase);
        return OptionalLong.empty();
    }

    public long requirePhysical(long virt) {
        OptionalLong p = toPhysical(virt);
        if (p.isEmpty())
            throw new UnreadableMemoryException(String.format("0x%x is neither in the kernel image mapping nor in the direct map (base 0x%x)", virt, pageOffsetBase));
        return p.getAsLong();
    }

    /** The guest-physical address of a symbol given at its link-time address. */
    public long symbolPhysical(long linkAddress) { return requirePhysical(runtime(linkAddress)); }

    public KernelAddresses withPageOffsetBase(long base) { return new KernelAddresses(virtualSlide, physBase, base); }

    /**
     * Finds where a running kernel is, KASLR or not: the physical slide is the multiple of
     * {@link #PHYSICAL_ALIGN} at which the kernel's {@code linux_banner} (its bytes taken from the image)
     * is found in RAM; then phys_base, read from the guest, gives the virtual slide
     * (virtualSlide = physicalSlide - phys_base), and page_offset_base the direct map's base.
     *
     * @param ramTop the highest guest-physical address to scan up to
     */
    public static KernelAddresses detect(PhysicalMemory memory, long ramTop, KernelImage image) throws KernelFormatException {
        KernelSymbols syms = image.symbols();
        long banner = syms.symbol("linux_banner").orElseThrow(() -> new KernelFormatException("the kernel has no linux_banner symbol")).address();
        byte[] expect = image.elf().bytesAt(banner, 48);
        long bannerPhys = banner - START_KERNEL_MAP; // at link time phys_base is 0
        byte[] got = new byte[expect.length];
        for (long slide = 0; bannerPhys + slide + expect.length <= ramTop; slide += PHYSICAL_ALIGN) {
            try {
                memory.read(bannerPhys + slide, got, 0, got.length);
            } catch (UnreadableMemoryException e) {
                continue; // a hole in RAM
            }
            if (!Arrays.equals(got, expect)) continue;
            long physBase = memory.u64(syms.require("phys_base") - START_KERNEL_MAP + slide);
            long virtualSlide = slide - physBase;
            if (virtualSlide < 0 || virtualSlide >= KERNEL_IMAGE_SIZE || virtualSlide % PHYSICAL_ALIGN != 0) continue; // not the live image
            long pageOffset = syms.address("page_offset_base").isPresent()
                    ? memory.u64(syms.require("page_offset_base") - START_KERNEL_MAP + slide) : DEFAULT_PAGE_OFFSET;
            return new KernelAddresses(virtualSlide, physBase, pageOffset);
        }
        throw KernelFormatException.of("the kernel's banner is not in guest RAM below 0x%x at any %d-MiB-aligned slide: is this kernel running?", ramTop, PHYSICAL_ALIGN >> 20);
    }
}
