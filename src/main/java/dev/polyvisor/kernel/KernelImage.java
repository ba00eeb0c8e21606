package dev.polyvisor.kernel;

/**
 * A vmlinux as this package uses it: the ELF, its BTF and its symbols. The ELF comes from the
 * caller (the decompressed bzImage payload: {@code vmm.boot.linux.KernelPayload.vmlinux}).
 */
public record KernelImage(Elf64 elf, Btf btf, KernelSymbols symbols) {
    /** Parses the ELF and its {@code .BTF}; symbols from {@code .symtab} when there is one, else from kallsyms. */
    public static KernelImage of(byte[] vmlinux) throws KernelFormatException {
        Elf64 elf = Elf64.parse(vmlinux);
        KernelSymbols syms = KernelSymbols.fromElf(elf);
        if (syms.size() == 0) syms = KernelSymbols.fromKallsyms(elf);
        return new KernelImage(elf, btf(elf), syms);
    }

    /** Parses the ELF and its {@code .BTF}, with symbols from elsewhere (a System.map, /proc/kallsyms). */
    public static KernelImage of(byte[] vmlinux, KernelSymbols symbols) throws KernelFormatException {
        Elf64 elf = Elf64.parse(vmlinux);
        return new KernelImage(elf, btf(elf), symbols);
    }

    private static Btf btf(Elf64 elf) throws KernelFormatException {
        Elf64.Section s = elf.section(".BTF").orElseThrow(() -> new KernelFormatException("vmlinux has no .BTF section (built without CONFIG_DEBUG_INFO_BTF?)"));
        return Btf.parse(elf.view(s));
    }

    /** The kernel's {@code linux_banner} ("Linux version 6.1.0-... (...) #1 SMP ..."), read from the image. */
    public String banner() throws KernelFormatException {
        long at = symbols.symbol("linux_banner").orElseThrow(() -> new KernelFormatException("the kernel has no linux_banner symbol")).address();
        Elf64.Section s = elf.sectionAt(at).orElseThrow(() -> KernelFormatException.of("linux_banner (0x%x) is in no section of the image", at));
        return PhysicalMemory.cString(elf.bytesAt(at, (int) Math.min(512, s.addr() + s.size() - at)), 0, 512).strip();
    }
}
