package dev.polyvisor.vmm.acpi;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** AML encodings (ACPI 6.5 20.2.4 PkgLength, 6.4 resource descriptors). */
class AmlTest {
    @Test
    void pkgLengthUsesOneByteBelow64AndANibbleLeadAbove() {
        assertArrayEquals(new byte[] {0x08}, Aml.pkgLength(7));
        assertArrayEquals(new byte[] {0x3F}, Aml.pkgLength(62));
        assertArrayEquals(new byte[] {0x41, 0x04}, Aml.pkgLength(63));     // 63 + 2 = 65 = 0x41: lead 0x40 | 1, then 0x04
        assertArrayEquals(new byte[] {0x46, 0x09}, Aml.pkgLength(148));    // total 150 = 0x96
        assertArrayEquals(new byte[] {0x4F, (byte) 0xFF}, Aml.pkgLength(0xFFF - 2));       // total 0xFFF: still 2 bytes
        assertArrayEquals(new byte[] {(byte) 0x81, 0x00, 0x01}, Aml.pkgLength(0xFFF - 1)); // 0xFFE + 3 = 0x1001: 3 bytes
    }

    @Test
    void integersTakeTheShortestPrefix() {
        assertArrayEquals(new byte[] {0x00}, Aml.integer(0));
        assertArrayEquals(new byte[] {0x0A, 0x05}, Aml.integer(5));
        assertArrayEquals(new byte[] {0x0B, 0x34, 0x12}, Aml.integer(0x1234));
        assertArrayEquals(new byte[] {0x0C, 0x78, 0x56, 0x34, 0x12}, Aml.integer(0x12345678));
    }

    @Test
    void resourceTemplateDescriptorsHaveTheirSpecifiedLengths() {
        byte[] r = new Aml.Resources().word(2, 0, 0, 0xFF).io(0xCF8, 0xCF8, 1, 8).dwordMemory(false, 0xC0000000L, 0xFEBFFFFFL).build();
        assertEquals(16 + 8 + 26 + 2, r.length);
        assertEquals((byte) 0x88, r[0]);
        assertEquals(0x0D, r[1]);
        assertEquals(0x47, r[16]);
        assertEquals((byte) 0x87, r[24]);
        assertEquals(0x17, r[25]);
        assertEquals(0x79, r[r.length - 2]);
    }

    @Test
    void nameSegsArePaddedAndLimitedToFourCharacters() {
        assertArrayEquals("_SB_".getBytes(), Aml.nameSeg("_SB"));
        assertThrows(IllegalArgumentException.class, () -> Aml.nameSeg("TOOLONG"));
    }
}
