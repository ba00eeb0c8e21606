package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.Cpu;
import dev.polyvisor.cpu.CpuFault;
import dev.polyvisor.cpu.decode.Insn;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static dev.polyvisor.cpu.exec.FpuTestFixture.CODE;
import static dev.polyvisor.cpu.exec.FpuTestFixture.DATA;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Differential test of the x87 forms against the host CPU (the shared oracle harness does not load
 * x87 state): each case runs FNINIT, FLDCW, up to two FLD m80 of generated values, the instruction
 * under test (memory operand at [rdi+48]) and an FXSAVE64, natively (src/test/native/x87_harness.c)
 * and in the emulator. Compared: the data block (stores), FCW, FSW, abridged FTW, MXCSR, the eight
 * 80-bit register images and, for FCOMI/FUCOMI, the arithmetic flags. FIP/FDP/FOP are not compared.
 * System properties: x87.cases (default 30000), x87.seed.
 */
class X87HostOracleTest {
    static final Path SOURCE = Path.of("src/test/native/x87_harness.c");

    /** An instruction template: bytes, how many m80 values to push first, and whether RFLAGS matters. */
    record Form(String name, byte[] bytes, int loads, boolean flags, int memKind) {}

    static final int M_NONE = 0, M_R32 = 1, M_R64 = 2, M_I16 = 3, M_I32 = 4, M_I64 = 5, M_R80 = 6;

    static final List<Form> FORMS = new ArrayList<>();

    static void form(String name, String hex, int loads, boolean flags, int mem) {
        FORMS.add(new Form(name, FpuTestFixture.hex(hex), loads, flags, mem));
    }

    static {
        String[] ar = {"FADD", "FMUL", "FCOM", "FCOMP", "FSUB", "FSUBR", "FDIV", "FDIVR"};
        for (int r = 0; r < 8; r++) {
            String modrm = String.format("%02x", 0x47 | r << 3);
            form(ar[r] + " m32", "d8 " + modrm + " 30", 1, false, M_R32);
            form(ar[r] + " m64", "dc " + modrm + " 30", 1, false, M_R64);
            form("FI" + ar[r].substring(1) + " m32", "da " + modrm + " 30", 1, false, M_I32);
            form("FI" + ar[r].substring(1) + " m16", "de " + modrm + " 30", 1, false, M_I16);
            form(ar[r] + " ST0,ST1", String.format("d8 %02x", 0xC1 | r << 3), 2, false, M_NONE);
        }
        String[] dc = {"FADD ST1,ST0", "FMUL ST1,ST0", null, null, "FSUBR ST1,ST0", "FSUB ST1,ST0", "FDIVR ST1,ST0", "FDIV ST1,ST0"};
        for (int r = 0; r < 8; r++) {
            if (dc[r] == null) continue;
            form(dc[r], String.format("dc %02x", 0xC1 | r << 3), 2, false, M_NONE);
            form(dc[r].replace(" ST1,ST0", "P"), String.format("de %02x", 0xC1 | r << 3), 2, false, M_NONE);
        }
        form("FLD m32", "d9 47 30", 1, false, M_R32);
        form("FLD m64", "dd 47 30", 1, false, M_R64);
        form("FLD m80", "db 6f 30", 1, false, M_R80);
        form("FILD m16", "df 47 30", 1, false, M_I16);
        form("FILD m32", "db 47 30", 1, false, M_I32);
        form("FILD m64", "df 6f 30", 1, false, M_I64);
        form("FST m32", "d9 57 30", 1, false, M_NONE);
        form("FSTP m32", "d9 5f 30", 2, false, M_NONE);
        form("FST m64", "dd 57 30", 1, false, M_NONE);
        form("FSTP m64", "dd 5f 30", 2, false, M_NONE);
        form("FSTP m80", "db 7f 30", 2, false, M_NONE);
        form("FIST m16", "df 57 30", 1, false, M_NONE);
        form("FISTP m16", "df 5f 30", 1, false, M_NONE);
        form("FIST m32", "db 57 30", 1, false, M_NONE);
        form("FISTP m32", "db 5f 30", 1, false, M_NONE);
        form("FISTP m64", "df 7f 30", 1, false, M_NONE);
        form("FISTTP m16", "df 4f 30", 1, false, M_NONE);
        form("FISTTP m32", "db 4f 30", 1, false, M_NONE);
        form("FISTTP m64", "dd 4f 30", 1, false, M_NONE);
        String[] d9 = {"e0 FCHS", "e1 FABS", "e4 FTST", "e5 FXAM", "fa FSQRT", "fc FRNDINT", "fd FSCALE", "f8 FPREM",
                "f5 FPREM1", "c9 FXCH", "c1 FLD ST1", "f6 FDECSTP", "f7 FINCSTP", "e8 FLD1", "e9 FLDL2T", "ea FLDL2E",
                "eb FLDPI", "ec FLDLG2", "ed FLDLN2", "ee FLDZ"};
        for (String s : d9) form(s.substring(3), "d9 " + s.substring(0, 2), 2, false, M_NONE);
        form("FST ST1", "dd d1", 2, false, M_NONE);
        form("FSTP ST1", "dd d9", 2, false, M_NONE);
        form("FFREE ST1", "dd c1", 2, false, M_NONE);
        form("FCOM ST1", "d8 d1", 2, false, M_NONE);
        form("FCOMP ST1", "d8 d9", 2, false, M_NONE);
        form("FCOMPP", "de d9", 2, false, M_NONE);
        form("FUCOM ST1", "dd e1", 2, false, M_NONE);
        form("FUCOMP ST1", "dd e9", 2, false, M_NONE);
        form("FUCOMPP", "da e9", 2, false, M_NONE);
        form("FCOMI", "db f1", 2, true, M_NONE);
        form("FUCOMI", "db e9", 2, true, M_NONE);
        form("FCOMIP", "df f1", 2, true, M_NONE);
        form("FUCOMIP", "df e9", 2, true, M_NONE);
        form("FNSTSW AX + store", "df e0 66 89 47 30", 2, false, M_NONE);
    }

