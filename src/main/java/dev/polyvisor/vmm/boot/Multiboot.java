package dev.polyvisor.vmm.boot;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.memory.GuestMemory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Multiboot v1 loader (Multiboot Specification 0.6.96). Finds the header in the first 8192 bytes,
 * loads the kernel from its ELF program headers or from the a.out-kludge address fields (header flag
 * bit 16), loads modules page-aligned after it, builds the multiboot_info structure with a memory map,
 * and enters the kernel in 32-bit protected mode with paging off, EAX = 0x2BADB002 and EBX = &mbi
 * (section 3.2). Like QEMU and GRUB, the command line starts with the kernel's file name.
 */
public final class Multiboot {
    public static final int HEADER_MAGIC = 0x1BADB002, BOOTLOADER_MAGIC = 0x2BADB002;
    public static final int SEARCH_LIMIT = 8192;
    /** Header flags (3.1.2): bit 0 page-align modules, 1 memory info, 2 video mode, 16 address fields valid. */
    public static final int HF_ALIGN = 1, HF_MEMINFO = 2, HF_VIDEO = 4, HF_AOUT_KLUDGE = 1 << 16;
    /** multiboot_info flags (3.3). */
    public static final int MBI_MEM = 1, MBI_CMDLINE = 1 << 2, MBI_MODS = 1 << 3, MBI_MMAP = 1 << 6, MBI_LOADER_NAME = 1 << 9;
    /** Byte offsets in multiboot_info (3.3). */
    public static final int MBI_FLAGS = 0, MBI_MEM_LOWER = 4, MBI_MEM_UPPER = 8, MBI_BOOT_DEVICE = 12, MBI_CMDLINE_OFF = 16,
            MBI_MODS_COUNT = 20, MBI_MODS_ADDR = 24, MBI_MMAP_LENGTH = 44, MBI_MMAP_ADDR = 48, MBI_LOADER_NAME_OFF = 64,
            MBI_SIZE = 120;
    public static final String LOADER_NAME = "polyvisor";

    /** The parsed header: its file offset, flags, and the a.out-kludge fields (valid with bit 16). */
    public record Header(int offset, int flags, long headerAddr, long loadAddr, long loadEndAddr, long bssEndAddr, long entryAddr) {
        public boolean aoutKludge() { return (flags & HF_AOUT_KLUDGE) != 0; }
    }

    /** A boot module: a file and its command-line string. */
    public record Module(Path path, String cmdline) {}

    /** Where things went: the entry point, the multiboot_info address, and the module ranges. */
    public record Result(long entry, long mbi, long kernelStart, long kernelEnd, List<long[]> modules) {}

    private Multiboot() {}

    public static Header findHeader(byte[] b, String name) throws LoadException {
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        int limit = Math.min(SEARCH_LIMIT, b.length);
        int badChecksumAt = -1;
        for (int o = 0; o + 12 <= limit; o += 4) {
            if (bb.getInt(o) != HEADER_MAGIC) continue;
            int flags = bb.getInt(o + 4), sum = bb.getInt(o + 8);
            if (HEADER_MAGIC + flags + sum != 0) {
                if (badChecksumAt < 0) badChecksumAt = o;
                continue;
            }
            if ((flags & HF_AOUT_KLUDGE) == 0) return new Header(o, flags, 0, 0, 0, 0, 0);
            if (o + 32 > b.length) throw new LoadException(name + ": multiboot header at offset " + o + " is truncated");
            return new Header(o, flags, u32(bb, o + 12), u32(bb, o + 16), u32(bb, o + 20), u32(bb, o + 24), u32(bb, o + 28));
        }
        if (badChecksumAt >= 0)
            throw new LoadException(name + ": multiboot header at offset " + badChecksumAt + " has a bad checksum");
        throw new LoadException(name + ": no multiboot header (magic 0x1BADB002) in the first " + SEARCH_LIMIT + " bytes");
    }

