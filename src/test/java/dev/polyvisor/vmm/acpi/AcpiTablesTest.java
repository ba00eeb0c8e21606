package dev.polyvisor.vmm.acpi;

import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Parses the tables back and checks them against the ACPI 6.5 field offsets. */
class AcpiTablesTest {
    private final AcpiTables tables = AcpiTables.build(
            new AcpiTables.Platform(4, 0xFEE0_0000L, 4, 0xFEC0_0000L, Fadt.Config.standard(0x600, false)),
            AcpiTables.DEFAULT_BASE);

    private static ByteBuffer le(byte[] b) { return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN); }

    private static String sig(byte[] b, int off, int len) { return new String(b, off, len, StandardCharsets.US_ASCII); }

    private static void assertValidSdt(byte[] t, String signature) {
        assertEquals(signature, sig(t, 0, 4));
        assertEquals(t.length, le(t).getInt(4));
        assertEquals(0, Sdt.sum(t, 0, t.length), signature + " checksum");
        assertEquals("PLYVSR", sig(t, 10, 6));
    }

    @Test
    void rsdpHasBothChecksumsAndPointsAtXsdtAndRsdt() {
        byte[] r = tables.blob("RSDP").data();
        assertEquals(36, r.length);
        assertEquals("RSD PTR ", sig(r, 0, 8));
        assertEquals(0, Sdt.sum(r, 0, 20));
        assertEquals(0, Sdt.sum(r, 0, 36));
        assertEquals(2, r[15]);
        assertEquals(36, le(r).getInt(20));
        assertEquals(tables.blob("XSDT").address(), le(r).getLong(24));
        assertEquals(tables.blob("RSDT").address(), le(r).getInt(16) & 0xFFFF_FFFFL);
        assertEquals(0xE0000, tables.rsdpAddress());
        assertTrue(tables.end() <= Rsdp.SEARCH_END);
    }

    @Test
    void xsdtListsFadtAndMadt() {
        byte[] x = tables.blob("XSDT").data();
        assertValidSdt(x, "XSDT");
        assertEquals(36 + 16, x.length);
        assertEquals(tables.blob("FACP").address(), le(x).getLong(36));
        assertEquals(tables.blob("APIC").address(), le(x).getLong(44));
        byte[] r = tables.blob("RSDT").data();
        assertValidSdt(r, "RSDT");
        assertEquals(tables.blob("FACP").address(), le(r).getInt(36));
    }

    @Test
    void fadtDescribesTheLegacyPmHardware() {
        byte[] f = tables.blob("FACP").data();
        assertValidSdt(f, "FACP");
        ByteBuffer b = le(f);
        assertEquals(276, f.length);
        assertEquals(6, f[8]);
        assertEquals(5, f[Fadt.FADT_MINOR_VERSION]);
        assertEquals(tables.blob("DSDT").address(), b.getInt(Fadt.DSDT));
        assertEquals(tables.blob("DSDT").address(), b.getLong(Fadt.X_DSDT));
        assertEquals(tables.blob("FACS").address(), b.getLong(Fadt.X_FIRMWARE_CTRL));
        assertEquals(0, tables.blob("FACS").address() % 64);
        assertEquals(9, b.getShort(Fadt.SCI_INT));
        assertEquals(0, b.getInt(Fadt.SMI_CMD));
        assertEquals(0x600, b.getInt(Fadt.PM1A_EVT_BLK));
        assertEquals(0x604, b.getInt(Fadt.PM1A_CNT_BLK));
        assertEquals(0x608, b.getInt(Fadt.PM_TMR_BLK));
        assertEquals(4, f[Fadt.PM1_EVT_LEN]);
        assertEquals(2, f[Fadt.PM1_CNT_LEN]);
        assertEquals(4, f[Fadt.PM_TMR_LEN]);
        assertEquals(0x32, f[Fadt.CENTURY]);
        assertEquals(Fadt.LEGACY_DEVICES | Fadt.I8042 | Fadt.VGA_NOT_PRESENT, b.getShort(Fadt.IAPC_BOOT_ARCH));
        int flags = b.getInt(Fadt.FLAGS);
        assertEquals(0, flags & (1 << 20), "not hardware-reduced");
        assertEquals(0, flags & Fadt.TMR_VAL_EXT, "24-bit PM timer");
        assertNotEquals(0, flags & Fadt.RESET_REG_SUP);
        // RESET_REG: system I/O port 0x64, value 0xFE
        assertEquals(1, f[Fadt.RESET_REG]);
        assertEquals(0x64, b.getLong(Fadt.RESET_REG + 4));
        assertEquals((byte) 0xFE, f[Fadt.RESET_VALUE]);
        // X_PM1a_CNT_BLK generic address
        assertEquals(1, f[Fadt.X_PM1A_CNT_BLK]);
        assertEquals(16, f[Fadt.X_PM1A_CNT_BLK + 1]);
        assertEquals(0x604, b.getLong(Fadt.X_PM1A_CNT_BLK + 4));
        assertEquals(0x608, b.getLong(Fadt.X_PM_TMR_BLK + 4));
    }

    @Test
    void madtHasALapicPerVcpuTheIoApicAndOverrides() {
        byte[] m = tables.blob("APIC").data();
        assertValidSdt(m, "APIC");
        ByteBuffer b = le(m);
        assertEquals(0xFEE0_0000, b.getInt(36));
        assertEquals(1, b.getInt(40)); // PCAT_COMPAT
        List<String> seen = new ArrayList<>();
        for (int off = 44; off < m.length; off += m[off + 1]) {
            int type = m[off], len = m[off + 1];
            assertTrue(len > 0);
            switch (type) {
                case 0 -> {
                    assertEquals(8, len);
                    assertEquals(m[off + 2], m[off + 3]); // UID = APIC ID
                    assertEquals(1, b.getInt(off + 4));
                    seen.add("lapic" + m[off + 3]);
                }
                case 1 -> {
                    assertEquals(12, len);
                    assertEquals(4, m[off + 2]);
                    assertEquals(0xFEC0_0000, b.getInt(off + 4));
                    assertEquals(0, b.getInt(off + 8));
                    seen.add("ioapic");
                }
                case 2 -> {
                    assertEquals(10, len);
                    seen.add("iso" + m[off + 3] + "->" + b.getInt(off + 4) + "/" + b.getShort(off + 8));
                }
                case 4 -> {
                    assertEquals(6, len);
                    assertEquals(1, m[off + 5]);
                    seen.add("nmi");
                }
                default -> fail("unexpected MADT entry type " + type);
            }
        }
        assertEquals(List.of("lapic0", "lapic1", "lapic2", "lapic3", "ioapic", "iso0->2/0", "iso9->9/13", "nmi"), seen);
    }

    @Test
    void dsdtIsWhatIaslMakesOfItsAsl() throws Exception {
        byte[] d = tables.blob("DSDT").data();
        assertValidSdt(d, "DSDT");
        assertEquals(2, d[8]);
        byte[] aml = java.util.Arrays.copyOfRange(d, 36, d.length);
        // src/test/resources/acpi/dsdt.asl compiled by iasl 20200925: _S5, PCI0 with _HID, _UID, _CRS and _PRT
        byte[] iasl;
        try (var in = getClass().getResourceAsStream("/acpi/dsdt.aml")) { iasl = in.readAllBytes(); }
        assertArrayEquals(java.util.Arrays.copyOfRange(iasl, 36, iasl.length), aml);
        assertEquals(Dsdt.PNP0A03, java.nio.ByteBuffer.wrap(aml, 35, 4).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt());
    }

    @Test
    void prtRoutesEverySlotsPinsToTheGsisThePlatformWires() {
        byte[] prt = Dsdt.routingTable();
        // Package (0x80): PackageOp, a 2-byte PkgLength, 128 elements, each Package (4) {address, pin, Zero, GSI}.
        assertEquals(0x12, prt[0]);
        assertEquals(128, prt[3] & 0xFF);
        assertEquals(dev.polyvisor.devices.PciIntxRouting.gsi(3, 0), 19, "slot 3 INTA#");
        assertEquals(dev.polyvisor.devices.PciIntxRouting.gsi(7, 2), 17, "slot 7 INTC# wraps around the 8 lines");
    }

    @Test
    void facsHasSignatureLengthAndVersion() {
        byte[] f = tables.blob("FACS").data();
        assertEquals("FACS", sig(f, 0, 4));
        assertEquals(64, le(f).getInt(4));
        assertEquals(2, f[32]);
    }

    @Test
    void tablesDoNotOverlapAndLoadIntoGuestRam() {
        long prevEnd = 0;
        for (AcpiTables.Blob bl : tables.blobs().stream().sorted(java.util.Comparator.comparingLong(AcpiTables.Blob::address)).toList()) {
            assertTrue(bl.address() >= prevEnd, bl.name());
            prevEnd = bl.address() + bl.data().length;
        }
        try (GuestMemory mem = new GuestMemory(2 << 20)) {
            tables.loadInto(mem);
            assertEquals("RSD PTR ", new String(mem.readBytes(0xE0000, 8), StandardCharsets.US_ASCII));
            long fadt = tables.blob("FACP").address();
            assertEquals("FACP", new String(mem.readBytes(fadt, 4), StandardCharsets.US_ASCII));
        }
    }

    @Test
    void misalignedRsdpIsRejected() {
        assertThrows(IllegalArgumentException.class, () -> AcpiTables.build(
                new AcpiTables.Platform(1, 0xFEE0_0000L, 1, 0xFEC0_0000L, Fadt.Config.standard(0x600, true)), 0xE0004));
    }

    @Test
    void platformOfADeviceSetDescribesItsPmBlockAndApics() {
        try (GuestMemory mem = new GuestMemory(2 << 20)) {
            var d = dev.polyvisor.devices.PcPlatformDevices.create(dev.polyvisor.clock.VirtualClock.icount(1_000_000_000L, 1),
                    3, new dev.polyvisor.devices.IoBus(), mem, 0, dev.polyvisor.devices.PcPlatformDevices.Hooks.none());
            AcpiTables.Platform p = AcpiTables.Platform.of(d);
            assertEquals(3, p.vcpus());
            assertEquals(d.ioapicId(), p.ioapicId());
            assertEquals(d.pm.pm1aControlBlock(), p.fadt().pm1aControlBlock());
            assertEquals(d.pm.pmTimerBlock(), p.fadt().pmTimerBlock());
            assertEquals(d.pm.pm1aEventBlock(), p.fadt().pm1aEventBlock());
        }
    }

    @Test
    void thirtyTwoBitTimerSetsTmrValExt() {
        AcpiTables t = AcpiTables.build(new AcpiTables.Platform(1, 0xFEE0_0000L, 1, 0xFEC0_0000L,
                Fadt.Config.standard(0x600, true)), 0xF0000);
        assertNotEquals(0, le(t.blob("FACP").data()).getInt(Fadt.FLAGS) & Fadt.TMR_VAL_EXT);
    }
}
