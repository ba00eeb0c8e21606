package dev.polyvisor.devices;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** QEMU's fw_cfg legacy I/O interface (QEMU docs/specs/fw_cfg.rst; hw/nvram/fw_cfg.c fw_cfg_comb_*). */
class FwCfgTest {
    private final IoBus io = new IoBus();

    private long read(int key, int n) {
        io.out(0x510, 2, key);
        long v = 0;
        for (int i = 0; i < n; i++) v |= io.in(0x511, 1) << (8 * i);
        return v;
    }

    @Test
    void signatureIdRamSizeAndCpuCountAreLittleEndianItems() {
        FwCfg.pc(128L << 20, 3, 3).register(io);
        assertEquals(0x554D4551L, read(FwCfg.SIGNATURE, 4), "\"QEMU\"");
        assertEquals(1, read(FwCfg.ID, 4), "traditional interface only, no DMA");
        assertEquals(128L << 20, read(FwCfg.RAM_SIZE, 8));
        assertEquals(3, read(FwCfg.NB_CPUS, 2));
        assertEquals(3, read(FwCfg.MAX_CPUS, 2));
    }

    @Test
    void readsPastTheEndAndUnknownItemsReturnZeroAndSelectingRewinds() {
        FwCfg.pc(64L << 20, 1, 1).register(io);
        assertEquals(0x554D4551L, read(FwCfg.SIGNATURE, 4));
        assertEquals(0, io.in(0x511, 1), "past the end of the item");
        assertEquals(0x554D4551L, read(FwCfg.SIGNATURE, 4), "a new selection starts at offset 0");
        assertEquals(0, read(0x11, 8), "no item 0x11");
        assertEquals(0xFFFF, io.in(0x511, 2), "the data port is 8 bits wide");
        io.out(0x510, 2, FwCfg.NB_CPUS);
        io.out(0x511, 1, 0x55); // data writes are ignored
        io.out(0x510, 1, FwCfg.SIGNATURE); // an 8-bit write to the selector does not select
        assertEquals(1, io.in(0x510, 1), "an 8-bit read of either port reads data (QEMU's combined region)");
    }

    @Test
    void theFileDirectoryListsFilesBigEndianSortedByName() {
        FwCfg f = FwCfg.pc(64L << 20, 1, 1);
        f.register(io);
        int e820 = f.addFile("etc/e820", FwCfg.e820File(List.of(new long[] {0, 0x9FC00, 1})));
        int other = f.addFile("etc/boot-fail-wait", new byte[4]);
        byte[] dir = new byte[4 + 2 * 64];
        io.out(0x510, 2, FwCfg.FILE_DIR);
        for (int i = 0; i < dir.length; i++) dir[i] = (byte) io.in(0x511, 1);
        ByteBuffer b = ByteBuffer.wrap(dir).order(ByteOrder.BIG_ENDIAN);
        assertEquals(2, b.getInt());
        assertEquals(4, b.getInt(4));
        assertEquals(other, b.getShort(8));
        assertEquals("etc/boot-fail-wait", new String(dir, 12, 18));
        assertEquals(20, b.getInt(68), "one e820 entry: u64 address, u64 length, u32 type");
        assertEquals(e820, b.getShort(72));
        io.out(0x510, 2, e820);
        long addr = 0, len = 0;
        for (int i = 0; i < 8; i++) addr |= io.in(0x511, 1) << (8 * i);
        for (int i = 0; i < 8; i++) len |= io.in(0x511, 1) << (8 * i);
        assertEquals(0, addr);
        assertEquals(0x9FC00, len, "etc/e820: u64 address, u64 length, u32 type per entry");

    }
}