    /** True when the image carries a valid Multiboot v1 header. */
    public static boolean isMultiboot(byte[] b) {
        try { findHeader(b, ""); return true; } catch (LoadException e) { return false; }
    }

    public static Result load(GuestMemory mem, Cpu cpu, Path kernel, String append, List<Module> modules) throws LoadException {
        byte[] img = ImageFile.read(kernel, "kernel");
        String name = kernel.toString();
        String cmdline = append == null || append.isEmpty() ? name : name + " " + append;
        return load(mem, cpu, img, name, cmdline, modules);
    }

    public static Result load(GuestMemory mem, Cpu cpu, byte[] img, String name, String cmdline, List<Module> modules)
            throws LoadException {
        Header h = findHeader(img, name);
        int unsupported = h.flags & 0xFFFF & ~(HF_ALIGN | HF_MEMINFO | HF_VIDEO);
        if (unsupported != 0)
            throw new LoadException(String.format("%s: multiboot header requires unsupported features (flags 0x%x)", name, unsupported));
        long start, end, entry;
        if (h.aoutKludge()) {
            long[] r = loadAout(mem, img, h, name);
            start = r[0]; end = r[1]; entry = h.entryAddr;
        } else if (ElfImage.isElf(img)) {
            ElfImage elf = ElfImage.parse(img, name);
            end = elf.load(mem, img, name);
            start = elf.segments().stream().mapToLong(ElfImage.Segment::paddr).min().orElse(0);
            entry = elf.entry();
        } else {
            throw new LoadException(name + ": multiboot kernel is neither ELF nor has the a.out-kludge address fields (flag bit 16)");
        }
        if (entry < 0 || entry >= 1L << 32) throw new LoadException(String.format("%s: entry point 0x%x is above 4 GiB", name, entry));

        // Modules, page-aligned after the kernel (header flag bit 0 asks for it; aligning always is allowed).
        List<long[]> mods = new ArrayList<>();
        long next = align(end);
        List<byte[]> modData = new ArrayList<>();
        for (Module m : modules) {
            byte[] d = ImageFile.read(m.path(), "module");
            ElfImage.checkRam(mem, next, d.length, "module " + m.path());
            mem.load(next, d);
            mods.add(new long[] {next, next + d.length});
            modData.add(d);
            next = align(next + d.length);
        }

        // The boot information page(s): GDT, multiboot_info, memory map, module list, strings.
        long info = next;
        long gdt = info, mbi = info + 0x40, mmap = info + 0x100, modList = info + 0x200;
        long strings = modList + 16L * modules.size();
        byte[] cmd = cstr(cmdline);
        byte[] loaderName = cstr(LOADER_NAME);
        long total = strings - info + cmd.length + loaderName.length;
        for (Module m : modules) total += cstr(m.cmdline()).length;
        ElfImage.checkRam(mem, info, total, name + " boot information");
        if (info + total > 1L << 32) throw new LoadException(name + ": boot information would lie above 4 GiB");
        ElfImage.zero(mem, info, total);
        BootCpu.writeGdt(mem, gdt);

        long s = strings;
        long cmdAddr = s; mem.load(s, cmd); s += cmd.length;
        long nameAddr = s; mem.load(s, loaderName); s += loaderName.length;
        for (int i = 0; i < modules.size(); i++) {
            byte[] mc = cstr(modules.get(i).cmdline());
            mem.load(s, mc);
            long e = modList + 16L * i;
            mem.st32(e, (int) mods.get(i)[0]);
            mem.st32(e + 4, (int) mods.get(i)[1]);
            mem.st32(e + 8, (int) s);
            s += mc.length;
        }

        int mmapLen = writeMemoryMap(mem, mmap);
        long upperTop = Math.min(Math.min(mem.ramSize, mem.holeStart), 0xFEC0_0000L); // the first hole above 1 MiB
        mem.st32(mbi + MBI_FLAGS, MBI_MEM | MBI_CMDLINE | MBI_MODS | MBI_MMAP | MBI_LOADER_NAME);
        mem.st32(mbi + MBI_MEM_LOWER, (int) (LOW_RAM_END / 1024));
        mem.st32(mbi + MBI_MEM_UPPER, (int) ((upperTop - 0x100000) / 1024));
        mem.st32(mbi + MBI_CMDLINE_OFF, (int) cmdAddr);
        mem.st32(mbi + MBI_MODS_COUNT, modules.size());
        mem.st32(mbi + MBI_MODS_ADDR, (int) modList);
        mem.st32(mbi + MBI_MMAP_LENGTH, mmapLen);
        mem.st32(mbi + MBI_MMAP_ADDR, (int) mmap);
        mem.st32(mbi + MBI_LOADER_NAME_OFF, (int) nameAddr);

        BootCpu.enterProtected32(cpu, gdt, entry);
        cpu.r[Cpu.RAX] = BOOTLOADER_MAGIC & 0xFFFF_FFFFL;
        cpu.r[Cpu.RBX] = mbi;
        return new Result(entry, mbi, start, end, List.copyOf(mods));
    }

