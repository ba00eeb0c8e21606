package dev.polyvisor.guest;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.commons.compress.archivers.cpio.CpioArchiveEntry;
import org.apache.commons.compress.archivers.cpio.CpioArchiveInputStream;
import org.apache.commons.compress.archivers.cpio.CpioConstants;

/** Reads a newc archive back with an independent implementation (commons-compress). */
final class CpioReader {
    record Entry(CpioArchiveEntry header, byte[] data) {}

    private CpioReader() {}

    static Map<String, Entry> read(byte[] archive) throws IOException {
        Map<String, Entry> out = new LinkedHashMap<>();
        try (CpioArchiveInputStream in = new CpioArchiveInputStream(new ByteArrayInputStream(archive))) {
            CpioArchiveEntry e;
            while ((e = in.getNextEntry()) != null) {
                if (e.getFormat() != CpioConstants.FORMAT_NEW) throw new IOException("not newc: " + e.getName());
                out.put(e.getName(), new Entry(e, in.readAllBytes()));
            }
        }
        return out;
    }
}
