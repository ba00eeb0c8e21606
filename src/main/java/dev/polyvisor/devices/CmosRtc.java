package dev.polyvisor.devices;

import dev.polyvisor.clock.TimerQueue;
import dev.polyvisor.clock.VirtualClock;
import dev.polyvisor.memory.GuestMemory;

import java.time.LocalDateTime;
import java.time.ZoneOffset;

/**
 * Motorola MC146818 real-time clock and CMOS RAM (MC146818A datasheet), at index port 0x70 and data
 * port 0x71. Bit 7 of the index write is the PC's NMI mask.
 *
 * <p>Registers 0x00-0x09 are the time, alarm and date; A (0x0A) holds UIP, the divider and the
 * periodic rate; B (0x0B) SET, PIE, AIE, UIE, SQWE, DM (binary), 24/12 and DSE; C (0x0C) the
 * interrupt flags IRQF, PF, AF, UF, cleared by reading; D (0x0D) VRT. Bytes 0x0E-0x7F are battery
 * backed RAM: the PC BIOS layout puts the shutdown status at 0x0F, the equipment byte at 0x14, base
 * memory at 0x15/0x16, extended memory at 0x17/0x18 and 0x30/0x31, memory above 16 MiB in 64 KiB units
 * at 0x34/0x35 and the century at 0x32 (the FADT CENTURY field points here).
 *
 * <p>Time is the start wall time plus the {@link VirtualClock}. The update cycle happens at each
 * second boundary; UIP is high from 244 us before it until the 1984 us update completes (datasheet
 * "Update Cycle"), which is the window Linux's mc146818_get_time() polls around.
 */
public final class CmosRtc implements PortIoDevice {
    public static final int REG_A = 0x0A, REG_B = 0x0B, REG_C = 0x0C, REG_D = 0x0D;
    public static final int CENTURY = 0x32;
    static final long UIP_BEFORE_NS = 244_000, UPDATE_NS = 1_984_000;

    static final int B_SET = 0x80, B_PIE = 0x40, B_AIE = 0x20, B_UIE = 0x10, B_DM_BINARY = 0x04, B_24H = 0x02;
    static final int C_IRQF = 0x80, C_PF = 0x40, C_AF = 0x20, C_UF = 0x10;

    private final VirtualClock clock;
    private final IrqLine irq8;
    private final byte[] cmos = new byte[128];
    private final TimerQueue.Timer timer;
    private int index;
    private boolean nmiMasked;
    /** Wall-clock seconds (UTC epoch) at virtual time 0, adjusted when the guest sets the time. */
    private long epochAtZero;
    /** While SET is on, the guest-written time registers freeze the clock (epoch seconds). */
    private long frozenEpoch;
    /** Virtual ns up to which the flags in register C have been brought. */
    private long flagsCheckedNs;
    private int regC;
    private Runnable alarmListener = () -> {};

    public CmosRtc(VirtualClock clock, long startEpochSeconds, IrqLine irq8) {
        this.clock = clock;
        this.irq8 = irq8;
        this.epochAtZero = startEpochSeconds - clock.nanos() / 1_000_000_000L;
        this.timer = clock.timers().newTimer(this::timerFired);
        cmos[REG_A] = 0x26;                 // 32.768 kHz time base, 1024 Hz periodic rate (BIOS default)
        cmos[REG_B] = (byte) B_24H;         // 24-hour BCD, as a PC BIOS leaves it
        cmos[REG_D] = (byte) 0x80;          // VRT: battery good; bit 6 must read 0 (Linux checks it)
        cmos[CENTURY] = 0x20;
        flagsCheckedNs = clock.nanos();
    }

    public void register(IoBus bus) { bus.register(0x70, 2, this); }

    /**
     * Told when the alarm fires with AIE set, i.e. when the alarm drives IRQ8: on a PC that output also
     * reaches the chipset's wake logic (ACPI RTC_STS), which is how an RTC alarm resumes from S3.
     */
    public void setAlarmListener(Runnable listener) { alarmListener = listener == null ? () -> {} : listener; }