    /** Conventional memory ends where the EBDA starts (as QEMU's BIOS reports: 639 KiB). */
    public static final long LOW_RAM_END = 0x9FC00;

    /** BIOS e820-style map (3.3, "mmap_*"): entries of size(4)=20, base(8), length(8), type(4). */
    static int writeMemoryMap(GuestMemory mem, long at) {
        long lowTop = Math.min(mem.ramSize, mem.holeStart);
        List<long[]> map = new ArrayList<>(List.of(
                new long[] {0, LOW_RAM_END, 1},
                new long[] {LOW_RAM_END, 0xA0000 - LOW_RAM_END, 2},
                new long[] {0xF0000, 0x10000, 2},
                new long[] {0x100000, lowTop - 0x100000, 1}));
        if (mem.holeEnd < mem.ramSize) map.add(new long[] {mem.holeEnd, mem.ramSize - mem.holeEnd, 1});
        long p = at;
        for (long[] e : map) {
            mem.st32(p, 20);
            mem.st64(p + 4, e[0]);
            mem.st64(p + 12, e[1]);
            mem.st32(p + 20, (int) e[2]);
            p += 24;
        }
        return (int) (p - at);
    }

    private static long[] loadAout(GuestMemory mem, byte[] img, Header h, String name) throws LoadException {
        if (h.headerAddr < h.loadAddr)
            throw new LoadException(name + ": multiboot header_addr is below load_addr");
        long fileOff = h.offset - (h.headerAddr - h.loadAddr);
        if (fileOff < 0) throw new LoadException(name + ": multiboot load_addr lies before the start of the file");
        long loadEnd = h.loadEndAddr == 0 ? h.loadAddr + (img.length - fileOff) : h.loadEndAddr;
        if (loadEnd < h.loadAddr) throw new LoadException(name + ": multiboot load_end_addr is below load_addr");
        long size = loadEnd - h.loadAddr;
        if (fileOff + size > img.length)
            throw new LoadException(name + ": truncated: load_end_addr needs " + (fileOff + size) + " bytes, file has " + img.length);
        long bssEnd = h.bssEndAddr == 0 ? loadEnd : h.bssEndAddr;
        if (bssEnd < loadEnd) throw new LoadException(name + ": multiboot bss_end_addr is below load_end_addr");
        ElfImage.checkRam(mem, h.loadAddr, bssEnd - h.loadAddr, name);
        mem.load(h.loadAddr, img, (int) fileOff, (int) size);
        ElfImage.zero(mem, loadEnd, bssEnd - loadEnd);
        return new long[] {h.loadAddr, bssEnd};
    }

    private static long align(long a) { return (a + 0xFFF) & ~0xFFFL; }

    private static long u32(ByteBuffer bb, int o) { return bb.getInt(o) & 0xFFFF_FFFFL; }

    private static byte[] cstr(String s) {
        byte[] b = (s == null ? "" : s).getBytes(StandardCharsets.UTF_8);
        return java.util.Arrays.copyOf(b, b.length + 1);
    }
}
