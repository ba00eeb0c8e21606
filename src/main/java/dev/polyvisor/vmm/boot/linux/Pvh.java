package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.vmm.boot.LoadException;
import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.memory.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Direct boot of the vmlinux inside a bzImage through the PVH entry point (Xen's HVM direct boot
 * ABI, include/xen/interface/hvm/start_info.h; Linux arch/x86/platform/pvh/): the payload is
 * decompressed, its PT_LOAD segments placed at their physical addresses, and the vCPU enters the
 * XEN_ELFNOTE_PHYS32_ENTRY address in 32-bit protected mode with paging off, flat segments and
 * EBX = &hvm_start_info, which carries the command line, the initrd as module 0, the RSDP and the
 * memory map.
 *
 * <p>Low-memory layout: GDT at 0x500, hvm_start_info at 0x6000, module list at 0x6040, memory
 * map at 0x6100, command line at 0x20000.
 */
public final class Pvh {
    public static final int START_INFO_MAGIC = 0x336EC578;
    public static final long START_INFO = 0x6000, MODLIST = 0x6040, MEMMAP = 0x6100, CMDLINE = 0x20000;
    static final int MEMMAP_MAX = (int) ((0x7000 - MEMMAP) / 24);
    static final int CMDLINE_MAX = 0x10000 - 1;

    private Pvh() {}

    /** Decompresses the vmlinux out of a bzImage (or passes a bare vmlinux ELF through). */
    public static ElfKernel vmlinux(byte[] kernel) throws LoadException {
        if (KernelPayload.detect(kernel) == KernelPayload.Format.ELF) return ElfKernel.parse(kernel);
        return vmlinux(MemorySegment.ofArray(kernel));
    }

    /** As {@link #vmlinux(byte[])}, for an image in a segment (an image file read off the heap, ImageFile.readOffHeap); the ELF is on the heap. */
    public static ElfKernel vmlinux(MemorySegment kernel) throws LoadException {
        if (KernelPayload.detect(kernel) == KernelPayload.Format.ELF) return ElfKernel.parse(kernel.toArray(ValueLayout.JAVA_BYTE));
        return ElfKernel.parse(KernelPayload.decompress(BzImage.parse(kernel).payloadInPlace()));
    }

    public static LoadedKernel load(GuestMemory mem, byte[] kernel, byte[] initrd, String cmdline, List<E820Entry> e820,
                                    long acpiRsdp) throws LoadException {
        return load(mem, vmlinux(kernel), initrd == null ? null : MemorySegment.ofArray(initrd), cmdline, e820, acpiRsdp);
    }

    public static LoadedKernel load(GuestMemory mem, MemorySegment kernel, MemorySegment initrd, String cmdline, List<E820Entry> e820,
                                    long acpiRsdp) throws LoadException {
        return load(mem, vmlinux(kernel), initrd, cmdline, e820, acpiRsdp);
    }

    public static LoadedKernel load(GuestMemory mem, ElfKernel elf, byte[] initrd, String cmdline, List<E820Entry> e820,
                                    long acpiRsdp) throws LoadException {
        return load(mem, elf, initrd == null ? null : MemorySegment.ofArray(initrd), cmdline, e820, acpiRsdp);
    }

    public static LoadedKernel load(GuestMemory mem, ElfKernel elf, MemorySegment initrd, String cmdline, List<E820Entry> e820,
                                    long acpiRsdp) throws LoadException {
        long entry = elf.pvhEntry().orElseThrow(() ->
                new LoadException("kernel has no PVH entry point (no XEN_ELFNOTE_PHYS32_ENTRY note; needs CONFIG_PVH)"));
        if (e820.size() > MEMMAP_MAX) throw new LoadException("e820 map has " + e820.size() + " entries; the PVH memory map holds at most " + MEMMAP_MAX);
        byte[] cmd = (cmdline == null ? "" : cmdline).getBytes(StandardCharsets.UTF_8);
        if (cmd.length > CMDLINE_MAX) throw new LoadException("kernel command line is " + cmd.length + " bytes; at most " + CMDLINE_MAX + " fit");

        long lo = elf.lowestAddress(), hi = elf.highestAddress();
        if (hi > mem.ramSize || !BootTables.isRam(e820, lo, hi))
            throw new LoadException(String.format("guest RAM too small: the kernel's segments need RAM at 0x%x-0x%x", lo, hi));
        for (ElfKernel.Segment s : elf.loads) {
            mem.load(s.paddr(), elf.image, (int) s.fileOffset(), (int) s.fileSize());
            mem.checkRam(s.paddr(), s.memSize());
            mem.zero(s.paddr() + s.fileSize(), s.memSize() - s.fileSize()); // .bss
        }

        long initrdAt = 0, initrdLen = initrd == null ? 0 : initrd.byteSize();
        if (initrdLen > 0) {
            initrdAt = BootTables.placeHigh(e820, mem.ramSize, initrdLen, 1L << 32, lo, hi);
            if (initrdAt < 0) throw new LoadException("guest RAM too small: no room for the " + initrdLen + "-byte initrd below 4 GiB beside the kernel");
            mem.load(initrdAt, initrd);
        }
        mem.checkRam(CMDLINE, cmd.length + 1);
        mem.load(CMDLINE, cmd);
        mem.st8(CMDLINE + cmd.length, 0);

        // struct hvm_start_info (version 1): magic, version, flags, nr_modules, modlist_paddr,
        // cmdline_paddr, rsdp_paddr, memmap_paddr, memmap_entries, reserved.
        mem.checkRam(START_INFO, 0x7000 - START_INFO);
        for (long a = START_INFO; a < 0x7000; a += 8) mem.st64(a, 0);
        mem.st32(START_INFO, START_INFO_MAGIC);
        mem.st32(START_INFO + 4, 1);
        mem.st32(START_INFO + 12, initrdLen > 0 ? 1 : 0);
        mem.st64(START_INFO + 16, initrdLen > 0 ? MODLIST : 0);
        mem.st64(START_INFO + 24, CMDLINE);
        mem.st64(START_INFO + 32, acpiRsdp);
        mem.st64(START_INFO + 40, MEMMAP);
        mem.st32(START_INFO + 48, e820.size());
        if (initrdLen > 0) { // struct hvm_modlist_entry: paddr, size, cmdline_paddr, reserved
            mem.st64(MODLIST, initrdAt);
            mem.st64(MODLIST + 8, initrdLen);
        }
        long at = MEMMAP;
        for (E820Entry e : e820) { // struct hvm_memmap_table_entry: addr, size, type, reserved
            mem.st64(at, e.addr());
            mem.st64(at + 8, e.size());
            mem.st32(at + 16, e.type());
            at += 24;
        }
        BootTables.writeGdt(mem, false);
        EntryState state = new EntryState(EntryState.Mode.PROTECTED_32, entry, 0, START_INFO, 0,
                Cpu.CR0_PE | Cpu.CR0_ET, 0, 0, 0, BootTables.GDT, BootTables.GDT_LIMIT, BootTables.BOOT_CS, BootTables.BOOT_DS);
        return new LoadedKernel(state, lo, hi, initrdAt, initrdLen, CMDLINE, START_INFO);
    }
}