    /** PC BIOS memory-size bytes (IBM AT BIOS; QEMU/SeaBIOS use the same layout). */
    public synchronized void setMemorySize(long ramBytes) {
        cmos[0x15] = (byte) 0x80; cmos[0x16] = 0x02;                  // 640 KiB base memory
        long extKb = Math.min(Math.max(0, ramBytes - (1 << 20)) / 1024, 0xFFFF);   // 1 MiB..65 MiB in KiB
        cmos[0x17] = cmos[0x30] = (byte) extKb;
        cmos[0x18] = cmos[0x31] = (byte) (extKb >> 8);
        // RAM beyond the 3 GiB PCI hole start sits above 4 GiB (GuestMemory.pc), as on QEMU's "pc" machine.
        long below4g = Math.min(ramBytes, GuestMemory.PCI_HOLE_START);
        long above16 = Math.min(Math.max(0, below4g - (16 << 20)) / 65536, 0xFFFF); // 64 KiB units
        cmos[0x34] = (byte) above16;
        cmos[0x35] = (byte) (above16 >> 8);
        long above4g = (ramBytes - below4g) / 65536;                  // 0x5B-0x5D, as QEMU/SeaBIOS
        cmos[0x5B] = (byte) above4g; cmos[0x5C] = (byte) (above4g >> 8); cmos[0x5D] = (byte) (above4g >> 16);
        cmos[0x14] = 0x06;  // equipment: math coprocessor, VGA/EGA (no floppies)
        cmos[0x10] = 0;     // no floppy drives
    }

    /** Raw CMOS byte (for the VMM and tests); the clock registers are computed. */
    public synchronized int cmosByte(int i) { return cmos[i & 0x7F] & 0xFF; }

    public synchronized void setCmosByte(int i, int v) { cmos[i & 0x7F] = (byte) v; }

    public synchronized boolean nmiMasked() { return nmiMasked; }

    @Override
    public long in(int port, int size) {
        if (port == 0x70) return 0xFF; // the index register is write-only on a PC
        long now = clock.nanos();
        int v;
        boolean lower;
        synchronized (this) {
            v = readRegister(index, now);
            lower = index == REG_C;
        }
        if (lower) irq8.set(false);
        return v;
    }

    @Override
    public void out(int port, int size, long value) {
        int v = (int) value & 0xFF;
        if (port == 0x70) {
            synchronized (this) { index = v & 0x7F; nmiMasked = (v & 0x80) != 0; }
            return;
        }
        long now = clock.nanos();
        synchronized (this) { writeRegister(index, v, now); }
    }

    // ---- time ----

    private boolean binary() { return (cmos[REG_B] & B_DM_BINARY) != 0; }

    private boolean h24() { return (cmos[REG_B] & B_24H) != 0; }

    private long epochSeconds(long ns) {
        return (cmos[REG_B] & B_SET) != 0 ? frozenEpoch : epochAtZero + ns / 1_000_000_000L;
    }

    private int encode(int v) { return binary() ? v : (v / 10) << 4 | v % 10; }

    private int decode(int v) { return binary() ? v : (v >> 4 & 0xF) * 10 + (v & 0xF); }

    private int encodeHour(int h) {
        if (h24()) return encode(h);
        int h12 = h % 12 == 0 ? 12 : h % 12;
        return encode(h12) | (h >= 12 ? 0x80 : 0);
    }

    private int decodeHour(int v) {
        if (h24()) return decode(v & 0x7F);
        int h = decode(v & 0x7F) % 12;
        return (v & 0x80) != 0 ? h + 12 : h;
    }

