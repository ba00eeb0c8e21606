package dev.polyvisor.guest;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Debian root filesystems as ext4 raw images, built with Debian's own tools and cached under
 * {@code <cache>/rootfs/<key>/} ({@link RootfsSpec#key()}): mmdebstrap(1) installs the
 * suite into a directory, its customize hooks copy in {@link RootfsLayout}'s files and the kernel's
 * modules and run the layout's chroot commands, and {@code mke2fs -t ext4 -d DIR} (mke2fs(8)) turns the
 * directory into a filesystem image without a loop mount. The directory is published by an atomic rename,
 * so a half-built image is never seen, and a second request for the same spec costs nothing. A new image
 * removes the older ones of its suite, kernel series and size that it supersedes ({@link CacheEntries}).
 *
 * <p>As root, mmdebstrap runs in root mode and the tree has the right owners for {@code mke2fs -d}. As
 * another user it runs in unshare mode (mmdebstrap(1), MODES: a user namespace mapping root to the user and
 * the other ids to the user's subordinate ids from /etc/subuid and /etc/subgid): the tree's owners are then
 * right only as seen from such a namespace, so mke2fs, and the removal of the tree, run in one too, through
 * {@code mmdebstrap --unshare-helper} (the same mapping). Device nodes are missing from such a tree, which
 * does not matter: the guest's systemd mounts devtmpfs on /dev.
 */
public final class RootfsImages {
    static final String IMAGE_FILE = "rootfs.img", INFO_FILE = "rootfs.properties", LOG_FILE = "build.log";
    static final String SSH_KEY = "id_ed25519";
    private static final long MMDEBSTRAP_TIMEOUT_S = 3600, TOOL_TIMEOUT_S = 600;
    private static final Pattern MODULES_PATH = Pattern.compile("(?:usr/)?lib/modules/([^/]+)/(.+)");

    private RootfsImages() {}

    /** A built image, the private key that reaches its root over ssh, and what it was built from. */
    public record Rootfs(Path image, Path sshKey, RootfsSpec spec, boolean fromCache) {}

    /** Directory of the cache that holds root filesystems and the ssh key pair. */
    static Path rootfsDir() { return GuestCache.subdirectory("rootfs"); }

    /**
     * The project's ssh key pair (ed25519, no passphrase) in {@code <cache>/rootfs/}, generated with
     * ssh-keygen(1) on first use; the public half goes into every image's root authorized_keys.
     */
    public static Path sshKey() throws GuestImageException {
        Path key = rootfsDir().resolve(SSH_KEY), pub = rootfsDir().resolve(SSH_KEY + ".pub");
        if (Files.isRegularFile(key) && Files.isRegularFile(pub)) return key;
        Path tmp = rootfsDir().resolve(".key-" + ProcessHandle.current().pid());
        try {
            Files.deleteIfExists(tmp);
            Files.deleteIfExists(Path.of(tmp + ".pub"));
            run(List.of("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "polyvisor-rootfs", "-f", tmp.toString()),
                    rootfsDir(), null, TOOL_TIMEOUT_S, "ssh-keygen (package openssh-client)");
            Files.move(Path.of(tmp + ".pub"), pub, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            Files.move(tmp, key, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            return key;
        } catch (IOException e) {
            throw new GuestImageException("cannot store the ssh key in " + rootfsDir() + ": " + e.getMessage(), e);
        }
    }

    static String publicKey(Path key) throws GuestImageException {
        try {
            return Files.readString(Path.of(key + ".pub"), StandardCharsets.UTF_8).strip();
        } catch (IOException e) {
            throw new GuestImageException("cannot read " + key + ".pub: " + e.getMessage(), e);
        }
    }

    static final String KERNEL_IMAGE_PREFIX = "linux-image-";

    private static Map<String, byte[]> modules(List<Path> kernelDebs) throws GuestImageException {
        Map<String, byte[]> modules = new java.util.LinkedHashMap<>();
        for (Path deb : kernelDebs) modules.putAll(DebExtractor.dataFiles(deb, p -> MODULES_PATH.matcher(p).matches()));
        return modules;
    }

    /** The kernel release whose modules the packages carry ({@code lib/modules/RELEASE/}); exactly one. */
    static String moduleRelease(Iterable<String> paths, String what) throws GuestImageException {
        String release = null;
        for (String p : paths) {
            Matcher m = MODULES_PATH.matcher(p);
            if (!m.matches()) continue;
            if (release != null && !release.equals(m.group(1)))
                throw new GuestImageException(what + ": modules of more than one kernel (" + release + ", " + m.group(1) + ")");
            release = m.group(1);
        }
        if (release == null) throw new GuestImageException(what + ": no lib/modules/RELEASE/ in the kernel packages");
        return release;
    }

    /**
     * The bookworm image with the modules of the kernel in {@code kernelDebs} (the linux-image package
     * {@code kernelPackage} at {@code kernelVersion}, and for split kernels the packages it depends on),
     * built on first use.
     */
    public static Rootfs build(String kernelPackage, String kernelVersion, List<Path> kernelDebs, long sizeBytes)
            throws GuestImageException {
        Path key = sshKey();
        String what = kernelDebs.stream().map(p -> p.getFileName().toString()).toList().toString();
        // Debian names a kernel's image package linux-image-RELEASE: the cache is looked up without
        // decompressing ~100 MB of modules; a build checks the name against the modules it copies.
        String release = kernelPackage.startsWith(KERNEL_IMAGE_PREFIX) ? kernelPackage.substring(KERNEL_IMAGE_PREFIX.length()) : null;
        Map<String, byte[]> modules = null;
        if (release == null) {
            modules = modules(kernelDebs);
            release = moduleRelease(modules.keySet(), what);
        }
        String mirror = env(PrivateApt.MIRROR_ENV, PrivateApt.DEFAULT_MIRROR), security = env(PrivateApt.SECURITY_MIRROR_ENV, PrivateApt.DEFAULT_SECURITY_MIRROR);
        RootfsSpec spec = new RootfsSpec(RootfsSpec.SUITE, RootfsSpec.bookwormSources(mirror, security), RootfsSpec.VARIANT,
                RootfsSpec.PACKAGES, kernelPackage, kernelVersion, release, sizeBytes, publicKey(key));
        Path dir = rootfsDir().resolve(spec.key());
        if (Files.isRegularFile(dir.resolve(IMAGE_FILE))) return new Rootfs(dir.resolve(IMAGE_FILE), key, spec, true);
        BuildMode mode = isRoot() ? BuildMode.ROOT : BuildMode.UNSHARE;
        if (modules == null) {
            modules = modules(kernelDebs);
            String found = moduleRelease(modules.keySet(), what);
            if (!found.equals(release)) throw new GuestImageException(what + ": the modules are for " + found + ", not " + release);
        }
        requireTool("mmdebstrap", "mmdebstrap");
        requireTool("mke2fs", "e2fsprogs");
        if (mode == BuildMode.UNSHARE) requireUserNamespace();
        Path tmp;
        try {
            tmp = Files.createTempDirectory(rootfsDir(), ".build-");
        } catch (IOException e) {
            throw new GuestImageException("cannot write to " + rootfsDir() + ": " + e.getMessage(), e);
        }
        try {
            Path stage = tmp.resolve("stage"), stageTar = tmp.resolve("stage.tar"), tree = tmp.resolve("rootfs.tar");
            Path work = tmp.resolve("ns"), img = tmp.resolve(IMAGE_FILE);
            Path log = rootfsDir().resolve(spec.key() + ".log"); // outside tmp: kept when the build fails
            Files.deleteIfExists(log);
            stage(stage, RootfsLayout.files(spec.sshPublicKey()), release, modules);
            modules.clear();
            tarAsRoot(stage, stageTar);
            DebianPackages.deleteTree(stage);
            long t0 = System.nanoTime();
            System.err.println("polyvisor: building a Debian " + spec.suite() + " root filesystem with mmdebstrap in "
                    + mode.mmdebstrapMode + " mode (log: " + log + ")");
            run(mmdebstrapCommand(spec, mode, stageTar, tree), tmp, log, MMDEBSTRAP_TIMEOUT_S, "mmdebstrap");
            System.err.printf(java.util.Locale.ROOT, "polyvisor: mmdebstrap done in %.0f s; writing the ext4 image%n", (System.nanoTime() - t0) / 1e9);
            Files.delete(stageTar);
            // The namespace's root is another uid than the user's in unshare mode: it may pass through tmp
            // (not list it), read the tarball and write the image, in a work directory open to it.
            Files.setPosixFilePermissions(tmp, permissions(0711));
            Files.createDirectory(work);
            Files.setPosixFilePermissions(work, permissions(0777));
            Path workImg = work.resolve(IMAGE_FILE);
            try (RandomAccessFile f = new RandomAccessFile(workImg.toFile(), "rw")) {
                f.setLength(spec.sizeBytes()); // sparse: mke2fs writes only metadata and the files
            }
            Files.setPosixFilePermissions(workImg, permissions(0666));
            run(mode.asOwner(mke2fsCommand(work, tree)), tmp, log, TOOL_TIMEOUT_S, "mke2fs");
            Files.setPosixFilePermissions(workImg, permissions(0644));
            Files.move(workImg, img);
            Files.delete(work);
            Files.delete(tree);
            Files.move(log, tmp.resolve(LOG_FILE)); // published with the image
            Files.writeString(tmp.resolve(INFO_FILE), String.join("\n", "suite=" + spec.suite(), "release=" + release,
                    "kernelPackage=" + kernelPackage, "kernelVersion=" + kernelVersion, "size=" + sizeBytes,
                    "packages=" + String.join(",", spec.packages()), ""), StandardCharsets.UTF_8);
            Files.setPosixFilePermissions(tmp, EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE,
                    PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.GROUP_READ, PosixFilePermission.GROUP_EXECUTE,
                    PosixFilePermission.OTHERS_READ, PosixFilePermission.OTHERS_EXECUTE));
            try {
                Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException raced) {
                if (!Files.isRegularFile(dir.resolve(IMAGE_FILE))) throw raced; // another process published it first
            }
            System.err.printf(java.util.Locale.ROOT, "polyvisor: root filesystem ready in %s (%.0f s)%n", dir, (System.nanoTime() - t0) / 1e9);
        } catch (IOException e) {
            throw new GuestImageException("cannot build the root filesystem in " + tmp + ": " + e.getMessage(), e);
        } finally {
            removeTree(mode, tmp.resolve("ns").resolve("tree"), tmp);
            DebianPackages.deleteTree(tmp);
        }
        CacheEntries.prune(rootfsDir(), dir, INFO_FILE, RootfsImages::line, "root filesystem", System.err);
        return new Rootfs(dir.resolve(IMAGE_FILE), key, spec, false);
    }

    /**
     * Root filesystems of one suite, kernel series and size supersede each other ({@link CacheEntries}):
     * a new kernel ABI, {@link RootfsSpec#REVISION}, layout or package list makes the older ones dead weight.
     */
    static String line(Map<String, String> info) {
        String suite = info.get("suite"), release = info.get("release"), size = info.get("size");
        return suite == null || release == null || size == null ? null : suite + " " + CacheEntries.kernelSeries(release) + " " + size;
    }

    /**
     * How mmdebstrap builds the tree: {@code mmdebstrapMode} is its --mode; {@link #asOwner} runs a command
     * where the tree's owners are the ones its files should have.
     */
    enum BuildMode {
        ROOT("root"), UNSHARE("unshare");

        final String mmdebstrapMode;

        BuildMode(String mmdebstrapMode) { this.mmdebstrapMode = mmdebstrapMode; }

        List<String> asOwner(List<String> command) {
            if (this == ROOT) return command;
            List<String> c = new ArrayList<>(List.of("mmdebstrap", "--unshare-helper"));
            c.addAll(command);
            return c;
        }
    }

    /** Removes the tree; an unshare-mode tree belongs to subordinate ids, so only its namespace can. */
    private static void removeTree(BuildMode mode, Path tree, Path dir) {
        if (!Files.exists(tree, java.nio.file.LinkOption.NOFOLLOW_LINKS)) return;
        if (mode == BuildMode.UNSHARE) {
            try {
                run(mode.asOwner(List.of("rm", "-rf", "--one-file-system", tree.toString())), dir, null, TOOL_TIMEOUT_S, "rm");
            } catch (GuestImageException e) {
                System.err.println("polyvisor: could not remove " + tree + " (" + e.getMessage() + ")");
            }
        }
        DebianPackages.deleteTree(tree);
    }

    /**
     * mmdebstrap's command line: {@code mode}, the tree packed into the tarball {@code out} (pax, numeric owners:
     * mmdebstrap(1), FORMATS); the customize hooks unpack the staged files over the tree (the special hook
     * tar-in, whose tarball mmdebstrap reads outside the chroot and unpacks inside it keeping the tarball's
     * owners and modes: root's, see {@link #tarAsRoot}) and then run the layout's chroot commands.
     */
    static List<String> mmdebstrapCommand(RootfsSpec spec, BuildMode mode, Path stageTar, Path out) {
        List<String> c = new ArrayList<>(List.of("mmdebstrap", "--mode=" + mode.mmdebstrapMode, "--format=tar",
                "--variant=" + spec.variant(), "--include=" + String.join(",", spec.packages()), "--components=main"));
        c.add("--customize-hook=tar-in " + stageTar + " /");
        for (List<String> cmd : RootfsLayout.chrootCommands(spec.kernelRelease()))
            c.add("--customize-hook=chroot \"$1\" " + String.join(" ", cmd.stream().map(RootfsImages::shellQuote).toList()));
        c.add(spec.suite());
        c.add(out.toString());
        c.addAll(spec.sources());
        return c;
    }

    /**
     * The tree as mke2fs(8) must see it: unpacked from mmdebstrap's tarball into {@code work/tree} with the
     * tarball's numeric owners (in unshare mode inside the namespace, where they are the right ones), then
     * {@code mke2fs -t ext4 -d} into {@code work/rootfs.img} with the label {@code run} looks for (-F: the
     * target is a file), then the tree is removed. /dev is left out: device nodes cannot be made in a user
     * namespace, and the guest's systemd mounts devtmpfs there.
     */
    static List<String> mke2fsCommand(Path work, Path tarball) {
        String script = "set -e; t=\"$1/tree\"; trap 'rm -rf --one-file-system \"$t\"' EXIT; mkdir \"$t\"; "
                + "tar -C \"$t\" --numeric-owner --same-permissions --xattrs --xattrs-include='*' --exclude='./dev/*' --exclude='dev/*' -xf \"$2\"; "
                + "mke2fs -q -F -t ext4 -L " + RootfsSpec.LABEL + " -d \"$t\" \"$1/" + IMAGE_FILE + "\"";
        return List.of("sh", "-c", script, "sh", work.toString(), tarball.toString());
    }

    /**
     * Packs {@code dir} into a tarball whose entries belong to root (uid and gid 0) with the files' modes,
     * so that the tree gets them whichever user built the stage (commons-compress, POSIX ustar/pax).
     */
    static void tarAsRoot(Path dir, Path tar) throws IOException {
        try (var out = new org.apache.commons.compress.archivers.tar.TarArchiveOutputStream(
                new java.io.BufferedOutputStream(Files.newOutputStream(tar)));
             var walk = Files.walk(dir)) {
            out.setLongFileMode(org.apache.commons.compress.archivers.tar.TarArchiveOutputStream.LONGFILE_POSIX);
            for (Path p : walk.sorted().toList()) {
                if (p.equals(dir)) continue;
                String name = dir.relativize(p).toString().replace('\\', '/') + (Files.isDirectory(p) ? "/" : "");
                var e = new org.apache.commons.compress.archivers.tar.TarArchiveEntry(name);
                e.setIds(0, 0);
                e.setUserName("root");
                e.setGroupName("root");
                e.setMode((Files.isDirectory(p) ? 0040000 : 0100000) | mode(Files.getPosixFilePermissions(p)));
                if (!Files.isDirectory(p)) e.setSize(Files.size(p));
                out.putArchiveEntry(e);
                if (!Files.isDirectory(p)) Files.copy(p, out);
                out.closeArchiveEntry();
            }
        }
    }

    static int mode(Set<PosixFilePermission> perms) {
        int m = 0;
        PosixFilePermission[] bits = PosixFilePermission.values();
        for (int i = 0; i < 9; i++) if (perms.contains(bits[i])) m |= 0400 >> i;
        return m;
    }

    static String shellQuote(String s) {
        if (s.matches("[A-Za-z0-9_./=:@+-]+")) return s;
        return "'" + s.replace("'", "'\\''") + "'";
    }

    /** Writes the layout's files and the kernel's modules (under usr/lib/modules/RELEASE/) below {@code stage}. */
    static void stage(Path stage, List<RootfsLayout.Entry> files, String release, Map<String, byte[]> modules) throws IOException {
        for (RootfsLayout.Entry e : files) {
            Path p = stage.resolve(e.path());
            Files.createDirectories(p.getParent());
            Files.write(p, e.bytes());
            Files.setPosixFilePermissions(p, permissions(e.mode()));
        }
        Path base = stage.resolve("usr/lib/modules").resolve(release);
        for (var m : modules.entrySet()) {
            Matcher x = MODULES_PATH.matcher(m.getKey());
            if (!x.matches() || !x.group(1).equals(release)) continue;
            Path p = base.resolve(x.group(2)).normalize();
            if (!p.startsWith(base)) continue; // a path with .. never leaves the module tree
            Files.createDirectories(p.getParent());
            Files.write(p, m.getValue());
            Files.setPosixFilePermissions(p, permissions(0644));
        }
        // cp -a gives existing directories of the tree (etc, usr, root) the staged directories' modes:
        // those of a Debian system, whatever the umask (root's home and .ssh 0700 as sshd wants them).
        try (var dirs = Files.walk(stage)) {
            for (Path d : dirs.filter(Files::isDirectory).toList()) {
                String rel = stage.relativize(d).toString();
                Files.setPosixFilePermissions(d, permissions(rel.equals("root") || rel.equals("root/.ssh") ? 0700 : 0755));
            }
        }
    }

    static Set<PosixFilePermission> permissions(int mode) {
        Set<PosixFilePermission> s = EnumSet.noneOf(PosixFilePermission.class);
        PosixFilePermission[] bits = PosixFilePermission.values(); // OWNER_READ .. OTHERS_EXECUTE = 0400 .. 0001
        for (int i = 0; i < 9; i++) if ((mode & (0400 >> i)) != 0) s.add(bits[i]);
        return s;
    }

    /**
     * True when {@code disk} holds an ext4 (or ext2/3) filesystem labelled {@link RootfsSpec#LABEL}: the
     * superblock at byte 1024 has the magic 0xEF53 at offset 0x38 and the 16-byte volume name at 0x78
     * (Linux fs/ext4/ext4.h, struct ext4_super_block).
     */
    public static boolean isRootfs(Path disk) {
        byte[] sb = new byte[0x88];
        try (RandomAccessFile f = new RandomAccessFile(disk.toFile(), "r")) {
            if (f.length() < 2048) return false;
            f.seek(1024);
            f.readFully(sb);
        } catch (IOException e) {
            return false;
        }
        if ((sb[0x38] & 0xFF) != 0x53 || (sb[0x39] & 0xFF) != 0xEF) return false;
        int n = 0;
        while (n < 16 && sb[0x78 + n] != 0) n++;
        return new String(sb, 0x78, n, StandardCharsets.ISO_8859_1).equals(RootfsSpec.LABEL);
    }

    /**
     * Copies the cached image to {@code out}, keeping it sparse (cp --sparse=always), so the cache's copy stays pristine.
     * cp writes {@code out} in place, so an {@code out} that a running VM has as its disk would change under the guest's
     * file system: the copy takes the lock a VM takes on its disks ({@code vmm.pc.VirtioSlots}, exclusive) first, and
     * refuses when a VM holds it; holding it while cp writes keeps a VM from booting the half-written image.
     */
    public static void copy(Path image, Path out) throws GuestImageException {
        Path parent = out.toAbsolutePath().getParent();
        if (parent != null && !Files.isDirectory(parent)) throw new GuestImageException("--out " + out + ": no such directory " + parent);
        try (java.nio.channels.FileChannel f = java.nio.channels.FileChannel.open(out, java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.WRITE)) {
            java.nio.channels.FileLock lock;
            try {
                lock = f.tryLock();
            } catch (java.nio.channels.OverlappingFileLockException e) {
                lock = null;
            }
            if (lock == null)
                throw new GuestImageException("--out " + out + ": the image is in use: a VM holds its lock (stop it, or give another file)");
            run(List.of("cp", "--sparse=always", image.toString(), out.toString()), parent, null, TOOL_TIMEOUT_S, "cp");
        } catch (IOException e) {
            throw new GuestImageException("--out " + out + ": " + e.getMessage(), e);
        }
    }

    /** Unshare mode's needs, tried the way it will use them, so that a missing one is one clear line up front. */
    private static void requireUserNamespace() throws GuestImageException {
        try {
            run(BuildMode.UNSHARE.asOwner(List.of("true")), rootfsDir(), null, TOOL_TIMEOUT_S, "mmdebstrap --unshare-helper");
        } catch (GuestImageException e) {
            String user = System.getProperty("user.name");
            throw new GuestImageException(UNSHARE_NEEDS + ": unprivileged user namespaces, and entries for " + user
                    + " in /etc/subuid and /etc/subgid with newuidmap/newgidmap (Debian package uidmap); " + e.getMessage()
                    + " (or run 'sudo ./polyvisor image --rootfs' once: the image is cached)", e);
        }
    }

    /** The start of the message when a non-root build cannot use a user namespace (tests skip on it). */
    public static final String UNSHARE_NEEDS = "building a root filesystem without root needs mmdebstrap's unshare mode";

    private static boolean isRoot() {
        try {
            return Integer.valueOf(0).equals(Files.getAttribute(Path.of("/proc/self"), "unix:uid"));
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        }
    }

    private static void requireTool(String tool, String pkg) throws GuestImageException {
        for (String d : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":"))
            if (!d.isEmpty() && Files.isExecutable(Path.of(d, tool))) return;
        for (String d : List.of("/usr/sbin", "/sbin", "/usr/bin")) if (Files.isExecutable(Path.of(d, tool))) return;
        throw new GuestImageException(tool + " is not installed (Debian package " + pkg + "; scripts/env.sh installs it)");
    }

    private static String env(String name, String dflt) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? dflt : v.strip();
    }

    /** Runs a tool; output to {@code log} (or kept in memory); a failure is one line with the tool's last words. */
    private static void run(List<String> cmd, Path dir, Path log, long timeoutS, String what) throws GuestImageException {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true);
        pb.environment().put("LC_ALL", "C");
        pb.environment().put("PATH", pb.environment().getOrDefault("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin");
        if (log != null) pb.redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new GuestImageException("cannot run " + what + ": " + e.getMessage(), e);
        }
        String out = "";
        try {
            if (log == null) out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(timeoutS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new GuestImageException(what + " did not finish in " + timeoutS + " s");
            }
            if (log != null) out = Files.readString(log, StandardCharsets.UTF_8);
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new GuestImageException(what + " was interrupted");
        } catch (IOException e) {
            throw new GuestImageException("cannot read " + what + "'s output: " + e.getMessage(), e);
        }
        if (p.exitValue() != 0) {
            List<String> lines = out.lines().filter(l -> !l.isBlank()).toList();
            String why = lines.stream().filter(l -> l.startsWith("E: ")).reduce((a, b) -> b).orElse(lines.isEmpty() ? "" : lines.getLast());
            throw new GuestImageException(what + " failed (exit status " + p.exitValue() + ")" + (why.isEmpty() ? "" : ": " + why.strip()));
        }
    }
}
