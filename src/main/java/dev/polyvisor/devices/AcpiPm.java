package dev.polyvisor.devices;

import dev.polyvisor.clock.TimerQueue;
import dev.polyvisor.clock.VirtualClock;

/**
 * ACPI fixed hardware, the PM1a event and control blocks and the power-management timer (ACPI 6.5,
 * 4.8.3 "PM1 Event Grouping", 4.8.3.2 "PM1 Control", 4.8.3.3 "Power Management Timer"):
 * <pre>
 *   base+0  PM1a_STS (16)  TMR_STS 0, BM_STS 4, GBL_STS 5, PWRBTN_STS 8, SLPBTN_STS 9, RTC_STS 10, WAK_STS 15 (write 1 to clear)
 *   base+2  PM1a_EN  (16)  TMR_EN 0, GBL_EN 5, PWRBTN_EN 8, SLPBTN_EN 9, RTC_EN 10
 *   base+4  PM1a_CNT (16)  SCI_EN 0, BM_RLD 1, GBL_RLS 2, SLP_TYP 12:10, SLP_EN 13 (write-only)
 *   base+8  PM_TMR   (32)  3.579545 MHz free-running counter, 24 bits (or 32 with FADT TMR_VAL_EXT)
 * </pre>
 * The FADT built by {@code vmm.acpi.Fadt} points at these addresses. The FADT has no SMI_CMD, so the
 * platform is always in ACPI mode and SCI_EN reads 1. Writing SLP_EN with SLP_TYP = 5 (the value of
 * the DSDT's \_S5 package) enters S5: the power-off callback runs. SLP_TYP = 1 enters S3 (suspend to
 * RAM), the value QEMU's PM1 control gives it (hw/acpi/core.c acpi_pm1_cnt_write): the suspend
 * callback runs and the machine sleeps until a wake event, the RTC alarm while RTC_EN is set (ACPI 6.5
 * 4.8.3.1.1 "RTC_STS"; QEMU wakes on it only when enabled), which sets WAK_STS and RTC_STS and runs
 * the wake callback. The DSDT does not advertise \_S3, so an OS that follows it never asks for S3.
 * Other SLP_TYP values wake at once (S1, S2, S4 are not implemented). SCI (IRQ9, level, active high) is
 * asserted while any enabled status bit is set; TMR_STS sets whenever timer bit 23 (or 31) toggles.
 */
public final class AcpiPm implements PortIoDevice {
    public static final int DEFAULT_BASE = 0x600;
    public static final long TIMER_HZ = 3_579_545L;
    public static final int SLP_TYP_S5 = 5, SLP_TYP_S3 = 1;
    public static final int EVT_LEN = 4, CNT_LEN = 2, TMR_LEN = 4, BLOCK_LEN = 12;

    static final int TMR_STS = 0x0001, PWRBTN_STS = 0x0100, RTC_STS = 0x0400, WAK_STS = 0x8000, RTC_EN = 0x0400;
    static final int SCI_EN = 0x0001, SLP_EN = 0x2000;
    private static final int STS_MASK = 0x8F31, EN_MASK = 0x0721;

    private final VirtualClock clock;
    private final int base;
    private final boolean timer32;
    private final IrqLine sci;
    private final Runnable powerOff;
    private final TimerQueue.Timer carryTimer;
    private int sts, en, cnt = SCI_EN;
    /** Number of timer-MSB toggles already reflected in TMR_STS. */
    private long togglesSeen;
    private boolean sciLevel;
    /** In S3: set by SLP_EN with SLP_TYP_S3, cleared by the wake event. */
    private boolean sleeping;
    private Runnable suspend = () -> {}, wake = () -> {};

    public AcpiPm(VirtualClock clock, int base, boolean timer32, IrqLine sci, Runnable powerOff) {
        this.clock = clock;
        this.base = base;
        this.timer32 = timer32;
        this.sci = sci;
        this.powerOff = powerOff == null ? () -> {} : powerOff;
        this.carryTimer = clock.timers().newTimer(this::carry);
    }

    public void register(IoBus bus) { bus.register(base, BLOCK_LEN, this); }

    /** What the platform does when the guest enters S3, and when a wake event ends it. */
    public void setSleepHandlers(Runnable suspend, Runnable wake) {
        this.suspend = suspend == null ? () -> {} : suspend;
        this.wake = wake == null ? () -> {} : wake;
    }

    public synchronized boolean sleeping() { return sleeping; }

