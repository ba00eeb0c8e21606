package dev.polyvisor.vmm.boot;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.vmm.VmConfig.FlatMode;

import java.nio.file.Path;

/**
 * A raw binary loaded at one address and entered at its first byte, in real mode (CS:IP with the
 * data segments equal to CS), 32-bit protected mode (flat segments, paging off, as Multiboot) or 64-bit
 * mode (first 4 GiB identity-mapped with 2 MiB pages). The GDT and page tables go in the page(s) after
 * the image.
 */
public final class FlatBinary {
    private FlatBinary() {}

    public static void load(GuestMemory mem, Cpu cpu, Path file, long address, FlatMode mode) throws LoadException {
        load(mem, cpu, ImageFile.read(file, "binary"), file.toString(), address, mode);
    }

    public static void load(GuestMemory mem, Cpu cpu, byte[] img, String name, long address, FlatMode mode) throws LoadException {
        if (img.length == 0) throw new LoadException(name + ": empty file");
        ElfImage.checkRam(mem, address, img.length, name);
        long end = address + img.length;
        long tables = (end + 0xFFF) & ~0xFFFL;
        switch (mode) {
            case REAL -> {
                if (end > 0x100000)
                    throw new LoadException(String.format("%s: a real-mode image must lie below 1 MiB (0x%x-0x%x)", name, address, end));
                mem.load(address, img);
                int cs = address <= 0xFFFF ? 0 : (int) (address >>> 4);
                BootCpu.enterReal(cpu, cs, (int) (address - ((long) cs << 4)));
            }
            case PROTECTED32 -> {
                if (end > 1L << 32) throw new LoadException(name + ": a 32-bit image must lie below 4 GiB");
                ElfImage.checkRam(mem, tables, BootCpu.GDT_SIZE, name + " GDT");
                mem.load(address, img);
                BootCpu.writeGdt(mem, tables);
                BootCpu.enterProtected32(cpu, tables, address);
            }
            case LONG64 -> {
                ElfImage.checkRam(mem, tables, BootCpu.PAGE_TABLES_SIZE + 4096, name + " page tables");
                mem.load(address, img);
                long gdt = tables + BootCpu.PAGE_TABLES_SIZE;
                BootCpu.writeGdt(mem, gdt);
                BootCpu.enterLong64(cpu, mem, gdt, tables, address);
            }
        }
    }
}
