package dev.polyvisor.vmm.boot.linux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.polyvisor.guest.InitramfsBuilder;
import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.vmm.boot.ImageFile;
import dev.polyvisor.vmm.boot.LoadException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kernels and initrds read into native memory (what {@code Vm} does, ImageFile.readOffHeap) leave guest RAM exactly as
 * the same images given as arrays do, and never pass through the Java heap.
 */
class OffHeapImageTest {
    static final long RAM = 64L << 20;

    @TempDir Path dir;

    private static byte[] initrd(int size) {
        byte[] d = new byte[size];
        for (int i = 0; i < d.length; i++) d[i] = (byte) (i * 31 + 0x5A);
        return d;
    }

    private Path file(String name, byte[] bytes) throws Exception {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    private static long allocatedBytes() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    @Test
    void anOffHeapBzImageAndInitrdLoadAsTheirArraysDoWithAndWithoutTheDecompressor() throws Exception {
        byte[] elf = VmlinuxStreamTest.bigVmlinux();
        byte[] bz = SyntheticKernels.bzImageWithPayload(KernelPayloadTest.lz4Legacy(elf, true));
        byte[] rd = initrd(300_000);
        Path kernel = file("vmlinuz", bz), initrd = file("initrd", rd);
        for (boolean skip : new boolean[] {false, true}) {
            try (Arena a = Arena.ofConfined(); GuestMemory fromArrays = new GuestMemory(RAM); GuestMemory fromFiles = new GuestMemory(RAM)) {
                LoadedKernel x = LinuxBoot.load(fromArrays, bz, skip, rd, "console=ttyS0", LinuxBootTest.e820(RAM), 0);
                LoadedKernel y = LinuxBoot.load(fromFiles, ImageFile.readOffHeap(kernel, "kernel", a), skip, ImageFile.readOffHeap(initrd, "initrd", a),
                        "console=ttyS0", LinuxBootTest.e820(RAM), 0);
                assertEquals(x, y, "skip decompressor " + skip);
                assertArrayEquals(rd, fromFiles.readBytes(y.initrdStart(), rd.length));
                assertEquals(-1, fromArrays.ram.asSlice(0, RAM).mismatch(fromFiles.ram.asSlice(0, RAM)), "RAM differs, skip decompressor " + skip);
            }
        }
    }

    @Test
    void loadingImagesReadOffHeapAllocatesAFractionOfTheirSizeOnTheHeap() throws Exception {
        byte[] elf = VmlinuxStreamTest.bigVmlinux();
        Path kernel = file("vmlinuz", SyntheticKernels.bzImageWithPayload(KernelPayloadTest.lz4Legacy(elf, true)));
        Path initrd = file("initrd", initrd(16 << 20));
        long size = Files.size(kernel) + Files.size(initrd);
        try (Arena a = Arena.ofConfined(); GuestMemory warm = new GuestMemory(RAM); GuestMemory mem = new GuestMemory(RAM)) {
            MemorySegment k = ImageFile.readOffHeap(kernel, "kernel", a), rd = ImageFile.readOffHeap(initrd, "initrd", a);
            LinuxBoot.load(warm, k, true, rd, "console=ttyS0", LinuxBootTest.e820(RAM), 0); // loads the classes
            long before = allocatedBytes();
            LinuxBoot.load(mem, ImageFile.readOffHeap(kernel, "kernel", a), true, ImageFile.readOffHeap(initrd, "initrd", a), "console=ttyS0",
                    LinuxBootTest.e820(RAM), 0);
            long allocated = allocatedBytes() - before;
            // The stream's 1 MiB copy buffer and bookkeeping; reading the images would be their 25 MiB again.
            assertTrue(allocated < 4 << 20, "allocated " + allocated + " bytes on the heap to load " + size + " bytes of images");
        }
    }

    @Test
    void aZstdPayloadDecodesFromNativeMemoryAndFromASliceOfALargerArray() throws Exception {
        byte[] data = initrd(3 << 20);
        byte[] payload = KernelPayloadTest.kernelZstd(data, 23);
        try (Arena a = Arena.ofConfined()) {
            assertArrayEquals(data, KernelPayload.decompress(ImageFile.readOffHeap(file("payload.zst", payload), "kernel", a)), "native memory");
        }
        byte[] padded = new byte[payload.length + 100];
        System.arraycopy(payload, 0, padded, 37, payload.length);
        assertArrayEquals(data, KernelPayload.decompress(MemorySegment.ofArray(padded).asSlice(37, payload.length)), "array slice at 37");
    }

    @Test
    void anOffHeapCpioInitrdIsWalkedAndATruncatedOneRefused() throws Exception {
        byte[] cpio = new InitramfsBuilder().file("/init", 0755, "#!/bin/sh\necho hi\n").build();
        try (Arena a = Arena.ofConfined()) {
            InitrdImage.check(ImageFile.readOffHeap(file("ok.cpio", cpio), "initrd", a));
            Path cut = file("cut.cpio", Arrays.copyOf(cpio, 150));
            LoadException e = assertThrows(LoadException.class, () -> InitrdImage.check(ImageFile.readOffHeap(cut, "initrd", a)));
            assertTrue(e.getMessage().contains("truncated"), e.getMessage());
        }
    }

    @Test
    void readOffHeapGivesReadsOneLineErrorsAndHeadReadsOnlyTheStart() throws Exception {
        try (Arena a = Arena.ofConfined()) {
            assertEquals("kernel " + dir.resolve("none") + ": no such file",
                    assertThrows(LoadException.class, () -> ImageFile.readOffHeap(dir.resolve("none"), "kernel", a)).getMessage());
            assertEquals("kernel " + dir + ": is a directory", assertThrows(LoadException.class, () -> ImageFile.readOffHeap(dir, "kernel", a)).getMessage());
            assertEquals(0, ImageFile.readOffHeap(file("empty", new byte[0]), "initrd", a).byteSize());
        }
        byte[] piped = initrd(70_000); // --kernel <(...): a pipe, whose size reads as 0
        Path fifo = dir.resolve("fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        Thread writer = Thread.ofVirtual().start(() -> {
            try {
                Files.write(fifo, piped); // opens when the reader does
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        try (Arena a = Arena.ofConfined()) {
            assertArrayEquals(piped, ImageFile.readOffHeap(fifo, "kernel", a).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE), "from a pipe");
        }
        writer.join();
        byte[] big = initrd(100_000);
        assertArrayEquals(Arrays.copyOf(big, 8256), ImageFile.head(file("big", big), "kernel", 8256));
        assertArrayEquals(new byte[] {1, 2}, ImageFile.head(file("small", new byte[] {1, 2}), "kernel", 8256));
    }
}
