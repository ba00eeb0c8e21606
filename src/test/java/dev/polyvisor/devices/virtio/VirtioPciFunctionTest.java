package dev.polyvisor.devices.virtio;

import dev.polyvisor.devices.IoBus;
import dev.polyvisor.devices.PciHostBridge;
import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static dev.polyvisor.devices.virtio.VirtioPciFunction.*;
import static org.junit.jupiter.api.Assertions.*;

/** The virtio-over-PCI transport (virtio 1.2 4.1): configuration space, capabilities, BAR, common cfg, MSI-X. */
class VirtioPciFunctionTest {
    static final long BARADDR = 0xFE01_0000L;
    private final TestRing r = new TestRing(8);
    private final List<long[]> msis = new ArrayList<>();
    private final List<String> log = new ArrayList<>();
    private final VirtioPciFunction f = new VirtioPciFunction(new VirtioRng(r.dma), r.dma,
            (a, d) -> msis.add(new long[] {a, d}), BARADDR, "00:01.0", log::add);

    private long common(int off, int size) { return f.barRead(BAR, COMMON + off, size); }

    private void common(int off, int size, long v) { f.barWrite(BAR, COMMON + off, size, v); }

    /** The capability list as Linux walks it: id → offset. */
    private Map<Integer, Integer> vendorCaps() {
        Map<Integer, Integer> caps = new HashMap<>();
        for (int p = f.configRead(0x34, 1), n = 0; p != 0 && n < 48; p = f.configRead(p + 1, 1), n++) {
            int id = f.configRead(p, 1);
            caps.put(id == 0x09 ? 0x100 + f.configRead(p + 3, 1) : id, p);
        }
        return caps;
    }

    @Test
    void identifiesAsAModernVirtioDevice() {
        assertEquals(0x1AF4, f.configRead(0x00, 2));
        assertEquals(0x1044, f.configRead(0x02, 2));
        assertEquals(1, f.configRead(0x08, 1));               // revision 1: non-transitional
        assertEquals(0xFF, f.configRead(0x0B, 1));
        assertEquals(0x1AF4, f.configRead(0x2C, 2));
        assertTrue(f.configRead(0x2E, 2) >= 0x40);
        assertEquals(0x10, f.configRead(0x06, 2) & 0x10);      // capabilities list
        assertEquals(1, f.configRead(0x3D, 1));                // INTA#
    }

    @Test
    void capabilitiesDescribeTheBar() {
        Map<Integer, Integer> caps = vendorCaps();
        assertEquals(CAP_MSIX, caps.get(0x11));
        for (int type : new int[] {CAP_COMMON, CAP_NOTIFY, CAP_ISR, CAP_PCI_CFG}) assertTrue(caps.containsKey(0x100 + type), "cap " + type);
        assertFalse(caps.containsKey(0x100 + CAP_DEVICE), "the entropy device has no configuration");
        int common = caps.get(0x100 + CAP_COMMON);
        assertEquals(BAR, f.configRead(common + 4, 1));
        assertEquals(COMMON, f.configRead(common + 8, 4));
        assertTrue(f.configRead(common + 12, 4) >= 0x38, "struct virtio_pci_common_cfg fits");
        int notify = caps.get(0x100 + CAP_NOTIFY);
        assertEquals(20, f.configRead(notify + 2, 1));
        assertEquals(NOTIFY_MULTIPLIER, f.configRead(notify + 16, 4));
        assertEquals(0x1 /* 2 vectors */, f.configRead(CAP_MSIX + 2, 2) & 0x7FF);
        assertEquals(MSIX_TABLE | BAR, f.configRead(CAP_MSIX + 4, 4));
        assertEquals(MSIX_PBA | BAR, f.configRead(CAP_MSIX + 8, 4));
    }

    @Test
    void barSizingAndProgrammingAsLinuxDoesIt() {
        assertEquals((int) BARADDR | 0x4, f.configRead(0x20, 4)); // pre-assigned, 64-bit memory
        f.configWrite(0x20, 4, 0xFFFF_FFFF);
        f.configWrite(0x24, 4, 0xFFFF_FFFF);
        assertEquals(0xFFFF_8004L, f.configRead(0x20, 4) & 0xFFFF_FFFFL); // size 32 KiB
        assertEquals(0xFFFF_FFFFL, f.configRead(0x24, 4) & 0xFFFF_FFFFL);
        f.configWrite(0x20, 4, 0xE000_0000);
        f.configWrite(0x24, 4, 0);
        assertEquals(0xE000_0000L, f.barAddress());
        assertEquals(-1, f.decode(0xE000_0000L), "memory space disabled");
        f.configWrite(0x04, 2, 0x6);
        assertEquals((long) BAR << 48 | 0x1234, f.decode(0xE000_1234L));
        assertEquals(-1, f.decode(0xE000_8000L));
        assertEquals(0, f.configRead(0x10, 4), "the other BARs are not implemented");
    }

