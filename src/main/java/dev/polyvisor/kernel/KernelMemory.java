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
     * The runtime address of CPU {@code cpu}'s copy of a per-CPU variable: its symbol value is an
     * offset into the per-CPU area (kallsyms --absolute-percpu), to which
     * {@code __per_cpu_offset[cpu]} is added (include/asm-generic/percpu.h, per_cpu_ptr).
     */
    public long perCpu(String name, int cpu) {
        long off = image.symbols().require(name);
        return u64(symbol("__per_cpu_offset") + 8L * cpu) + off;
    }

    /** "NULL", the symbol a runtime address points at (with an offset inside it), or the address in hex. */
    public String describe(long pointer) {
        if (pointer == 0) return "NULL";
        return image.symbols().nearest(addresses.link(pointer)).map(KernelSymbols.Hit::toString)
                .orElseGet(() -> String.format("0x%x", pointer));
    }
}
