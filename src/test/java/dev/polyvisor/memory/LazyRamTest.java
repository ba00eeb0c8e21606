package dev.polyvisor.memory;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Guest RAM's host mapping ({@link LazyRam}): lazy and zero; with huge pages asked for, 2 MiB aligned and advised. */
class LazyRamTest {
    static final long SIZE = 64L << 20;

    @Test
    void aHugePageSegmentIsZeroAndStartsOnAHugePageBoundary() {
        assumeTrue(linux(), "skipped: not a Linux host (the RAM comes from Arena.allocate there)");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ram = LazyRam.allocate(SIZE, arena, true, "a test segment");
            assertEquals(SIZE, ram.byteSize());
            assertEquals(0, ram.address() % LazyRam.HUGE_PAGE, "RAM at 0x" + Long.toHexString(ram.address()));
            assertEquals(0, ram.get(ValueLayout.JAVA_LONG, 0));
            assertEquals(0, ram.get(ValueLayout.JAVA_LONG, SIZE - 8));
            ram.set(ValueLayout.JAVA_LONG, SIZE - 8, -1L);
            assertEquals(-1L, ram.get(ValueLayout.JAVA_LONG, SIZE - 8));
        }
    }

    /** smaps' THPeligible is the mapping's eligibility (the advice and the host's setting), not the pages' luck. */
    @Test
    void segmentsAdvisedForHugePagesAndImageBuffersMayHaveThemGuestRamByDefaultNot() throws IOException {
        String mode = thpSetting();
        assumeTrue(!mode.contains("[never]"), "skipped: the host's transparent huge pages are off: " + mode.strip());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment advised = LazyRam.allocate(SIZE, arena, true, "a test segment");
            advised.set(ValueLayout.JAVA_BYTE, 0, (byte) 1);
            assertEquals("1", smapsField(advised.address(), "THPeligible"), "THP setting: " + mode.strip());
            if (mode.contains("[madvise]") && !LazyRam.HUGE_PAGES) {
                MemorySegment ram = LazyRam.allocate(SIZE, arena), image = LazyRam.allocateFilled(SIZE + 4096, arena);
                ram.set(ValueLayout.JAVA_BYTE, 0, (byte) 1);
                image.set(ValueLayout.JAVA_BYTE, 0, (byte) 1);
                image.set(ValueLayout.JAVA_BYTE, SIZE, (byte) 1);
                assertEquals("0", smapsField(ram.address(), "THPeligible"), "guest RAM keeps 4 KiB pages unless asked");
                assertEquals("1", smapsField(image.address(), "THPeligible"), "an image buffer is filled whole: huge pages");
                assertEquals(0, image.address() % LazyRam.HUGE_PAGE, "from a huge page boundary");
                assertEquals(0, image.get(ValueLayout.JAVA_LONG, SIZE - 8), "an image buffer starts zero");
                assertEquals(1, image.get(ValueLayout.JAVA_BYTE, SIZE), "its tail past the last whole huge page works");
            }
        }
    }

    /** A loader's advice (GuestMemory.adviseHugePages) covers only the whole 2 MiB pages inside its range. */
    @Test
    void adviceOnPartOfGuestRamCoversTheWholeHugePagesInsideTheRangeOnly() throws IOException {
        String mode = thpSetting();
        assumeTrue(mode.contains("[madvise]") && !LazyRam.HUGE_PAGES,
                "skipped: the host's THP setting is not 'madvise', so eligibility does not follow the advice: " + mode.strip());
        long mib = 1L << 20;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ram = LazyRam.allocate(SIZE, arena);
            assertEquals(0, ram.address() % LazyRam.HUGE_PAGE, "guest RAM is 2 MiB aligned");
            LazyRam.adviseHugePages(ram, 3 * mib, 10 * mib); // [3, 13) MiB: the huge pages at 4, 6, 8 and 10 MiB
            for (long at : new long[] {2 * mib, 3 * mib, 4 * mib, 11 * mib, 12 * mib, 13 * mib})
                ram.set(ValueLayout.JAVA_BYTE, at, (byte) 1);
            assertEquals("0", smapsField(ram.address() + 3 * mib, "THPeligible"), "a partial huge page stays 4 KiB");
            assertEquals("1", smapsField(ram.address() + 4 * mib, "THPeligible"));
            assertEquals("1", smapsField(ram.address() + 11 * mib, "THPeligible"));
            assertEquals("0", smapsField(ram.address() + 12 * mib, "THPeligible"), "a partial huge page stays 4 KiB");
            assertEquals(1, ram.get(ValueLayout.JAVA_BYTE, 11 * mib));
            assertEquals(0, ram.get(ValueLayout.JAVA_BYTE, 11 * mib + 1), "advice keeps the contents");
            assertThrows(IndexOutOfBoundsException.class, () -> LazyRam.adviseHugePages(ram, SIZE - mib, 2 * mib));
        }
    }

    /** The host's transparent-huge-page setting; the test is skipped where there is none (not Linux, or no THP). */
    private static String thpSetting() throws IOException {
        assumeTrue(linux(), "skipped: not a Linux host");
        Path setting = Path.of("/sys/kernel/mm/transparent_hugepage/enabled");
        assumeTrue(Files.isReadable(setting), "skipped: the host kernel has no transparent huge pages");
        return Files.readString(setting);
    }

    private static boolean linux() {
        return System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux");
    }

    /** A field of the /proc/self/smaps entry of the mapping that holds {@code address}. */
    private static String smapsField(long address, String field) throws IOException {
        List<String> lines = Files.readAllLines(Path.of("/proc/self/smaps"));
        boolean inside = false;
        for (String l : lines) {
            if (l.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
                String[] range = l.substring(0, l.indexOf(' ')).split("-");
                inside = Long.compareUnsigned(Long.parseUnsignedLong(range[0], 16), address) <= 0
                        && Long.compareUnsigned(address, Long.parseUnsignedLong(range[1], 16)) < 0;
            } else if (inside && l.startsWith(field + ":")) {
                return l.substring(field.length() + 1).strip();
            }
        }
        return fail("no " + field + " for 0x" + Long.toHexString(address) + " in /proc/self/smaps");
    }
}
