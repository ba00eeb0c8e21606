package dev.polyvisor.guest;

import java.nio.file.Path;

/** A ready-to-boot guest: a bzImage, an uncompressed initramfs, and where they came from. */
public record GuestImage(Path kernel, Path initramfs, String kernelRelease, String kernelPackage,
                         String kernelVersion, String busyboxVersion) {}
