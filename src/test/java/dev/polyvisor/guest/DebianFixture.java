package dev.polyvisor.guest;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The real default guest for tests tagged "debian": fetched through apt (or found in the cache)
 * once per JVM, then built. Only fetching may skip the test (no apt, no network and nothing
 * cached); a failure to build from packages we have is a test failure.
 */
public final class DebianFixture {
    private static GuestImage image;
    private static String skipReason;

    private DebianFixture() {}

    public static synchronized GuestImage defaultGuest() throws GuestImageException {
        if (image == null && skipReason == null) {
            DebPackage kernel, busybox;
            try {
                kernel = DebianPackages.fetch(DebianPackages.resolveKernelPackage());
                busybox = DebianPackages.fetch(DebianPackages.BUSYBOX);
            } catch (GuestImageException e) {
                skipReason = "Debian packages unavailable: " + e.getMessage();
                throw new org.opentest4j.TestAbortedException(skipReason);
            }
            image = GuestImages.build(kernel, busybox);
            System.err.println("debian fixture: " + image.kernelPackage() + " " + image.kernelVersion() + " (release "
                    + image.kernelRelease() + "), busybox-static " + image.busyboxVersion());
        }
        assumeTrue(skipReason == null, skipReason);
        return image;
    }
}
