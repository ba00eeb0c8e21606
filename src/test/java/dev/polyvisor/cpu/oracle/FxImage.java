package dev.polyvisor.cpu.oracle;

import dev.polyvisor.cpu.decode.OpcodeTable.Entry;
import dev.polyvisor.cpu.exec.FxsaveOps;

import java.util.List;
import java.util.random.RandomGenerator;

/**
 * FXSAVE / FXRSTOR m512 (NP 0F AE /0 and /1, with and without REX.W) in the oracle: where the image
 * goes, what an FXRSTOR image holds, and which bytes of a saved image are host-specific.
 *
 * <p>Image layout: SDM Vol. 1, 10.5.1, Tables 10-2 (FXSAVE64, REX.W) and 10-3 (32-bit format); AMD
 * APM Vol. 5, FXSAVE, Figures 3-3 and 3-4.
 */
final class FxImage {
    private FxImage() {}

    static final int SIZE = 512;
    /** Highest image start that keeps all 512 bytes inside the compared window (0x600 + 1024 - 512). */
    static final int LAST_IN_WINDOW = HostHarness.WIN_OFF + MachineState.WINDOW - SIZE;

    static boolean covers(Entry e) {
        String k = Encoder.key(e);
        return k.equals("FXSAVE") || k.equals("FXRSTOR");
    }

    static boolean isRestore(Entry e) { return Encoder.key(e).equals("FXRSTOR"); }

    /**
     * The image's offset in the data page. Mostly 16-byte aligned and wholly inside the window (the
     * valid case); one in eight misaligned (#GP(0): FXSAVE/FXRSTOR require a 16-byte aligned operand,
     * SDM Vol. 2A FXSAVE "64-Bit Mode Exceptions", and MXCSR.MM stays clear so the AMD misaligned-SSE
     * mode does not apply); one in eight aligned but running off the end of the data page into the
     * unmapped page after it (#PF at the first byte of that page, nothing written).
     */
    static int eaTarget(RandomGenerator r) {
        int aligned = HostHarness.WIN_OFF + 16 * r.nextInt((LAST_IN_WINDOW - HostHarness.WIN_OFF) / 16 + 1);
        return switch (r.nextInt(8)) {
            case 0 -> aligned + 1 + r.nextInt(15);
            case 1 -> 0x1000 - 16 * (1 + r.nextInt(SIZE / 16 - 1));
            default -> aligned;
        };
    }

    /**
     * An FXRSTOR image at the operand (when it lies in the window): mostly valid, with random x87
     * control/status words and abridged tags, every class of 80-bit value (unnormals, pseudo-denormals,
     * pseudo-infinities and pseudo-NaNs included), random XMM and random bytes in every field FXRSTOR
     * ignores (reserved, MXCSR_MASK, 464-511). One image in eight sets a reserved MXCSR bit: #GP(0),
     * nothing loaded (SDM Vol. 2A FXRSTOR: "... attempt to set reserved bits in MXCSR").
     */
    static void fillRestoreImage(RandomGenerator r, Entry e, Encoding enc, MachineState s) {
        if (!enc.mem() || !isRestore(e)) return;
        int at = enc.eaOffset() - HostHarness.WIN_OFF;
        if (at < 0 || at + SIZE > s.mem.length) return; // faulting shapes: the window's random bytes will do
        byte[] m = s.mem;
        put(m, at, 2, r.nextInt(4) == 0 ? r.nextInt(0x10000) : 0x0040 | r.nextInt(0x40) | r.nextInt(4) << 8 | r.nextInt(4) << 10);
        put(m, at + 2, 2, r.nextInt(0x10000));
        m[at + 4] = (byte) r.nextInt(256);
        // MXCSR: bit 17 (AMD MM) is writable on the host but outside the model (MXCSR_MASK 0xFFFF), so it
        // stays clear; any other bit above 15 is reserved on both and must fault.
        int mxcsr = r.nextBoolean() ? Inputs.mxcsr(r) : r.nextInt(0x10000);
        if (r.nextInt(8) == 0) {
            int bit;
            do bit = 16 + r.nextInt(16); while (bit == 17);
            mxcsr |= 1 << bit;
        }
        put(m, at + 24, 4, mxcsr);
        for (int i = 0; i < 8; i++) {
            long[] v = x87Value(r);
            put(m, at + 32 + 16 * i, 8, v[0]);
            put(m, at + 40 + 16 * i, 2, v[1]);
        }
        for (int i = 0; i < 32; i++) put(m, at + 160 + 8 * i, 8, Inputs.xmmHalf(r, r.nextInt(4)));
    }

