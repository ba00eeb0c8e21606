package dev.polyvisor.vmm.acpi;

import java.util.List;

/** Extended System Description Table (ACPI 6.5 5.2.8): the header and 64-bit table addresses; RSDT (5.2.7) is its 32-bit twin. */
public final class Xsdt {
    private Xsdt() {}

    public static byte[] build(List<Long> tables) {
        Sdt t = new Sdt("XSDT", 1);
        for (long a : tables) t.u64(a);
        return t.build();
    }

    public static byte[] buildRsdt(List<Long> tables) {
        Sdt t = new Sdt("RSDT", 1);
        for (long a : tables) {
            if (a >>> 32 != 0) throw new IllegalArgumentException("RSDT entry above 4 GiB: 0x" + Long.toHexString(a));
            t.u32(a);
        }
        return t.build();
    }
}