    @Test
    void barIsReachableThroughThePciWindow() {
        GuestMemory mem = r.mem;
        IoBus io = new IoBus();
        PciHostBridge pci = new PciHostBridge();
        pci.register(io);
        pci.register(mem);
        pci.registerWithBars(0, 1, 0, f);
        f.configWrite(0x04, 2, 0x6);
        assertEquals(1, mem.readPhys(BARADDR + COMMON + 0x12, 2)); // num_queues
        assertEquals(0xFFFF_FFFFL, mem.readPhys(0xE000_0000L, 4), "nothing else decodes");
        io.out(0xCF8, 4, 0x8000_0800L); // 00:01.0 register 0
        assertEquals(0x1044_1AF4L, io.in(0xCFC, 4));
    }

    @Test
    void featureNegotiationNeedsVersion1AndNothingUnoffered() {
        common(0x00, 4, 1);
        assertEquals(1, common(0x04, 4) & 1, "VERSION_1 offered");
        common(0x00, 4, 0);
        long low = common(0x04, 4);
        assertEquals(3L << 28, low & 3L << 28, "EVENT_IDX and INDIRECT_DESC offered");
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER);
        common(0x08, 4, 0);
        common(0x0C, 4, 1L << 29);
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
        assertEquals(0, common(0x14, 1) & S_FEATURES_OK, "without VERSION_1 FEATURES_OK does not stick");
        common(0x14, 1, 0); // reset
        assertEquals(0, common(0x14, 1));
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER);
        common(0x08, 4, 1);
        common(0x0C, 4, 1 | 2); // VERSION_1 and bit 33, which is not offered
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
        assertEquals(0, common(0x14, 1) & S_FEATURES_OK);
        common(0x14, 1, 0);
        handshake();
        assertEquals(S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK, common(0x14, 1));
        common(0x0C, 4, 0); // features are frozen after FEATURES_OK
        assertEquals(1, common(0x0C, 4));
    }

    @Test
    void packedRingsAreOfferedOnlyWhenAskedFor() {
        common(0x00, 4, 1);
        assertEquals(0, common(0x04, 4) & 1L << 2, "bit 34 not offered by default, as QEMU's packed=off");
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER);
        common(0x08, 4, 1);
        common(0x0C, 4, 1 | 1L << 2);
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
        assertEquals(0, common(0x14, 1) & S_FEATURES_OK, "an unoffered packed layout is refused");
        common(0x14, 1, 0);
        f.offerPackedRings();
        common(0x00, 4, 1); // a reset selected the low word again
        assertEquals(1L << 2, common(0x04, 4) & 1L << 2, "bit 34 offered");
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER);
        common(0x08, 4, 1);
        common(0x0C, 4, 1 | 1L << 2);
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
        assertEquals(S_FEATURES_OK, common(0x14, 1) & S_FEATURES_OK, "VERSION_1 and RING_PACKED accepted");
    }

    private void handshake() { handshake(true); }

    private void handshake(boolean msix) {
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER);
        common(0x08, 4, 0);
        common(0x0C, 4, 1L << 29 | 1L << 28);
        common(0x08, 4, 1);
        common(0x0C, 4, 1);
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
        f.configWrite(0x04, 2, 0x6);
        if (msix) f.configWrite(CAP_MSIX + 2, 2, 0x8000); // MSI-X enable
        for (int v = 0; v < 2; v++) {
            f.barWrite(BAR, MSIX_TABLE + 16 * v, 4, 0xFEE0_0000L);
            f.barWrite(BAR, MSIX_TABLE + 16 * v + 4, 4, 0);
            f.barWrite(BAR, MSIX_TABLE + 16 * v + 8, 4, 0x40 + v);
            f.barWrite(BAR, MSIX_TABLE + 16 * v + 12, 4, 0);
        }
        common(0x10, 2, 0);
        common(0x16, 2, 0);
        assertEquals(256, common(0x18, 2), "queue size starts at the maximum");
        common(0x18, 2, 8);
        assertEquals(8, common(0x18, 2));
        common(0x1A, 2, 1);
        common(0x20, 4, TestRing.DESC);
        common(0x24, 4, 0);
        common(0x28, 8, TestRing.AVAIL);
        common(0x30, 4, TestRing.USED);
        common(0x34, 4, 0);
        common(0x1C, 2, 1);
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    }

    @Test
    void queueRegistersAndVectors() {
        VirtioPciFunction g = new VirtioPciFunction(new VirtioRng(r.dma), r.dma, (a, d) -> {}, BARADDR, "x", s -> {});
        assertEquals(256, g.barRead(BAR, COMMON + 0x18, 2));
        common(0x16, 2, 0);
        common(0x1A, 2, 1);
        assertEquals(1, common(0x1A, 2));
        common(0x1A, 2, 2); // the table has 2 entries
        assertEquals(0xFFFF, common(0x1A, 2), "an unavailable vector reads back as NO_VECTOR");
        common(0x10, 2, 7);
        assertEquals(0xFFFF, common(0x10, 2));
        common(0x16, 2, 1); // no such queue
        assertEquals(0, common(0x18, 2));
        common(0x16, 2, 0);
        assertEquals(0, common(0x1E, 2), "queue_notify_off");
        common(0x20, 8, 0x1234_5678_9ABCL);
        assertEquals(0x1234_5678_9ABCL, common(0x20, 8));
        assertEquals(0x5678_9ABCL, common(0x20, 4));
        assertEquals(0x1234, common(0x24, 4));
    }

    @Test
    void requestsCompleteWithAnMsixMessage() {
        handshake();
        r.desc(0, TestRing.DATA, 64, Virtqueue.DESC_F_WRITE, 0);
        r.post(0);
        f.barWrite(BAR, NOTIFY, 2, 0);
        assertEquals(1, r.usedIdx());
        assertEquals(64, r.usedLen(0));
        assertEquals(1, msis.size());
        assertEquals(0xFEE0_0000L, msis.getFirst()[0]);
        assertEquals(0x41, msis.getFirst()[1]);
        assertEquals(0, f.barRead(BAR, ISR, 1), "with MSI-X the queue bit of ISR stays clear");
    }

    @Test
    void withoutMsixRequestsCompleteOnIntxUntilTheDriverReadsTheIsr() {
        List<Boolean> levels = new ArrayList<>();
        f.setIntx(levels::add);
        handshake(false);
        levels.clear();
        r.desc(0, TestRing.DATA, 64, Virtqueue.DESC_F_WRITE, 0);
        r.post(0);
        f.barWrite(BAR, NOTIFY, 2, 0);
        assertEquals(1, r.usedIdx());
        assertEquals(0, msis.size(), "no MSI-X message while MSI-X is disabled");
        assertEquals(List.of(true), levels, "INTA# asserted");
        assertEquals(0x08, f.configRead(0x06, 2) & 0x08, "Interrupt Status");
        // Interrupt Disable (command bit 10) drops the pin but not the status (PCI 3.0 6.2.2, 6.2.3).
        f.configWrite(0x04, 2, 0x406);
        assertEquals(List.of(true, false), levels);
        assertEquals(0x08, f.configRead(0x06, 2) & 0x08);
        f.configWrite(0x04, 2, 0x006);
        assertEquals(List.of(true, false, true), levels);
        // The driver's ISR read returns the queue bit, clears it and deasserts the pin (virtio 1.2 4.1.4.5.1).
        assertEquals(1, f.barRead(BAR, ISR, 1));
        assertEquals(List.of(true, false, true, false), levels);
        assertEquals(0, f.configRead(0x06, 2) & 0x08);
        assertEquals(0, f.barRead(BAR, ISR, 1));
    }

    @Test
    void enablingMsixTakesPendingInterruptsOffTheIntxPin() {
        List<Boolean> levels = new ArrayList<>();
        f.setIntx(levels::add);
        handshake(false);
        r.desc(0, TestRing.DATA, 64, Virtqueue.DESC_F_WRITE, 0);
        r.post(0);
        f.barWrite(BAR, NOTIFY, 2, 0);
        assertTrue(levels.getLast());
        f.configWrite(CAP_MSIX + 2, 2, 0x8000);
        assertFalse(levels.getLast(), "with MSI-X enabled the function does not use INTx (PCI 3.0 6.8.2)");
    }

    @Test
    void maskedVectorsLatchInThePbaAndFireOnUnmask() {
        handshake();
        f.barWrite(BAR, MSIX_TABLE + 16 + 12, 4, 1); // mask vector 1
        r.desc(0, TestRing.DATA, 8, Virtqueue.DESC_F_WRITE, 0);
        r.post(0);
        f.barWrite(BAR, NOTIFY, 2, 0);
        assertEquals(0, msis.size());
        assertEquals(2, f.barRead(BAR, MSIX_PBA, 8));
        f.barWrite(BAR, MSIX_TABLE + 16 + 12, 4, 0);
        assertEquals(1, msis.size());
        assertEquals(0, f.barRead(BAR, MSIX_PBA, 8));
        // The function mask holds every vector.
        f.configWrite(CAP_MSIX + 2, 2, 0xC000);
        r.setUsedEvent(1); // event index: interrupt when the used index passes 1
        r.post(0);
        f.barWrite(BAR, NOTIFY, 2, 0);
        assertEquals(1, msis.size());
        f.configWrite(CAP_MSIX + 2, 2, 0x8000);
        assertEquals(2, msis.size());
    }

    @Test
    void noDmaWithoutBusMaster() {
        handshake();
        f.configWrite(0x04, 2, 0x2);
        r.desc(0, TestRing.DATA, 8, Virtqueue.DESC_F_WRITE, 0);
        r.post(0);
        f.barWrite(BAR, NOTIFY, 2, 0);
        assertEquals(0, r.usedIdx());
        f.configWrite(0x04, 2, 0x6);
        f.barWrite(BAR, NOTIFY, 2, 0);
        assertEquals(1, r.usedIdx());
    }

    @Test
    void aMalformedQueueSetsNeedsResetWithAConfigInterruptAndOneLogLine() {
        handshake();
        r.desc(0, TestRing.DATA, 1, Virtqueue.DESC_F_NEXT, 0); // loops to itself
        r.post(0);
        f.barWrite(BAR, NOTIFY, 2, 0);
        assertEquals(S_NEEDS_RESET, common(0x14, 1) & S_NEEDS_RESET);
        assertEquals(1, msis.size());
        assertEquals(0x40, msis.getFirst()[1], "the configuration vector");
        assertEquals(2, f.barRead(BAR, ISR, 1) & 2);
        assertEquals(0, f.barRead(BAR, ISR, 1), "ISR clears on read");
        assertEquals(1, log.size());
        assertTrue(log.getFirst().startsWith("virtio-rng 00:01.0: queue 0: "), log.getFirst());
        r.post(0);
        f.barWrite(BAR, NOTIFY, 2, 0);
        assertEquals(1, log.size(), "a broken device stays quiet until reset");
        common(0x14, 1, 0);
        assertEquals(0, common(0x14, 1));
        handshake();
        r.desc(0, TestRing.DATA, 8, Virtqueue.DESC_F_WRITE, 0);
        r.mem.st16(TestRing.AVAIL + 2, 0);
        r.mem.st16(TestRing.USED + 2, 0);
        r.availIdx = 0;
        r.post(0);
        f.barWrite(BAR, NOTIFY, 2, 0);
        assertEquals(1, r.usedIdx(), "works again after reset");
    }

    @Test
    void enablingAQueueOutsideRamBreaksTheDevice() {
        common(0x14, 1, S_ACKNOWLEDGE | S_DRIVER);
        common(0x16, 2, 0);
        common(0x20, 8, 0x7FFF_0000_0000L);
        common(0x1C, 2, 1);
        assertEquals(0, common(0x1C, 2));
        assertEquals(S_NEEDS_RESET, common(0x14, 1) & S_NEEDS_RESET);
        assertEquals(1, log.size());
    }

    @Test
    void pciCfgCapabilityReachesTheBar() {
        int cap = CAP_PCI_CFG_AT;
        f.configWrite(cap + 4, 1, BAR);
        f.configWrite(cap + 8, 4, COMMON + 0x12);
        f.configWrite(cap + 12, 4, 2);
        assertEquals(1, f.configRead(cap + 16, 4) & 0xFFFF, "num_queues through configuration space");
        f.configWrite(cap + 8, 4, COMMON + 0x16);
        f.configWrite(cap + 16, 4, 5);
        assertEquals(5, common(0x16, 2));
    }
}
