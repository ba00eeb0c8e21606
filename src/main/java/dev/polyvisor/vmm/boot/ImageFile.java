package dev.polyvisor.vmm.boot;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Reads a boot image into memory with one-line errors for the usual file problems. */
public final class ImageFile {
    /** Images larger than this are refused rather than exhausting the heap. */
    public static final long MAX_SIZE = 1L << 30;

    private ImageFile() {}

    public static byte[] read(Path p, String what) throws LoadException {
        if (p == null) throw new LoadException("no " + what + " given");
        try {
            if (!Files.exists(p)) throw new LoadException(what + " " + p + ": no such file");
            if (Files.isDirectory(p)) throw new LoadException(what + " " + p + ": is a directory");
            long size = Files.size(p);
            if (size > MAX_SIZE) throw new LoadException(what + " " + p + ": too large (" + size + " bytes)");
            return Files.readAllBytes(p);
        } catch (NoSuchFileException e) {
            throw new LoadException(what + " " + p + ": no such file");
        } catch (IOException e) {
            throw new LoadException(what + " " + p + ": cannot read: " + e.getMessage());
        }
    }
}