    static final int[] FCW = {0x037F, 0x027F, 0x007F, 0x077F, 0x0B7F, 0x0F7F, 0x067F, 0x0A7F, 0x0E7F, 0x047F, 0x0C7F, 0x087F};

    /** An 80-bit value biased towards the interesting classes. */
    static long[] ext(SplittableRandom r) {
        int sign = r.nextBoolean() ? 0x8000 : 0;
        long m = r.nextLong();
        switch (r.nextInt(16)) {
            case 0: return new long[] {0, sign};
            case 1: return new long[] {Long.MIN_VALUE, sign | 0x7FFF};
            case 2: return new long[] {0xC000_0000_0000_0000L | (r.nextBoolean() ? 0 : m >>> 2), sign | 0x7FFF}; // QNaN
            case 3: return new long[] {Long.MIN_VALUE | (m >>> 2 | 1), sign | 0x7FFF}; // SNaN
            case 4: return new long[] {m >>> 1, sign}; // denormal
            case 5: return new long[] {m | Long.MIN_VALUE, sign | r.nextInt(1, 0x7FFF)}; // any normal
            case 6: { // small integers and halves
                double d = r.nextInt(-70000, 70000) / (r.nextBoolean() ? 1.0 : 2.0);
                long[] e = SoftFloat.doubleToExt(d);
                return new long[] {e[0], (int) e[1]};
            }
            case 7: { // ties for 24/53-bit precision
                long base = (m | Long.MIN_VALUE) & (r.nextBoolean() ? ~0xFF_FFFF_FFFFL : ~0x7FFL);
                long tie = r.nextBoolean() ? 0x80_0000_0000L : 0x400L;
                return new long[] {base | tie, sign | (16383 + r.nextInt(-20, 20))};
            }
            case 8: return new long[] {m | Long.MIN_VALUE, sign | (r.nextBoolean() ? r.nextInt(1, 80) : r.nextInt(0x7FFF - 80, 0x7FFF))};
            case 9: return new long[] {m | Long.MIN_VALUE, sign | (16383 + 62 + r.nextInt(-3, 4))}; // near integer limits
            case 10: return switch (r.nextInt(4)) {
                case 0 -> new long[] {m >>> 1, sign | r.nextInt(1, 0x7FFF)}; // unnormal
                case 1 -> new long[] {m | Long.MIN_VALUE, sign}; // pseudo-denormal
                case 2 -> new long[] {m >>> 1 | 1, sign | 0x7FFF}; // pseudo-NaN
                default -> new long[] {0, sign | 0x7FFF}; // pseudo-infinity
            };
            default: return new long[] {m | Long.MIN_VALUE, sign | (16383 + r.nextInt(-70, 70))};
        }
    }