    /**
     * The RTC raised its alarm (its IRQ8 output, wired to the chipset's wake logic). In S3 with RTC_EN
     * set it wakes the machine: WAK_STS and RTC_STS are set and the wake callback runs.
     */
    public void rtcAlarm() {
        synchronized (this) {
            if (!sleeping || (en & RTC_EN) == 0) return;
            sleeping = false;
            sts |= WAK_STS | RTC_STS;
        }
        updateSci();
        wake.run();
    }

    public int base() { return base; }
    public int pm1aEventBlock() { return base; }
    public int pm1aControlBlock() { return base + 4; }
    public int pmTimerBlock() { return base + 8; }
    public boolean timer32() { return timer32; }

    private long ticks(long ns) { return VirtualClock.scale(ns, TIMER_HZ, 1_000_000_000L); }

    private int msbShift() { return timer32 ? 32 : 24; }

    /** The PM timer value now. */
    public long timerValue() { return ticks(clock.nanos()) & (timer32 ? 0xFFFF_FFFFL : 0xFF_FFFFL); }

    /** The power button was pressed (host request): PWRBTN_STS, SCI if enabled. */
    public void pressPowerButton() {
        synchronized (this) { sts |= PWRBTN_STS; }
        updateSci();
    }

    private void refreshTimerStatus(long ns) {
        long toggles = ticks(ns) >> (msbShift() - 1);
        if (toggles > togglesSeen) { sts |= TMR_STS; togglesSeen = toggles; }
    }

    @Override
    public long in(int port, int size) {
        int off = port - base;
        long ns = clock.nanos();
        long v;
        synchronized (this) {
            refreshTimerStatus(ns);
            long regs = switch (off & ~3) {
                case 0 -> (sts & 0xFFFFL) | (long) en << 16;
                case 4 -> cnt & 0xFFFFL;
                case 8 -> ticks(ns) & (timer32 ? 0xFFFF_FFFFL : 0xFF_FFFFL);
                default -> 0xFFFF_FFFFL;
            };
            v = regs >>> (8 * (off & 3));
        }
        return v & (size == 4 ? 0xFFFF_FFFFL : (1L << (8 * size)) - 1);
    }

    @Override
    public void out(int port, int size, long value) {
        int off = port - base;
        boolean off5 = false, s3 = false;
        synchronized (this) {
            refreshTimerStatus(clock.nanos());
            // Split the access into 16-bit registers so that a dword write to PM1a_EVT sets both halves.
            for (int i = 0; i < size; i++) {
                int o = off + i, b = (int) (value >>> (8 * i)) & 0xFF;
                int shift = (o & 1) * 8;
                switch (o & ~1) {
                    case 0 -> sts &= ~((b << shift) & STS_MASK);              // write 1 to clear
                    case 2 -> en = en & ~(0xFF << shift) | (b << shift) & EN_MASK;
                    case 4 -> {
                        int v = cnt & ~(0xFF << shift) | b << shift;
                        if ((o & 1) == 1 && (v & SLP_EN) != 0) { // SLP_EN and SLP_TYP sit in the high byte
                            // SLP_EN: enter the sleep state SLP_TYP selects.
                            int typ = v >> 10 & 7;
                            if (typ == SLP_TYP_S5) off5 = true;
                            else if (typ == SLP_TYP_S3 && !sleeping) s3 = sleeping = true;
                            else sts |= WAK_STS; // S1, S2, S4 are not implemented: wake at once
                        }
                        cnt = v & ~SLP_EN | SCI_EN; // SLP_EN is write-only; SCI_EN is fixed (no SMI_CMD)
                    }
                    default -> {} // PM_TMR is read-only
                }
            }
            armCarry();
        }
        updateSci();
        if (off5) powerOff.run();
        if (s3) suspend.run();
    }

    private void armCarry() {
        if ((en & TMR_STS) == 0) { carryTimer.cancel(); return; }
        long next = (togglesSeen + 1) << (msbShift() - 1);
        carryTimer.arm(VirtualClock.ceilScale(next, 1_000_000_000L, TIMER_HZ));
    }

    private void carry() {
        synchronized (this) {
            refreshTimerStatus(clock.nanos());
            armCarry();
        }
        updateSci();
    }

    private void updateSci() {
        boolean level;
        synchronized (this) {
            level = (sts & en & 0x0721) != 0;
            if (level == sciLevel) return;
            sciLevel = level;
        }
        sci.set(level);
    }
}
