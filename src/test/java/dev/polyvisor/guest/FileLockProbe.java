package dev.polyvisor.guest;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assumptions.abort;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * For tests of disk-image locking (vmm.pc.VirtioSlots, RootfsImages.copy): skips, saying so, where the host's file
 * system takes no POSIX record locks (tmpfs, ext4, xfs and btrfs do; some network and FUSE file systems answer ENOLCK).
 */
public final class FileLockProbe {
    private FileLockProbe() {}

    public static void assumeLocks(Path dir) throws IOException {
        Path probe = Files.write(dir.resolve("lock-probe"), new byte[1]);
        try (FileChannel f = FileChannel.open(probe, StandardOpenOption.WRITE); var lock = f.tryLock()) {
            assumeTrue(lock != null, "another process holds " + probe);
        } catch (IOException e) {
            abort("this file system takes no POSIX locks (" + e.getMessage() + "): " + dir);
        }
    }
}