    static long operandBits(SplittableRandom r, int kind) {
        return switch (kind) {
            case M_R32 -> r.nextInt(4) == 0 ? Float.floatToRawIntBits((float) (r.nextInt(-1000, 1000) / 4.0))
                    : r.nextInt(3) == 0 ? (r.nextBoolean() ? 0x7F80_0001L : 0x0000_0007L) | (r.nextBoolean() ? 0x8000_0000L : 0) : r.nextInt() & 0xFFFF_FFFFL;
            case M_R64 -> r.nextInt(4) == 0 ? Double.doubleToRawLongBits(r.nextInt(-1000, 1000) / 4.0)
                    : r.nextInt(3) == 0 ? (r.nextBoolean() ? 0x7FF0_0000_0000_0001L : 0x5L) | (r.nextBoolean() ? Long.MIN_VALUE : 0) : r.nextLong();
            case M_I16 -> r.nextInt(0x10000);
            case M_I32 -> r.nextBoolean() ? r.nextInt(-5000, 5000) : r.nextInt();
            default -> r.nextBoolean() ? r.nextLong(-1L << 40, 1L << 40) : r.nextLong();
        };
    }

    record Case(Form form, byte[] code, byte[] data) {}

    static Case makeCase(Form f, SplittableRandom r) {
        byte[] data = new byte[128];
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(data).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.putShort(0, (short) FCW[r.nextInt(FCW.length)]);
        for (int k = 0; k < 2; k++) {
            long[] v = ext(r);
            b.putLong(16 + 16 * k, v[0]);
            b.putShort(24 + 16 * k, (short) v[1]);
        }
        if (f.memKind == M_R80) { long[] v = ext(r); b.putLong(48, v[0]); b.putShort(56, (short) v[1]); }
        else if (f.memKind != M_NONE) b.putLong(48, operandBits(r, f.memKind));
        ByteArrayOutputStream code = new ByteArrayOutputStream();
        code.writeBytes(FpuTestFixture.hex("db e3 d9 2f")); // FNINIT; FLDCW [rdi]
        int loads = f.loads;
        int shape = r.nextInt(20);
        if (shape == 0) for (int k = 0; k < 6; k++) code.writeBytes(FpuTestFixture.hex("d9 e8")); // nearly full: pushes overflow
        else if (shape == 1 && loads > 0) loads--; // an empty operand: stack underflow
        if (loads >= 1) code.writeBytes(FpuTestFixture.hex("db 6f 10")); // FLD m80 [rdi+16]
        if (loads >= 2) code.writeBytes(FpuTestFixture.hex("db 6f 20")); // FLD m80 [rdi+32]
        code.writeBytes(f.bytes);
        code.writeBytes(FpuTestFixture.hex("9c 58 48 89 87 80 00 00 00")); // PUSHFQ; POP RAX; MOV [rdi+0x80], RAX
        code.writeBytes(FpuTestFixture.hex("48 0f ae 87 00 01 00 00")); // FXSAVE64 [rdi+0x100]
        code.writeBytes(FpuTestFixture.hex("db e3 c3")); // FNINIT; RET
        return new Case(f, code.toByteArray(), data);
    }

    static byte[] emulate(FpuTestFixture fx, Case k) {
        Cpu c = fx.c;
        byte[] buf = new byte[768];
        System.arraycopy(k.data, 0, buf, 0, 128);
        fx.mem.load(DATA, buf);
        fx.mem.load(CODE, k.code);
        c.r[Cpu.RDI] = DATA;
        c.r[Cpu.RSP] = 0x30000;
        c.rip = CODE;
        long end = CODE + k.code.length - 1; // stop at the RET
        while (c.rip != end) {
            Insn i = fx.decoder.decode(c, c.rip);
            c.prevRip = c.rip;
            c.rip += i.len;
            try {
                i.exec(c);
            } catch (CpuFault f) {
                throw new AssertionError(k.form.name + ": emulator raised " + f.getMessage());
            }
        }
        return fx.mem.readBytes(DATA, 768);
    }

    static Path build() throws IOException, InterruptedException {
        Path dir = Path.of("target", "x87-harness");
        Files.createDirectories(dir);
        Path bin = dir.resolve("x87_harness-" + Integer.toHexString(Files.readString(SOURCE).hashCode()));
        if (Files.isExecutable(bin)) return bin;
        Process gcc = new ProcessBuilder("gcc", "-O2", "-Wall", "-o", bin.toString(), SOURCE.toString()).redirectErrorStream(true).start();
        String log = new String(gcc.getInputStream().readAllBytes());
        assertTrue(gcc.waitFor(120, TimeUnit.SECONDS) && gcc.exitValue() == 0, "gcc failed:\n" + log);
        return bin;
    }

