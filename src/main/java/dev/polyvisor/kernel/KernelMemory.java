package dev.polyvisor.kernel;

/**
 * A running kernel's memory seen through its own addresses: kernel-virtual reads (image mapping
 * and direct map, {@link KernelAddresses}), symbols at their runtime addresses, per-CPU variables,
 * and pointers named after the symbol they point at.
 */
public final class KernelMemory {
    private final PhysicalMemory memory;
    private final KernelImage image;
    private final KernelAddresses addresses;

    public KernelMemory(PhysicalMemory memory, KernelImage image, KernelAddresses addresses) {
        this.memory = memory;
        this.image = image;
        this.addresses = addresses;
    }

    public KernelImage image() { return image; }

    public Btf btf() { return image.btf(); }

    public KernelSymbols symbols() { return image.symbols(); }

    public KernelAddresses addresses() { return addresses; }

    /** {@code len} bytes at a runtime kernel virtual address (physically contiguous in both mappings this reads). */
    public byte[] read(long virt, int len) {
        return memory.bytes(addresses.requirePhysical(virt), len);
    }

    public long u64(long virt) { return Bytes.le(read(virt, 8), 0, 8); }

    public int u32(long virt) { return (int) Bytes.le(read(virt, 4), 0, 4); }

    /** A NUL-terminated string at a kernel virtual address (at most {@code max} bytes). */
    public String cString(long virt, int max) { return memory.cString(addresses.requirePhysical(virt), max); }

    /** The runtime virtual address of a (non-per-CPU) symbol. */
    public long symbol(String name) { return addresses.runtime(image.symbols().require(name)); }

    public boolean hasSymbol(String name) { return image.symbols().address(name).isPresent(); }

    /**
     * The runtime address of CPU {@code cpu}'s copy of a per-CPU variable: {@code __per_cpu_offset[cpu]}
     * added to the variable's address (include/asm-generic/percpu.h, per_cpu_ptr). Where per-CPU data
     * is zero-based (x86-64 up to 6.x, kallsyms --absolute-percpu) the symbol's value is an offset
     * into the per-CPU area and is not slid; where it is not (Debian's 7.2: per-CPU symbols are
     * ordinary addresses in the image), it is an image address and moves with KASLR.
     */
    public long perCpu(String name, int cpu) {
        long sym = image.symbols().require(name);
        long base = KernelAddresses.inImage(sym) ? addresses.runtime(sym) : sym;
        return u64(symbol("__per_cpu_offset") + 8L * cpu) + base;
    }

    /** "NULL", the symbol a runtime address points at (with an offset inside it), or the address in hex. */
    public String describe(long pointer) {
        if (pointer == 0) return "NULL";
        return image.symbols().nearest(addresses.link(pointer)).map(KernelSymbols.Hit::toString)
                .orElseGet(() -> String.format("0x%x", pointer));
    }
}