    /** An 80-bit register image {significand, sign/exponent}, including the encodings the 8087 family left behind. */
    static long[] x87Value(RandomGenerator r) {
        long sign = r.nextBoolean() ? 0x8000 : 0;
        long m, e;
        switch (r.nextInt(10)) {
            case 0 -> { m = 0; e = 0; }                                                    // zero
            case 1 -> { m = r.nextLong() >>> 1 | 1; e = 0; }                               // denormal
            case 2 -> { m = r.nextLong() | Long.MIN_VALUE; e = 0; }                        // pseudo-denormal
            case 3 -> { m = r.nextLong() >>> 1; e = 1 + r.nextInt(0x7FFE); }               // unnormal
            case 4 -> { m = Long.MIN_VALUE; e = 0x7FFF; }                                  // infinity
            case 5 -> { m = r.nextLong() | Long.MIN_VALUE; e = 0x7FFF; }                   // NaN (Q or S)
            case 6 -> { m = r.nextLong() >>> 1; e = 0x7FFF; }                              // pseudo-inf / pseudo-NaN
            default -> { m = r.nextLong() | Long.MIN_VALUE; e = 1 + r.nextInt(0x7FFE); }   // normal
        }
        return new long[] {m, sign | e};
    }

    private static void put(byte[] m, int at, int n, long v) {
        for (int i = 0; i < n; i++) m[at + i] = (byte) (v >>> (8 * i));
    }

    private static int get(byte[] m, int at, int n) {
        int v = 0;
        for (int i = 0; i < n; i++) v |= (m[at + i] & 0xFF) << (8 * i);
        return v;
    }

    /** Whether the case's first instruction (the FXSAVE) faulted, rather than a flag consumer after it. */
    private static boolean faulted(MachineState s) {
        return s.trap != MachineState.NO_TRAP && s.rip == HostHarness.CODE_ADDR + HostHarness.CODE_OFF;
    }

    /**
     * A saved image's host-specific bytes: checks the emulator's value for each and returns the
     * emulator's window with those bytes taken from the host's, so that the ordinary byte-for-byte
     * window comparison covers everything else (XMM, x87 registers, FCW/FSW/FTW, MXCSR, the reserved
     * bytes and 464-511, which FXSAVE must leave unchanged). Returns {@code emu.mem} itself when
     * nothing is host-specific for this case.
     */
    static byte[] alignHostSpecific(OracleCase c, Entry ran, MachineState host, MachineState emu, List<String> diffs) {
        if (!c.enc().mem() || !covers(ran) || isRestore(ran) || faulted(host) || faulted(emu)) return emu.mem;
        int at = c.enc().eaOffset() - HostHarness.WIN_OFF;
        if (at < 0 || at + SIZE > emu.mem.length) return emu.mem;
        byte[] m = emu.mem.clone();
        // Bytes 28-31, MXCSR_MASK: the AMD host reports 0x0002FFFF because it implements MXCSR.MM (bit 17,
        // misaligned SSE mode; AMD APM Vol. 2, 4.2.2 "MXCSR_MASK"); the model advertises 0x0000FFFF (DAZ
        // supported, MM not: SDM Vol. 1, 11.6.6). The emulator must write exactly the model's mask.
        int mask = get(emu.mem, at + 28, 4);
        if (mask != FxsaveOps.MXCSR_MASK)
            diffs.add(String.format("FXSAVE MXCSR_MASK emu=%08x, the model's is %08x", mask, FxsaveOps.MXCSR_MASK));
        System.arraycopy(host.mem, at + 28, m, at + 28, 4);
        // Bytes 6-23, FOP/FIP/FDP (and FCS/FDS in the 32-bit format): with FSW.ES = 0 both sides store zeros
        // (AMD APM Vol. 5, FXSAVE) and that is compared. With ES = 1 (only under -Doracle.unmasked) the host
        // stores pointers its FXRSTOR loaded from the harness's image, with bits 63:56 read back as ones, and
        // the FCS/FDS selectors it holds; the emulator tracks neither the harness's image nor the selectors,
        // so these bytes are not comparable then.
        if ((host.fsw & 0x80) != 0) System.arraycopy(host.mem, at + 6, m, at + 6, 18);
        return m;
    }
}