    @Test
    void x87FormsMatchTheHostCpu() throws Exception {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        assumeTrue(os.contains("linux") && (arch.equals("amd64") || arch.equals("x86_64")), "needs an x86-64 Linux host");
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/gcc")) || Files.isExecutable(Path.of("/usr/local/bin/gcc")), "needs gcc");
        int n = Integer.getInteger("x87.cases", 30000);
        long seed = Long.decode(System.getProperty("x87.seed", "0x87"));
        SplittableRandom r = new SplittableRandom(seed);
        List<Case> cases = new ArrayList<>(n);
        for (int i = 0; i < n; i++) cases.add(makeCase(FORMS.get(i % FORMS.size()), r));

        Process p = new ProcessBuilder(build().toString()).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        byte[][] host = new byte[n][];
        Thread writer = Thread.ofVirtual().start(() -> {
            try (OutputStream out = new java.io.BufferedOutputStream(p.getOutputStream(), 1 << 16)) {
                for (Case k : cases) {
                    byte[] rec = new byte[192];
                    rec[0] = (byte) k.code.length;
                    System.arraycopy(k.code, 0, rec, 1, k.code.length);
                    System.arraycopy(k.data, 0, rec, 64, 128);
                    out.write(rec);
                }
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        try (DataInputStream in = new DataInputStream(new java.io.BufferedInputStream(p.getInputStream(), 1 << 16))) {
            for (int i = 0; i < n; i++) { host[i] = new byte[768]; in.readFully(host[i]); }
        }
        writer.join();
        p.waitFor(10, TimeUnit.SECONDS);

        StringBuilder report = new StringBuilder();
        int mismatches = 0;
        java.util.Map<String, Integer> byForm = new java.util.TreeMap<>();
        try (FpuTestFixture fx = new FpuTestFixture()) {
            for (int i = 0; i < n; i++) {
                Case k = cases.get(i);
                byte[] emu = emulate(fx, k);
                String diff = compare(k, host[i], emu);
                if (diff != null) {
                    mismatches++;
                    byForm.merge(k.form.name, 1, Integer::sum);
                    if (byForm.get(k.form.name) <= 3)
                        report.append("MISMATCH ").append(k.form.name).append(" fcw=").append(String.format("%04x", (k.data[0] & 0xFF) | (k.data[1] & 0xFF) << 8))
                                .append(" data=").append(HexFormat.of().formatHex(k.data, 16, 64)).append('\n').append("    ").append(diff).append('\n');
                }
            }
        }
        System.out.print(report);
        byForm.forEach((f, c) -> System.out.println("  mismatching x87 form " + f + ": " + c));
        System.out.printf("x87 oracle: %d cases, %d forms, %d mismatches (seed 0x%X)%n", n, FORMS.size(), mismatches, seed);
        assertEquals(0, mismatches, report.toString());
    }

    static String compare(Case k, byte[] h, byte[] e) {
        StringBuilder d = new StringBuilder();
        HexFormat hx = HexFormat.of();
        if (!java.util.Arrays.equals(h, 0, 128, e, 0, 128))
            d.append("data host=").append(hx.formatHex(h, 48, 64)).append(" emu=").append(hx.formatHex(e, 48, 64)).append("; ");
        int fx = 0x100;
        String[] names = {"fcw", "fsw"};
        for (int w = 0; w < 2; w++) {
            int hv = (h[fx + 2 * w] & 0xFF) | (h[fx + 2 * w + 1] & 0xFF) << 8, ev = (e[fx + 2 * w] & 0xFF) | (e[fx + 2 * w + 1] & 0xFF) << 8;
            if (hv != ev) d.append(names[w]).append(String.format(" host=%04x emu=%04x; ", hv, ev));
        }
        if (h[fx + 4] != e[fx + 4]) d.append(String.format("ftw host=%02x emu=%02x; ", h[fx + 4] & 0xFF, e[fx + 4] & 0xFF));
        if (!java.util.Arrays.equals(h, fx + 24, fx + 28, e, fx + 24, fx + 28)) d.append("mxcsr differs; ");
        for (int i = 0; i < 8; i++) {
            int o = fx + 32 + 16 * i;
            if (!java.util.Arrays.equals(h, o, o + 10, e, o, o + 10))
                d.append("st").append(i).append(" host=").append(hx.formatHex(h, o, o + 10)).append(" emu=").append(hx.formatHex(e, o, o + 10)).append("; ");
        }
        if (k.form.flags && ((h[0x80] ^ e[0x80]) & 0xD5) != 0 || k.form.flags && ((h[0x81] ^ e[0x81]) & 0x08) != 0)
            d.append(String.format("rflags host=%02x emu=%02x; ", h[0x80] & 0xFF, e[0x80] & 0xFF));
        return d.isEmpty() ? null : d.toString();
    }
}
