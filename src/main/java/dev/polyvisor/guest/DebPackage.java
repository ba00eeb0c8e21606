package dev.polyvisor.guest;

import java.nio.file.Path;
import java.util.Map;

/** A Debian binary package file on disk, with the name and version from its control file. */
public record DebPackage(String name, String version, Path file) {
    /** A user-given .deb: its identity comes from its own control file, not its file name. */
    public static DebPackage of(Path deb) throws GuestImageException {
        Map<String, String> control = DebExtractor.control(deb);
        String name = control.get("Package"), version = control.get("Version");
        if (name == null || version == null) throw new GuestImageException(deb + ": control file lacks Package or Version");
        return new DebPackage(name, version, deb.toAbsolutePath());
    }
}
