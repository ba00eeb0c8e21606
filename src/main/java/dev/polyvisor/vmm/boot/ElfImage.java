package dev.polyvisor.vmm.boot;

import dev.polyvisor.memory.GuestMemory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * An x86 ELF executable (ELF32 i386 or ELF64 x86-64, little-endian), reduced to what a boot loader
 * needs: its PT_LOAD segments and entry point. Segments load at their physical address (p_paddr), as
 * the Multiboot spec (3.1.3) and QEMU's loaders do; the entry is translated from virtual to physical
 * when it lies in a segment whose addresses differ. Field offsets: System V ABI gABI, "ELF Header" and
 * "Program Header".
 */
public record ElfImage(boolean elf64, long entry, List<Segment> segments) {
    public static final int PT_LOAD = 1;
    private static final int EM_386 = 3, EM_X86_64 = 62, ET_EXEC = 2;

    /** One PT_LOAD: {@code fileSize} bytes from {@code offset} at {@code paddr}, zero-filled to {@code memSize}. */
    public record Segment(long paddr, long vaddr, long offset, long fileSize, long memSize) {}

    public static boolean isElf(byte[] b) {
        return b.length >= 4 && b[0] == 0x7F && b[1] == 'E' && b[2] == 'L' && b[3] == 'F';
    }

    public static ElfImage parse(byte[] b, String name) throws LoadException {
        if (!isElf(b)) throw new LoadException(name + ": not an ELF file");
        if (b.length < 52) throw new LoadException(name + ": truncated ELF header");
        int cls = b[4];
        if (cls != 1 && cls != 2) throw new LoadException(name + ": bad ELF class " + cls);
        if (b[5] != 1) throw new LoadException(name + ": not a little-endian ELF");
        boolean is64 = cls == 2;
        if (is64 && b.length < 64) throw new LoadException(name + ": truncated ELF header");
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        int type = bb.getShort(16) & 0xFFFF, machine = bb.getShort(18) & 0xFFFF;
        if (type != ET_EXEC) throw new LoadException(name + ": ELF type " + type + " is not an executable (ET_EXEC)");
        if (machine != (is64 ? EM_X86_64 : EM_386))
            throw new LoadException(name + ": ELF machine " + machine + " is not " + (is64 ? "x86-64" : "i386"));
        long entry = is64 ? bb.getLong(24) : bb.getInt(24) & 0xFFFF_FFFFL;
        long phoff = is64 ? bb.getLong(32) : bb.getInt(28) & 0xFFFF_FFFFL;
        int phentsize = bb.getShort(is64 ? 54 : 42) & 0xFFFF;
        int phnum = bb.getShort(is64 ? 56 : 44) & 0xFFFF;
        int minEnt = is64 ? 56 : 32;
        if (phnum == 0) throw new LoadException(name + ": ELF has no program headers");
        if (phentsize < minEnt) throw new LoadException(name + ": bad ELF program header size " + phentsize);
        if (phoff < 0 || phoff + (long) phnum * phentsize > b.length)
            throw new LoadException(name + ": truncated ELF program headers");
        List<Segment> segs = new ArrayList<>();
        for (int i = 0; i < phnum; i++) {
            int o = (int) (phoff + (long) i * phentsize);
            if (bb.getInt(o) != PT_LOAD) continue;
            long off, va, pa, filesz, memsz;
            if (is64) {
                off = bb.getLong(o + 8); va = bb.getLong(o + 16); pa = bb.getLong(o + 24);
                filesz = bb.getLong(o + 32); memsz = bb.getLong(o + 40);
            } else {
                off = bb.getInt(o + 4) & 0xFFFF_FFFFL; va = bb.getInt(o + 8) & 0xFFFF_FFFFL;
                pa = bb.getInt(o + 12) & 0xFFFF_FFFFL; filesz = bb.getInt(o + 16) & 0xFFFF_FFFFL;
                memsz = bb.getInt(o + 20) & 0xFFFF_FFFFL;
            }
            if (off < 0 || filesz < 0 || off + filesz > b.length)
                throw new LoadException(name + ": ELF segment " + i + " extends past the end of the file");
            if (memsz < filesz) throw new LoadException(name + ": ELF segment " + i + " has memsz < filesz");
            segs.add(new Segment(pa, va, off, filesz, memsz));
        }
        if (segs.isEmpty()) throw new LoadException(name + ": ELF has no PT_LOAD segments");
        for (Segment s : segs)
            if (s.vaddr != s.paddr && Long.compareUnsigned(entry - s.vaddr, s.memSize) < 0) {
                entry = s.paddr + (entry - s.vaddr);
                break;
            }
        return new ElfImage(is64, entry, List.copyOf(segs));
    }

    /** Copies the segments into guest RAM and zeroes their BSS; returns the highest physical end. */
    public long load(GuestMemory mem, byte[] file, String name) throws LoadException {
        long end = 0;
        for (Segment s : segments) {
            checkRam(mem, s.paddr, s.memSize, name);
            mem.load(s.paddr, file, (int) s.offset, (int) s.fileSize);
            zero(mem, s.paddr + s.fileSize, s.memSize - s.fileSize);
            end = Math.max(end, s.paddr + s.memSize);
        }
        return end;
    }

    static void checkRam(GuestMemory mem, long pa, long len, String name) throws LoadException {
        if (pa < 0 || len < 0 || pa + len > mem.ramSize || pa + len < pa)
            throw new LoadException(String.format("%s: segment at 0x%x+0x%x is outside guest RAM (%d MiB)",
                    name, pa, len, mem.ramSize >> 20));
    }

    static void zero(GuestMemory mem, long pa, long len) {
        if (len > 0) mem.ram.asSlice(pa, len).fill((byte) 0);
    }
}
