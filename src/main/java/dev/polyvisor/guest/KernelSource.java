package dev.polyvisor.guest;

/**
 * Which Debian kernel a guest is built around: a package name ({@code linux-image-cloud-amd64}, a
 * concrete {@code linux-image-6.12.117+deb13-cloud-amd64}, ...), an optional exact version (null: apt's
 * candidate) and the suite it comes from, fetched through that suite's {@link PrivateApt}. The same
 * notation as apt's: {@code NAME[=VERSION]}.
 */
public record KernelSource(String packageName, String version, String suite) {
    public static final String DEFAULT_SUITE = "bookworm";

    public KernelSource {
        if (packageName == null || !packageName.matches("[a-z0-9][a-z0-9+.-]+"))
            throw new IllegalArgumentException("not a Debian package name: '" + packageName + "'");
        if (version != null && !version.matches("[0-9A-Za-z.+~:-]+"))
            throw new IllegalArgumentException("not a Debian version: '" + version + "'");
        if (!PrivateApt.SUITES.contains(suite)) throw new IllegalArgumentException(PrivateApt.unknownSuite(suite));
    }

    /** The suite's cloud kernel metapackage at apt's candidate version. */
    public static KernelSource cloud(String suite) { return new KernelSource(DebianPackages.KERNEL_METAPACKAGE, null, suite); }

    /** {@code NAME[=VERSION]} from {@code suite} (null: {@value #DEFAULT_SUITE}). */
    public static KernelSource parse(String spec, String suite) {
        String s = spec == null ? DebianPackages.KERNEL_METAPACKAGE : spec.strip();
        int eq = s.indexOf('=');
        String name = eq < 0 ? s : s.substring(0, eq), version = eq < 0 ? null : s.substring(eq + 1);
        if (version != null && version.isEmpty()) throw new IllegalArgumentException("empty version in '" + spec + "'");
        return new KernelSource(name, version, suite == null ? DEFAULT_SUITE : suite);
    }

    /** apt's argument form, NAME or NAME=VERSION. */
    public String aptSpec() { return version == null ? packageName : packageName + "=" + version; }

    @Override
    public String toString() { return aptSpec() + " from " + suite; }
}
