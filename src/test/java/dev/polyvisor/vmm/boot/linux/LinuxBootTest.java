package dev.polyvisor.vmm.boot.linux;

import dev.polyvisor.vmm.boot.LoadException;
import static org.junit.jupiter.api.Assertions.*;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.TestPlatform;
import dev.polyvisor.cpu.TraceCache;
import dev.polyvisor.cpu.Vcpu;
import dev.polyvisor.cpu.VcpuExit;
import dev.polyvisor.cpu.exec.Isa;
import dev.polyvisor.memory.GuestMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.Test;

class LinuxBootTest {
    static final long RAM = 64 << 20;

    static List<E820Entry> e820(long ram) {
        return List.of(new E820Entry(0, 0x9FC00, E820Entry.RAM), new E820Entry(0x9FC00, 0x400, E820Entry.RESERVED),
                new E820Entry(0xF0000, 0x10000, E820Entry.RESERVED), new E820Entry(0x100000, ram - 0x100000, E820Entry.RAM));
    }

    private static byte[] initrd() {
        byte[] d = new byte[10_000];
        for (int i = 0; i < d.length; i++) d[i] = (byte) (i * 31 + 0x5A);
        return d;
    }

    @Test
    void theVmmPassesTheKernelAnRngSeedInSetupDataAsABootLoaderDoes() throws LoadException {
        byte[] img = SyntheticKernels.bzImage();
        byte[] expected = new byte[LinuxBoot.RNG_SEED_BYTES];
        new java.util.SplittableRandom(11).nextBytes(expected);
        try (GuestMemory mem = new GuestMemory(RAM)) {
            LinuxBoot.load(mem, java.lang.foreign.MemorySegment.ofArray(img), false, new java.util.SplittableRandom(11), null,
                    "console=ttyS0", e820(RAM), 0);
            // boot_params.hdr.setup_data -> struct setup_data { next 0, type SETUP_RNG_SEED (9), len 32, the seed }.
            assertEquals(LinuxBoot.SETUP_DATA, mem.ld64(LinuxBoot.BOOT_PARAMS + 0x250));
            assertEquals(0, mem.ld64(LinuxBoot.SETUP_DATA), "the list's only entry");
            assertEquals(9, mem.ld32(LinuxBoot.SETUP_DATA + 8));
            assertEquals(32, mem.ld32(LinuxBoot.SETUP_DATA + 12));
            assertArrayEquals(expected, mem.readBytes(LinuxBoot.SETUP_DATA + 16, 32));
            assertTrue(LinuxBoot.SETUP_DATA >= LinuxBoot.CMDLINE + LinuxBoot.CMDLINE_WINDOW, "clear of the longest command line");
        }
        try (GuestMemory mem = new GuestMemory(RAM)) {
            LinuxBoot.load(mem, img, null, "console=ttyS0", e820(RAM), 0);
            assertEquals(0, mem.ld64(LinuxBoot.BOOT_PARAMS + 0x250), "no entropy source, no seed");
        }
    }

    @Test
    void fillsBootParamsAndLoadsKernelInitrdAndCommandLine() throws LoadException {
        try (GuestMemory mem = new GuestMemory(RAM)) {
            byte[] img = SyntheticKernels.bzImage();
            LoadedKernel lk = LinuxBoot.load(mem, img, initrd(), "console=ttyS0 quiet", e820(RAM), 0xF5A40);
            long bp = LinuxBoot.BOOT_PARAMS;
            assertEquals(bp, lk.bootInfo());
            // The kernel's own setup header is copied into the zero page.
            assertEquals(0x53726448, mem.ld32(bp + 0x202));
            assertEquals(0xAA55, mem.ld16(bp + 0x1FE));
            assertEquals(0x020F, mem.ld16(bp + 0x206));
            assertEquals(0x200000, mem.ld32(bp + 0x230));
            assertEquals(0xFF, mem.ld8(bp + 0x210), "type_of_loader");
            assertEquals(0xFFFF, mem.ld16(bp + 0x1FA), "vid_mode");
            // Nothing beyond the header leaks from the image into the zero page.
            assertEquals(0, mem.ld8(bp + 0x26C));
            assertEquals(0, mem.ld8(bp + 0x1F0));
            // Command line.
            assertEquals(LinuxBoot.CMDLINE, mem.ld32(bp + 0x228) & 0xFFFF_FFFFL);
            assertEquals(0, mem.ld32(bp + 0x0C8));
            assertEquals("console=ttyS0 quiet", new String(mem.readBytes(LinuxBoot.CMDLINE, 19)));
            assertEquals(0, mem.ld8(LinuxBoot.CMDLINE + 19));
            // Kernel at pref_address.
            assertEquals(0x1000000, lk.kernelStart());
            assertArrayEquals(java.util.Arrays.copyOfRange(img, 2048, img.length), mem.readBytes(0x1000000, 4096));
            assertEquals(0x1000000 + 0x400000, lk.kernelEnd());
            // Initrd: high, page aligned, within RAM, clear of the kernel.
            long rd = mem.ld32(bp + 0x218) & 0xFFFF_FFFFL;
            assertEquals(lk.initrdStart(), rd);
            assertEquals(10_000, mem.ld32(bp + 0x21C));
            assertEquals(0, rd & 0xFFF);
            assertTrue(rd + 10_000 <= RAM && rd + 10_000 > RAM - 0x2000, "initrd placed at the top of RAM: 0x" + Long.toHexString(rd));
            assertArrayEquals(initrd(), mem.readBytes(rd, 10_000));
            // e820 table.
            assertEquals(4, mem.ld8(bp + 0x1E8));
            assertEquals(0x100000, mem.ld64(bp + 0x2D0 + 3 * 20));
            assertEquals(RAM - 0x100000, mem.ld64(bp + 0x2D0 + 3 * 20 + 8));
            assertEquals(1, mem.ld32(bp + 0x2D0 + 3 * 20 + 16));
            assertEquals(2, mem.ld32(bp + 0x2D0 + 20 + 16));
            assertEquals(0xF5A40, mem.ld64(bp + 0x070), "acpi_rsdp_addr");
        }
    }

