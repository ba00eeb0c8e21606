package dev.polyvisor.vmm;

import dev.polyvisor.vmm.VmConfig.BootKind;
import dev.polyvisor.vmm.VmConfig.FlatEntry;
import dev.polyvisor.vmm.VmConfig.FlatMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** Random bytes as a guest: whatever they do, the VM ends with a status and a one-line message, never a Java exception. */
class GarbageGuestTest {
    @TempDir Path dir;

    @Test
    void randomCodeInEveryModeEndsCleanly() throws Exception {
        FlatMode[] modes = FlatMode.values();
        for (int seed = 0; seed < 12; seed++) {
            byte[] code = new byte[4096];
            new Random(seed).nextBytes(code);
            FlatMode mode = modes[seed % modes.length];
            long addr = mode == FlatMode.REAL ? 0x8000 : 0x100000;
            Path p = Files.write(dir.resolve("garbage" + seed + ".bin"), code);
            VmConfig cfg = VmConfig.of(p, BootKind.FLAT).withMemory(4).withFlat(new FlatEntry(addr, mode))
                    .withTimeout(Duration.ofMillis(500));
            try (Vm vm = new Vm(cfg, new ByteArrayOutputStream())) {
                Outcome o = vm.run();
                assertNotNull(o.kind(), "seed " + seed);
                assertFalse(o.message().contains("\n"), o.message());
                if (o.kind() != Outcome.Kind.DEBUG_EXIT && o.kind() != Outcome.Kind.POWEROFF)
                    assertFalse(o.message().isEmpty(), "seed " + seed + " ended " + o.kind() + " without a message");
                assertNotEquals(Outcome.Kind.ERROR, o.kind(), "seed " + seed + " (" + mode + "): " + o.message());
            }
        }
    }
}