    private int readRegister(int i, long now) {
        if (i <= 9 && (cmos[REG_B] & B_SET) == 0) {
            LocalDateTime t = LocalDateTime.ofEpochSecond(epochSeconds(now), 0, ZoneOffset.UTC);
            return switch (i) {
                case 0 -> encode(t.getSecond());
                case 2 -> encode(t.getMinute());
                case 4 -> encodeHour(t.getHour());
                case 6 -> encode(t.getDayOfWeek().getValue() % 7 + 1); // 1 = Sunday
                case 7 -> encode(t.getDayOfMonth());
                case 8 -> encode(t.getMonthValue());
                case 9 -> encode(t.getYear() % 100);
                default -> cmos[i] & 0xFF; // alarm registers
            };
        }
        return switch (i) {
            case REG_A -> (cmos[REG_A] & 0x7F) | (updateInProgress(now) ? 0x80 : 0);
            case REG_C -> {
                bringFlagsTo(now);
                int c = regC;
                regC = 0; // reading C clears every flag and IRQF
                rearm(now);
                yield c;
            }
            case REG_D -> 0x80;
            default -> cmos[i] & 0xFF;
        };
    }

    private void writeRegister(int i, int v, long now) {
        switch (i) {
            case REG_A -> {
                cmos[REG_A] = (byte) (v & 0x7F); // UIP is read-only
                rearm(now);
            }
            case REG_B -> {
                int old = cmos[REG_B];
                if ((v & B_SET) != 0 && (old & B_SET) == 0) {
                    frozenEpoch = epochSeconds(now);
                    snapshotTime(frozenEpoch);
                }
                cmos[REG_B] = (byte) v;
                if ((v & B_SET) != 0) cmos[REG_B] &= (byte) ~B_UIE; // SET clears UIE (datasheet)
                if ((v & B_SET) == 0 && (old & B_SET) != 0) {
                    // Leaving SET: the written registers become the time, counted from now.
                    epochAtZero = timeFromRegisters() - now / 1_000_000_000L;
                }
                bringFlagsTo(now);
                rearm(now);
            }
            case REG_C, REG_D -> {} // read-only
            default -> {
                cmos[i] = (byte) v;
                if (i <= 9 && (cmos[REG_B] & B_SET) == 0) {
                    // Writing a time register while running: apply it immediately.
                    long cur = epochSeconds(now);
                    snapshotTime(cur);
                    cmos[i] = (byte) v;
                    epochAtZero = timeFromRegisters() - now / 1_000_000_000L;
                }
            }
        }
    }

    /** Stores the time {@code epoch} into registers 0-9 in the current format. */
    private void snapshotTime(long epoch) {
        LocalDateTime t = LocalDateTime.ofEpochSecond(epoch, 0, ZoneOffset.UTC);
        cmos[0] = (byte) encode(t.getSecond());
        cmos[2] = (byte) encode(t.getMinute());
        cmos[4] = (byte) encodeHour(t.getHour());
        cmos[6] = (byte) encode(t.getDayOfWeek().getValue() % 7 + 1);
        cmos[7] = (byte) encode(t.getDayOfMonth());
        cmos[8] = (byte) encode(t.getMonthValue());
        cmos[9] = (byte) encode(t.getYear() % 100);
    }

    /** Epoch seconds of the time in registers 0-9 and the century byte; garbage is clamped into range. */
    private long timeFromRegisters() {
        int sec = Math.floorMod(decode(cmos[0] & 0xFF), 60);
        int min = Math.floorMod(decode(cmos[2] & 0xFF), 60);
        int hour = Math.floorMod(decodeHour(cmos[4] & 0xFF), 24);
        int month = Math.min(12, Math.max(1, decode(cmos[8] & 0xFF)));
        int year = Math.floorMod(decode(cmos[9] & 0xFF), 100) + 100 * Math.floorMod(bcdOrBin(cmos[CENTURY] & 0xFF), 100);
        int mdays = java.time.YearMonth.of(year, month).lengthOfMonth();
        int day = Math.min(mdays, Math.max(1, decode(cmos[7] & 0xFF)));
        return LocalDateTime.of(year, month, day, hour, min, sec).toEpochSecond(ZoneOffset.UTC);
    }