    @Test
    void withItsVmlinuxTheDecompressorIsSkippedAndStartup64IsEntered() throws LoadException {
        byte[] elf = SyntheticKernels.vmlinux(false);
        ByteBuffer.wrap(elf).order(ByteOrder.LITTLE_ENDIAN).putLong(0x18, 0x1000010); // e_entry: phys_startup_64
        try (GuestMemory mem = new GuestMemory(RAM)) {
            mem.st64(0x1000800, -1L); // what the segment's .bss must not keep
            LoadedKernel lk = LinuxBoot.load(mem, SyntheticKernels.bzImageWithPayload(elf), true, initrd(), "console=ttyS0", e820(RAM), 0);
            EntryState e = lk.entry();
            assertEquals(EntryState.Mode.LONG_64, e.mode());
            assertEquals(0x1000010, e.rip(), "the ELF entry, not load + 0x200");
            assertEquals(LinuxBoot.BOOT_PARAMS, e.rsi());
            assertEquals(0x90, mem.ld8(0x1000000), "the vmlinux's text at its physical address");
            assertEquals(0x93, mem.ld8(0x1000003));
            assertEquals(0, mem.ld64(0x1000800), ".bss zeroed");
            assertEquals(0x53726448, mem.ld32(LinuxBoot.BOOT_PARAMS + 0x202), "boot_params still has the bzImage's setup header (\"HdrS\")");
            assertTrue(lk.initrdStart() >= 0x1000000 + 0x1000, "the initrd is not placed over the kernel");
            assertEquals("console=ttyS0", new String(mem.readBytes(LinuxBoot.CMDLINE, 13), java.nio.charset.StandardCharsets.US_ASCII));
        }
        byte[] low = SyntheticKernels.vmlinux(false);
        ByteBuffer.wrap(low).order(ByteOrder.LITTLE_ENDIAN).putLong(0x18, 0x2000000); // outside every segment
        try (GuestMemory mem = new GuestMemory(RAM)) {
            String m = assertThrows(LoadException.class, () -> LinuxBoot.load(mem, SyntheticKernels.bzImageWithPayload(low), true, null, "",
                    e820(RAM), 0)).getMessage();
            assertTrue(m.contains("entry 0x2000000 is outside its segments"), m);
        }
    }

    @Test
    void entersLongModeAtLoadAddressPlus0x200WithRsiAtBootParams() throws LoadException {
        try (GuestMemory mem = new GuestMemory(RAM)) {
            LoadedKernel lk = LinuxBoot.load(mem, SyntheticKernels.bzImage(), null, "", e820(RAM));
            EntryState e = lk.entry();
            assertEquals(EntryState.Mode.LONG_64, e.mode());
            assertEquals(0x1000200, e.rip());
            assertEquals(LinuxBoot.BOOT_PARAMS, e.rsi());
            assertEquals(0x10, e.codeSelector());
            assertEquals(0x18, e.dataSelector());
            // GDT: __BOOT_CS is a 64-bit code segment (L=1, D=0), __BOOT_DS flat data.
            long cs = mem.ld64(e.gdtBase() + 0x10);
            assertEquals(1, (cs >>> 53) & 1, "L bit");
            assertEquals(0, (cs >>> 54) & 1, "D bit");
            assertEquals(0x9B, (cs >>> 40) & 0xFF);
            assertEquals(0x93, (mem.ld64(e.gdtBase() + 0x18) >>> 40) & 0xFF);
            // Identity map: the last 2 MiB page below 4 GiB maps to itself.
            long pml4 = e.cr3();
            long pdpt = mem.ld64(pml4) & ~0xFFFL;
            long pd3 = mem.ld64(pdpt + 3 * 8) & ~0xFFFL;
            assertEquals(0xFFE00000L | 0x83, mem.ld64(pd3 + 511 * 8));
            assertEquals(0, lk.initrdSize());
            assertEquals(0, mem.ld32(LinuxBoot.BOOT_PARAMS + 0x218));
        }
    }

