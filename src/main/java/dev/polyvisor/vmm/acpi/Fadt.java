package dev.polyvisor.vmm.acpi;

/**
 * Fixed ACPI Description Table, revision 6 (ACPI 6.5 5.2.9, Table 5.9), 276 bytes, describing a
 * full (not hardware-reduced) PC: PM1a event/control blocks and the PM timer at the I/O ports of
 * {@code devices.AcpiPm}, SCI on IRQ 9, no SMI command port (the platform is always in ACPI mode),
 * the RTC century byte, the 8042 and legacy devices present, no VGA, and a reset register at port 0x64
 * with value 0xFE (the 8042 pulses CPU reset). Linux keeps the PIT and 8259 because the table is not
 * hardware-reduced (reference/cpu-design.md 2.5).
 */
public final class Fadt {
    public static final int LENGTH = 276, REVISION = 6, MINOR_REVISION = 5;
    // Field offsets (ACPI 6.5 Table 5.9).
    public static final int FIRMWARE_CTRL = 36, DSDT = 40, PREFERRED_PM_PROFILE = 45, SCI_INT = 46, SMI_CMD = 48,
            PM1A_EVT_BLK = 56, PM1A_CNT_BLK = 64, PM_TMR_BLK = 76, PM1_EVT_LEN = 88, PM1_CNT_LEN = 89,
            PM_TMR_LEN = 91, P_LVL2_LAT = 96, P_LVL3_LAT = 98, CENTURY = 108, IAPC_BOOT_ARCH = 109, FLAGS = 112,
            RESET_REG = 116, RESET_VALUE = 128, FADT_MINOR_VERSION = 131, X_FIRMWARE_CTRL = 132, X_DSDT = 140,
            X_PM1A_EVT_BLK = 148, X_PM1A_CNT_BLK = 172, X_PM_TMR_BLK = 208;
    /** Flags (Table 5.10). */
    public static final int WBINVD = 1, PROC_C1 = 1 << 2, PWR_BUTTON = 1 << 4, SLP_BUTTON = 1 << 5,
            TMR_VAL_EXT = 1 << 8, RESET_REG_SUP = 1 << 10;
    /** IA-PC boot architecture flags (Table 5.11). */
    public static final int LEGACY_DEVICES = 1, I8042 = 1 << 1, VGA_NOT_PRESENT = 1 << 2;
    public static final int SYSTEM_IO = 1;

    /** Where the ACPI fixed hardware lives. */
    public record Config(int sciIrq, int pm1aEventBlock, int pm1aControlBlock, int pmTimerBlock, boolean timer32,
                         int centuryIndex, int resetPort, int resetValue) {
        public static Config standard(int pmBase, boolean timer32) {
            return new Config(9, pmBase, pmBase + 4, pmBase + 8, timer32, 0x32, 0x64, 0xFE);
        }
    }

    private Fadt() {}

    public static byte[] build(Config c, long facsAddress, long dsdtAddress) {
        Sdt t = new Sdt("FACP", REVISION);
        t.u32(facsAddress >>> 32 == 0 ? facsAddress : 0); // 36 FIRMWARE_CTRL
        t.u32(dsdtAddress >>> 32 == 0 ? dsdtAddress : 0); // 40 DSDT
        t.u8(0);                 // 44 reserved (was INT_MODEL)
        t.u8(0);                 // 45 Preferred_PM_Profile: unspecified
        t.u16(c.sciIrq());       // 46 SCI_INT
        t.u32(0);                // 48 SMI_CMD: none, ACPI mode is always on
        t.u8(0).u8(0).u8(0).u8(0); // 52 ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
        t.u32(c.pm1aEventBlock()); // 56 PM1a_EVT_BLK
        t.u32(0);                // 60 PM1b_EVT_BLK
        t.u32(c.pm1aControlBlock()); // 64 PM1a_CNT_BLK
        t.u32(0);                // 68 PM1b_CNT_BLK
        t.u32(0);                // 72 PM2_CNT_BLK
        t.u32(c.pmTimerBlock()); // 76 PM_TMR_BLK
        t.u32(0).u32(0);         // 80 GPE0_BLK, 84 GPE1_BLK
        t.u8(4).u8(2).u8(0).u8(4); // 88 PM1_EVT_LEN, PM1_CNT_LEN, PM2_CNT_LEN, PM_TMR_LEN
        t.u8(0).u8(0).u8(0).u8(0); // 92 GPE0_BLK_LEN, GPE1_BLK_LEN, GPE1_BASE, CST_CNT
        t.u16(101);              // 96 P_LVL2_LAT > 100: C2 not supported
        t.u16(1001);             // 98 P_LVL3_LAT > 1000: C3 not supported
        t.u16(0).u16(0);         // 100 FLUSH_SIZE, FLUSH_STRIDE
        t.u8(0).u8(0);           // 104 DUTY_OFFSET, DUTY_WIDTH
        t.u8(0).u8(0);           // 106 DAY_ALRM, MON_ALRM
        t.u8(c.centuryIndex());  // 108 CENTURY
        t.u16(LEGACY_DEVICES | I8042 | VGA_NOT_PRESENT); // 109 IAPC_BOOT_ARCH
        t.u8(0);                 // 111 reserved
        t.u32(WBINVD | PROC_C1 | PWR_BUTTON | SLP_BUTTON | RESET_REG_SUP | (c.timer32() ? TMR_VAL_EXT : 0)); // 112 Flags
        t.gas(SYSTEM_IO, 8, 0, 1, c.resetPort()); // 116 RESET_REG
        t.u8(c.resetValue());    // 128 RESET_VALUE
        t.u16(0);                // 129 ARM_BOOT_ARCH
        t.u8(MINOR_REVISION);    // 131 FADT Minor Version
        t.u64(facsAddress);      // 132 X_FIRMWARE_CTRL
        t.u64(dsdtAddress);      // 140 X_DSDT
        t.gas(SYSTEM_IO, 32, 0, 2, c.pm1aEventBlock());   // 148 X_PM1a_EVT_BLK (access: word)
        t.gas(0, 0, 0, 0, 0);                              // 160 X_PM1b_EVT_BLK
        t.gas(SYSTEM_IO, 16, 0, 2, c.pm1aControlBlock()); // 172 X_PM1a_CNT_BLK
        t.gas(0, 0, 0, 0, 0);                              // 184 X_PM1b_CNT_BLK
        t.gas(0, 0, 0, 0, 0);                              // 196 X_PM2_CNT_BLK
        t.gas(SYSTEM_IO, 32, 0, 3, c.pmTimerBlock());     // 208 X_PM_TMR_BLK (access: dword)
        t.gas(0, 0, 0, 0, 0);                              // 220 X_GPE0_BLK
        t.gas(0, 0, 0, 0, 0);                              // 232 X_GPE1_BLK
        t.gas(0, 0, 0, 0, 0);                              // 244 SLEEP_CONTROL_REG
        t.gas(0, 0, 0, 0, 0);                              // 256 SLEEP_STATUS_REG
        t.u64(0);                                          // 268 Hypervisor Vendor Identity
        if (t.size() != LENGTH) throw new IllegalStateException("FADT is " + t.size() + " bytes");
        return t.build();
    }
}
