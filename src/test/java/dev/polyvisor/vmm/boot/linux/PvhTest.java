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
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class PvhTest {
    static final long RAM = 64 << 20;

    @Test
    void findsThePvhNoteInAGzipPayload() throws LoadException {
        ElfKernel elf = Pvh.vmlinux(SyntheticKernels.bzImageWithPayload(SyntheticKernels.gzip(SyntheticKernels.vmlinux(true))));
        assertEquals(SyntheticKernels.PVH_ENTRY, elf.pvhEntry().orElseThrow());
        assertEquals(2, elf.notes.size());
        assertEquals(1, elf.loads.size());
        assertEquals(0x1000000, elf.lowestAddress());
        assertEquals(0x1001000, elf.highestAddress());
    }

    @Test
    void buildsStartInfoAndLoadsSegmentsAtTheirPhysicalAddresses() throws LoadException {
        try (GuestMemory mem = new GuestMemory(RAM)) {
            mem.st64(0x1000100, -1L); // .bss must come out zeroed
            byte[] initrd = new byte[5000];
            Arrays.fill(initrd, (byte) 0x77);
            LoadedKernel lk = Pvh.load(mem, SyntheticKernels.bzImageWithPayload(SyntheticKernels.gzip(SyntheticKernels.vmlinux(true))),
                    initrd, "console=hvc0", LinuxBootTest.e820(RAM), 0xE0000);
            long si = lk.bootInfo();
            assertEquals(Pvh.START_INFO_MAGIC, mem.ld32(si));
            assertEquals(1, mem.ld32(si + 4), "version");
            assertEquals(1, mem.ld32(si + 12), "nr_modules");
            long mod = mem.ld64(si + 16);
            assertEquals(lk.initrdStart(), mem.ld64(mod));
            assertEquals(5000, mem.ld64(mod + 8));
            assertArrayEquals(initrd, mem.readBytes(lk.initrdStart(), 5000));
            assertTrue(lk.initrdStart() >= lk.kernelEnd());
            assertEquals("console=hvc0", new String(mem.readBytes(mem.ld64(si + 24), 12)));
            assertEquals(0, mem.ld8(mem.ld64(si + 24) + 12));
            assertEquals(0xE0000, mem.ld64(si + 32), "rsdp_paddr");
            long mm = mem.ld64(si + 40);
            assertEquals(4, mem.ld32(si + 48));
            assertEquals(0x100000, mem.ld64(mm + 3 * 24));
            assertEquals(RAM - 0x100000, mem.ld64(mm + 3 * 24 + 8));
            assertEquals(1, mem.ld32(mm + 3 * 24 + 16));
            assertEquals(2, mem.ld32(mm + 24 + 16));
            // Segment: 0x100 bytes of text then zeroed .bss.
            assertEquals(0x90, mem.ld8(0x1000000));
            assertEquals(0x93, mem.ld8(0x10000FF));
            assertEquals(0, mem.ld64(0x1000100));
            EntryState e = lk.entry();
            assertEquals(EntryState.Mode.PROTECTED_32, e.mode());
            assertEquals(SyntheticKernels.PVH_ENTRY, e.rip());
            assertEquals(si, e.rbx());
            assertEquals(Cpu.CR0_PE, e.cr0() & (Cpu.CR0_PE | Cpu.CR0_PG));
            assertEquals(0, e.cr4());
        }
    }

    @Test
    void theCpuRunsThePvhEntryIn32BitProtectedMode() throws LoadException {
        byte[] elf = SyntheticKernels.vmlinux(true);
        // At the entry (file 0x240 -> 0x1000040): mov eax,0x00000050 (5 bytes only with a 32-bit CS); out 0xe9,al; hlt
        byte[] code = {(byte) 0xB8, 0x50, 0, 0, 0, (byte) 0xE6, (byte) 0xE9, (byte) 0xF4};
        System.arraycopy(code, 0, elf, 0x240, code.length);
        try (GuestMemory mem = new GuestMemory(RAM)) {
            LoadedKernel lk = Pvh.load(mem, elf, null, "", LinuxBootTest.e820(RAM), 0);
            assertEquals(0, mem.ld32(lk.bootInfo() + 12), "no modules");
            TestPlatform p = new TestPlatform();
            Cpu c = new Cpu(0, mem, p);
            lk.entry().apply(c);
            assertFalse(c.long64);
            assertEquals(4, c.defOpSize);
            assertEquals(4, c.stackSize);
            VcpuExit exit = new Vcpu(c, new TraceCache(Isa.table(), c.mmu.codePages())).run(100);
            assertInstanceOf(VcpuExit.Halt.class, exit);
            assertEquals("P", p.consoleText());
            assertEquals(0x1000040 + code.length, c.rip);
            assertEquals(lk.bootInfo(), c.r[Cpu.RBX]);
        }
    }

    @Test
    void rejectsAKernelWithoutThePvhNote() {
        try (GuestMemory mem = new GuestMemory(RAM)) {
            String m = assertThrows(LoadException.class, () -> Pvh.load(mem, SyntheticKernels.vmlinux(false), null, "",
                    LinuxBootTest.e820(RAM), 0)).getMessage();
            assertEquals("kernel has no PVH entry point (no XEN_ELFNOTE_PHYS32_ENTRY note; needs CONFIG_PVH)", m);
        }
    }

    @Test
    void rejectsTruncatedElf() {
        byte[] elf = Arrays.copyOf(SyntheticKernels.vmlinux(true), 0x280);
        String m = assertThrows(LoadException.class, () -> ElfKernel.parse(elf)).getMessage();
        assertEquals("vmlinux truncated: segment 0 (0x200+0x100) lies outside the 0x280-byte file", m);
        assertEquals("vmlinux is not an ELF image", assertThrows(LoadException.class, () -> ElfKernel.parse(new byte[100])).getMessage());
    }
}