    @Test
    void theCpuRunsTheKernelEntryInLongModeThroughTheIdentityMap() throws LoadException {
        byte[] pm = new byte[4096];
        // At load+0x200, fetched at 16 MiB through the identity map: mov rax,0x4300000000000041 (REX.W:
        // a 10-byte instruction only in 64-bit mode); out 0xe9,al; hlt
        byte[] code = {0x48, (byte) 0xB8, 0x41, 0, 0, 0, 0, 0, 0, 0x43, (byte) 0xE6, (byte) 0xE9, (byte) 0xF4};
        System.arraycopy(code, 0, pm, 0x200, code.length);
        byte[] img = SyntheticKernels.bzImage(pm, 0x400, 0x100);
        try (GuestMemory mem = new GuestMemory(RAM)) {
            LoadedKernel lk = LinuxBoot.load(mem, img, new byte[] {0x42, 1, 2, 3}, "", e820(RAM));
            TestPlatform p = new TestPlatform();
            Cpu c = new Cpu(0, mem, p);
            lk.entry().apply(c);
            assertTrue(c.long64);
            assertEquals(0, c.cpl);
            assertFalse(c.interruptsEnabled());
            VcpuExit exit = new Vcpu(c, new TraceCache(Isa.table(), c.mmu.codePages())).run(100);
            assertInstanceOf(VcpuExit.Halt.class, exit);
            assertEquals("A", p.consoleText());
            assertEquals(0x4300000000000041L, c.r[Cpu.RAX]);
            assertEquals(0x1000200 + code.length, c.rip);
            assertEquals(LinuxBoot.BOOT_PARAMS, c.r[Cpu.RSI]);
        }
    }

    @Test
    void rejectsACommandLineLongerThanTheKernelAccepts() {
        try (GuestMemory mem = new GuestMemory(RAM)) {
            String m = assertThrows(LoadException.class,
                    () -> LinuxBoot.load(mem, SyntheticKernels.bzImage(), null, "x".repeat(3000), e820(RAM))).getMessage();
            assertEquals("kernel command line is 3000 bytes; this kernel accepts at most 2047", m);
        }
    }

    @Test
    void rejectsAKernelWithoutThe64BitEntry() {
        byte[] img = SyntheticKernels.bzImage();
        ByteBuffer.wrap(img).order(ByteOrder.LITTLE_ENDIAN).putShort(0x236, (short) 0);
        try (GuestMemory mem = new GuestMemory(RAM)) {
            String m = assertThrows(LoadException.class, () -> LinuxBoot.load(mem, img, null, "", e820(RAM))).getMessage();
            assertEquals("kernel does not support the 64-bit boot protocol (xloadflags lacks XLF_KERNEL_64)", m);
        }
    }

    @Test
    void pointsAnElfVmlinuxAtPvh() {
        try (GuestMemory mem = new GuestMemory(RAM)) {
            String m = assertThrows(LoadException.class,
                    () -> LinuxBoot.load(mem, SyntheticKernels.vmlinux(true), null, "", e820(RAM))).getMessage();
            assertEquals("kernel is an ELF vmlinux, not a bzImage: boot it with PVH", m);
        }
    }

    @Test
    void rejectsTooLittleRamForTheKernel() {
        try (GuestMemory mem = new GuestMemory(16 << 20)) {
            String m = assertThrows(LoadException.class,
                    () -> LinuxBoot.load(mem, SyntheticKernels.bzImage(), null, "", e820(16 << 20))).getMessage();
            assertEquals("guest RAM too small: the kernel needs RAM at 0x1000000-0x1400000 (init_size 0x400000)", m);
        }
    }

    @Test
    void rejectsAnInitrdThatDoesNotFit() {
        try (GuestMemory mem = new GuestMemory(24 << 20)) {
            String m = assertThrows(LoadException.class,
                    () -> LinuxBoot.load(mem, SyntheticKernels.bzImage(), new byte[20 << 20], "", e820(24 << 20))).getMessage();
            assertTrue(m.startsWith("guest RAM too small: no room for the 20971520-byte initrd"), m);
        }
    }

    @Test
    void placesTheInitrdBelowInitrdAddrMax() throws LoadException {
        byte[] img = SyntheticKernels.bzImage();
        ByteBuffer.wrap(img).order(ByteOrder.LITTLE_ENDIAN).putInt(0x22C, 0x2FFFFFF); // below 48 MiB
        try (GuestMemory mem = new GuestMemory(RAM)) {
            LoadedKernel lk = LinuxBoot.load(mem, img, initrd(), "", e820(RAM));
            assertTrue(lk.initrdStart() + 10_000 <= 0x3000000 && lk.initrdStart() >= 0x3000000 - 0x4000,
                    "0x" + Long.toHexString(lk.initrdStart()));
        }
    }
}