    private int bcdOrBin(int v) { return decode(v); }

    /** UIP: from 244 us before each second boundary until the update cycle ends (datasheet Figure "Update Cycle"). */
    private boolean updateInProgress(long now) {
        if ((cmos[REG_B] & B_SET) != 0 || (cmos[REG_A] & 0x70) != 0x20) return false;
        long frac = now % 1_000_000_000L;
        return frac >= 1_000_000_000L - UIP_BEFORE_NS || frac < UPDATE_NS;
    }

    // ---- interrupt flags ----

    /** Periodic interrupt period for rate RS3-0 with the 32.768 kHz time base, or 0 if off (datasheet Table "Periodic Interrupt Rate"). */
    private long periodicNs() {
        int rs = cmos[REG_A] & 0x0F;
        if (rs == 0 || (cmos[REG_A] & 0x70) != 0x20) return 0;
        if (rs < 3) rs += 7; // rates 1 and 2 repeat rates 8 and 9 (3.90625 ms, 7.8125 ms)
        return 1_000_000_000L * (1L << (rs - 1)) / 32768;
    }

    /** Sets PF, UF and AF for everything that happened between the last check and {@code now}. */
    private void bringFlagsTo(long now) {
        long from = flagsCheckedNs;
        if (now <= from) return;
        long p = periodicNs();
        if (p > 0 && now / p > from / p) regC |= C_PF;
        if ((cmos[REG_B] & B_SET) == 0) {
            long s0 = from / 1_000_000_000L, s1 = now / 1_000_000_000L;
            if (s1 > s0) {
                regC |= C_UF;
                // Check the alarm against every second that ticked (bounded: the alarm repeats at most daily).
                for (long s = Math.max(s0 + 1, s1 - 86_400); s <= s1 && (regC & C_AF) == 0; s++)
                    if (alarmMatches(epochAtZero + s)) regC |= C_AF;
            }
        }
        flagsCheckedNs = now;
        // PIE/AIE/UIE occupy the same bit positions in B as PF/AF/UF in C.
        if ((regC & cmos[REG_B] & (B_PIE | B_AIE | B_UIE)) != 0) regC |= C_IRQF;
    }

    /** Alarm registers match; values 0xC0-0xFF are "don't care" (datasheet "Alarm"). */
    private boolean alarmMatches(long epoch) {
        LocalDateTime t = LocalDateTime.ofEpochSecond(epoch, 0, ZoneOffset.UTC);
        return alarmField(cmos[1], encode(t.getSecond())) && alarmField(cmos[3], encode(t.getMinute()))
                && alarmField(cmos[5], encodeHour(t.getHour()));
    }

    private static boolean alarmField(byte alarm, int value) {
        int a = alarm & 0xFF;
        return (a & 0xC0) == 0xC0 || a == value;
    }

    /** Arms the timer for the next event that can set an enabled flag. */
    private void rearm(long now) {
        int b = cmos[REG_B];
        long next = Long.MAX_VALUE;
        long p = periodicNs();
        if ((b & B_PIE) != 0 && p > 0) next = (now / p + 1) * p;
        if ((b & (B_UIE | B_AIE)) != 0 && (b & B_SET) == 0) next = Math.min(next, (now / 1_000_000_000L + 1) * 1_000_000_000L);
        if (next == Long.MAX_VALUE || (regC & C_IRQF) != 0) timer.cancel(); // IRQF stays until C is read
        else timer.arm(next);
    }

    private void timerFired() {
        long now = clock.nanos();
        boolean raise, alarm;
        synchronized (this) {
            boolean was = (regC & C_IRQF) != 0, alarmWas = (regC & C_AF) != 0;
            bringFlagsTo(now);
            raise = !was && (regC & C_IRQF) != 0;
            alarm = !alarmWas && (regC & C_AF) != 0 && (cmos[REG_B] & B_AIE) != 0;
            rearm(now);
        }
        if (raise) irq8.set(true);
        if (alarm) alarmListener.run();
    }
}
