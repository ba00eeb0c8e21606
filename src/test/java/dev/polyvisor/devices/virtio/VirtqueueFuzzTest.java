package dev.polyvisor.devices.virtio;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.driver.FuzzedDataProviderImpl;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.polyvisor.memory.GuestMemory;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The virtqueue parser against arbitrary ring contents, fuzzed by Jazzer: whatever a driver writes into
 * the descriptor table, an indirect table and the available ring, {@link Virtqueue#pop} either returns a
 * chain whose buffers all lie in guest RAM, no longer than the ring or the indirect table, or throws
 * {@link VirtqueueException} (the device then goes to NEEDS_RESET, virtio 1.2 2.1.2); it never throws
 * anything else and never loops. An input that goes on past what the split ring used does the same with a
 * packed ring ({@link #packedCase}).
 *
 * <p>Three ways to run it:
 * <ul>
 *   <li>regression ({@code mvn test -Dtest=VirtqueueFuzzTest}): Jazzer replays the empty input and the seed
 *       corpus in {@code src/test/resources/dev/polyvisor/devices/virtio/VirtqueueFuzzTestInputs/popYieldsChainsInRamOrVirtqueueException/},
 *       one input per way a ring breaks (loop, buffer or indirect table outside RAM, bad table length, link or
 *       head beyond the table, readable after writable, index jump, nested or unnegotiated indirect,
 *       INDIRECT with NEXT), chains through an indirect table, several chains, and
 *       {@code descriptor-longer-than-2GiB}: the fuzzer's first finding, a 2.1 GiB descriptor in a guest
 *       with RAM above 4 GiB for which {@link DescriptorChain#pieces} handed out a negative length (now split
 *       into pieces of at most {@link DescriptorChain#MAX_PIECE});
 *       {@link #seedCorpusReachesIndirectTablesLoopsAndAddressesOutsideRam} keeps the corpus meaning that;</li>
 *   <li>CI (plain {@code mvn verify}, {@code ./run-tests}): pom.xml's {@code jazzer-fuzz} profile, active
 *       when no {@code -Dtest} is given, runs this class in a JVM of its own with {@code JAZZER_FUZZ=1}: the
 *       same replay, then coverage-guided fuzzing for {@code maxDuration}; generated corpus and any finding
 *       ({@code crash-*}, also printed as Base64) go under {@code target/jazzer/};</li>
 *   <li>a longer opt-in run:
 *       {@code JAZZER_FUZZ=1 mvn test -Dtest=VirtqueueFuzzTest -Djazzer.max_duration=10m}; findings land in
 *       the inputs directory above, where they become regression inputs (give them a name that says what
 *       they break), and the generated corpus in {@code .cifuzz-corpus/}.</li>
 * </ul>
 * Jazzer 0.30 instruments Java 25 class files (0.24 could not: "Unsupported class file major version 69"
 * for every class), so the fuzzer is guided by the coverage and comparisons of {@code Virtqueue},
 * {@code DescriptorChain} and {@code GuestDma}.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class VirtqueueFuzzTest {
    static final long DESC = 0x1000, AVAIL = 0x2000, USED = 0x3000, INDIRECT = 0x8000, DATA = 0x10000;
    /** The small machine most inputs get, and the PC with RAM above 4 GiB where one descriptor can span more than 2 GiB. */
    static final long SMALL_RAM = 1 << 20, LARGE_RAM = 5L << 30;

    @Order(1)
    @FuzzTest(maxDuration = "10s")
    void popYieldsChainsInRamOrVirtqueueException(FuzzedDataProvider in) {
        oneCase(in);
    }

    /** What one input did: chains popped, whether one came through an indirect table, and why the queue broke (or null). */
    record Outcome(int chains, boolean throughIndirect, String malformed) {}

    /** After the fuzz test, whose first run installs Jazzer's runtime, which FuzzedDataProviderImpl needs. */
    @Order(2)
    @Test
    void seedCorpusReachesIndirectTablesLoopsAndAddressesOutsideRam() throws IOException, URISyntaxException {
        var dir = VirtqueueFuzzTest.class.getResource("VirtqueueFuzzTestInputs/popYieldsChainsInRamOrVirtqueueException");
        assertNotNull(dir, "seed corpus on the test class path");
        List<Outcome> outcomes = new ArrayList<>();
        try (Stream<Path> files = Files.list(Path.of(dir.toURI()))) {
            for (Path f : files.sorted().toList()) {
                try (FuzzedDataProviderImpl in = FuzzedDataProviderImpl.withJavaData(Files.readAllBytes(f))) {
                    outcomes.add(oneCase(in));
                }
            }
        }
        assertTrue(outcomes.stream().anyMatch(Outcome::throughIndirect), "a chain through an indirect table: " + outcomes);
        assertTrue(outcomes.stream().anyMatch(o -> o.chains() > 1), "several chains from one ring: " + outcomes);
        for (String why : List.of("a loop", "buffer 0x", "indirect table 0x", "indirect table length", "chains to", "head descriptor",
                "after a device-writable", "jumped", "inside an indirect table", "without VIRTIO_F_INDIRECT_DESC", "both INDIRECT and NEXT"))
            assertTrue(outcomes.stream().anyMatch(o -> o.malformed() != null && o.malformed().contains(why)), "a queue broken by '" + why + "': " + outcomes);
    }

    static Outcome oneCase(FuzzedDataProvider in) {
        Outcome split = splitCase(in);
        // Last, so that the seed corpus (whose inputs end before it) keeps its meaning for the split layout.
        if (in.consumeBoolean()) packedCase(in);
        return split;
    }

    static Outcome splitCase(FuzzedDataProvider in) {
        boolean large = in.consumeInt(0, 7) == 0;
        long ramEnd = large ? GuestMemory.PCI_HOLE_START + LARGE_RAM : SMALL_RAM;
        try (GuestMemory mem = large ? GuestMemory.pc(LARGE_RAM) : new GuestMemory(SMALL_RAM)) {
            GuestDma dma = new GuestDma(mem, null);
            int size = 1 << in.consumeInt(0, 4);
            boolean eventIdx = in.consumeBoolean(), indirect = in.consumeBoolean();
            // Addresses near the data area, the end of RAM, the PCI hole and the indirect table hit both sides of each bound.
            for (int i = 0; i < size; i++) {
                long addr = switch (in.consumeInt(0, 9)) {
                    case 5 -> ramEnd - in.consumeInt(0, 64);
                    case 6 -> INDIRECT + 16L * in.consumeInt(0, 8);
                    case 7 -> in.consumeLong();
                    case 8 -> GuestMemory.PCI_HOLE_START - in.consumeInt(0, 64);
                    case 9 -> GuestMemory.FOUR_GIB - in.consumeInt(0, 64);
                    default -> DATA + in.consumeInt(0, 0x1000);
                };
                int len = in.consumeInt(0, 15) == 0 ? in.consumeInt() : in.consumeInt(0, 96);
                // Mostly well-formed flags and links, so that the parser gets past the first descriptor.
                int flags = switch (in.consumeInt(0, 15)) {
                    case 0 -> in.consumeInt(0, 0xFFFF);
                    case 8, 9, 10, 11, 12 -> 0;
                    case 1 -> Virtqueue.DESC_F_INDIRECT;
                    case 2, 3 -> Virtqueue.DESC_F_NEXT;
                    case 4, 5 -> Virtqueue.DESC_F_WRITE | Virtqueue.DESC_F_NEXT;
                    default -> Virtqueue.DESC_F_WRITE;
                };
                int next = in.consumeInt(0, 15) == 0 ? in.consumeInt(0, 0xFFFF) : in.consumeInt(0, size);
                desc(mem, DESC, i, addr, len, flags, next);
            }
            for (int i = 0; i < 8; i++)
                desc(mem, INDIRECT, i, DATA + in.consumeInt(0, 64), in.consumeInt(0, 64), in.consumeInt(0, 7), in.consumeInt(0, 9));
            Virtqueue q = new Virtqueue(dma, size);
            q.setDescAddr(DESC);
            q.setAvailAddr(AVAIL);
            q.setUsedAddr(USED);
            q.setFeatures(eventIdx, indirect);
            try {
                q.enable();
            } catch (VirtqueueException e) {
                throw new AssertionError("well-placed rings refused", e);
            }
            int posts = in.consumeInt(0, 7) == 0 ? in.consumeInt(0, 2 * size) : in.consumeInt(1, size);
            int availIdx = 0;
            for (int i = 0; i < posts; i++) {
                mem.st16(AVAIL + 4 + 2L * (availIdx % size), in.consumeInt(0, size));
                availIdx = availIdx + 1 & 0xFFFF;
            }
            mem.st16(AVAIL + 2, in.consumeInt(0, 7) == 0 ? in.consumeInt(0, 0xFFFF) : availIdx);
            int popped = 0;
            boolean throughIndirect = false;
            for (int n = 0; n < 2 * size + 2; n++) {
                DescriptorChain c;
                try {
                    c = q.pop();
                } catch (VirtqueueException e) {
                    return new Outcome(popped, throughIndirect, e.getMessage()); // the device would set NEEDS_RESET
                }
                if (c == null) break;
                popped++;
                assertTrue(c.head() >= 0 && c.head() < size, "head " + c.head());
                throughIndirect |= (mem.ld16(DESC + 16L * c.head() + 12) & Virtqueue.DESC_F_INDIRECT) != 0;
                // At most the ring's descriptors up to an indirect one, plus one table (tables do not nest).
                assertTrue(c.segments() >= 1 && c.segments() <= size + longestTable(mem, size), "segments " + c.segments());
                assertAllInRam(c, dma, false, c.readableBytes());
                assertAllInRam(c, dma, true, c.writableBytes());
                q.push(c, c.writableBytes());
            }
            return new Outcome(popped, throughIndirect, null);
        }
    }

    /**
     * The same kind of arbitrary descriptors read as a packed ring (virtio 1.2 2.8): the driver marks the first
     * slots available (or leaves the input's own flag bits), and {@link Virtqueue#pop} either returns chains in
     * RAM no longer than the ring or one indirect table, or throws {@link VirtqueueException}.
     */
    static void packedCase(FuzzedDataProvider in) {
        try (GuestMemory mem = new GuestMemory(SMALL_RAM)) {
            GuestDma dma = new GuestDma(mem, null);
            int size = 1 << in.consumeInt(0, 4);
            for (int i = 0; i < size; i++) {
                long addr = switch (in.consumeInt(0, 4)) {
                    case 3 -> SMALL_RAM - in.consumeInt(0, 64);
                    case 4 -> in.consumeInt(0, 3) == 0 ? in.consumeLong() : INDIRECT + 16L * in.consumeInt(0, 8);
                    default -> DATA + in.consumeInt(0, 0x1000);
                };
                int len = in.consumeInt(0, 15) == 0 ? in.consumeInt() : in.consumeInt(0, 96);
                int flags = in.consumeInt(0, 7) == 0 ? in.consumeInt(0, 0xFFFF)
                        : in.consumeInt(0, 7) | (in.consumeInt(0, 3) == 0 ? 0 : Virtqueue.DESC_F_AVAIL);
                desc(mem, DESC, i, addr, len, flags, in.consumeInt(0, 0xFFFF));
            }
            for (int i = 0; i < 8; i++)
                desc(mem, INDIRECT, i, DATA + in.consumeInt(0, 64), in.consumeInt(0, 64), in.consumeInt(0, 7), 0);
            Virtqueue q = new Virtqueue(dma, size);
            q.setDescAddr(DESC);
            q.setAvailAddr(AVAIL);
            q.setUsedAddr(USED);
            q.setFeatures(in.consumeBoolean(), in.consumeBoolean(), true);
            try {
                q.enable();
            } catch (VirtqueueException e) {
                throw new AssertionError("well-placed packed ring refused", e);
            }
            mem.st32(AVAIL, in.consumeInt()); // the driver's event suppression: anything
            for (int n = 0; n < 2 * size + 2; n++) {
                DescriptorChain c;
                try {
                    c = q.pop();
                } catch (VirtqueueException e) {
                    return;
                }
                if (c == null) return;
                // At most the ring's slots, or one indirect table.
                assertTrue(c.segments() >= 1 && c.segments() <= Math.max(size, Virtqueue.MAX_INDIRECT), "segments " + c.segments());
                assertAllInRam(c, dma, false, c.readableBytes());
                assertAllInRam(c, dma, true, c.writableBytes());
                q.push(c, c.writableBytes());
                q.needsInterrupt(0);
            }
        }
    }

    /** The pieces of one stream are non-empty ranges of guest RAM that add up to the stream's length. */
    private static void assertAllInRam(DescriptorChain c, GuestDma dma, boolean write, long bytes) {
        long[] seen = {0};
        try {
            c.pieces(write, 0, bytes, (pa, len) -> {
                assertTrue(len > 0 && dma.isRam(pa, len), String.format("piece 0x%x+%d", pa, len));
                seen[0] += len;
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        assertEquals(bytes, seen[0], write ? "writable bytes" : "readable bytes");
    }

    /** Entries of the longest indirect table a ring descriptor names. */
    private static long longestTable(GuestMemory mem, int size) {
        long most = 0;
        for (int i = 0; i < size; i++)
            if ((mem.ld16(DESC + 16L * i + 12) & Virtqueue.DESC_F_INDIRECT) != 0)
                most = Math.max(most, Integer.toUnsignedLong(mem.ld32(DESC + 16L * i + 8)) / 16);
        return most;
    }

    private static void desc(GuestMemory mem, long table, int i, long addr, int len, int flags, int next) {
        long d = table + 16L * i;
        mem.st64(d, addr);
        mem.st32(d + 8, len);
        mem.st16(d + 12, flags);
        mem.st16(d + 14, next);
    }
}
