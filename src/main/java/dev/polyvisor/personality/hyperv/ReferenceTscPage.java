package dev.polyvisor.personality.hyperv;

import java.math.BigInteger;

/**
 * The reference TSC page arithmetic (TLFS "Partition Reference TSC Mechanism"; guest reader
 * hv_read_tsc_page_tsc in include/clocksource/hyperv_timer.h): reference time in 100 ns units =
 * ((TSC × scale) >> 64) + offset, with a 128-bit product. Layout: tsc_sequence u32 @0 (0 = invalid),
 * reserved u32 @4, tsc_scale u64 @8, tsc_offset s64 @16.
 */
public final class ReferenceTscPage {
    public static final int OFF_SEQUENCE = 0, OFF_SCALE = 8, OFF_OFFSET = 16;

    private ReferenceTscPage() {}

    /** scale = floor(2^64 × 10^7 / tscHz), so that (tsc × scale) >> 64 counts 100 ns units. */
    public static long scale(long tscHz) {
        return BigInteger.ONE.shiftLeft(64).multiply(BigInteger.valueOf(10_000_000L))
                .divide(BigInteger.valueOf(tscHz)).longValue();
    }

    /** The guest's computation: ((tsc × scale) >> 64) + offset. */
    public static long referenceTime(long tsc, long scale, long offset) {
        return Math.unsignedMultiplyHigh(tsc, scale) + offset;
    }

    /** The offset that makes the page agree with the reference counter {@code refNow} at TSC {@code tscNow}. */
    public static long offset(long tscNow, long refNow, long scale) {
        return refNow - Math.unsignedMultiplyHigh(tscNow, scale);
    }
}
