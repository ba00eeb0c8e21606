import java.io.IOException;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassHierarchyResolver;
import java.lang.classfile.ClassModel;
import java.lang.classfile.ClassTransform;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import java.util.zip.ZipOutputStream;

/**
 * Build step (pom.xml, package phase): rewrites the class files older than Java 8 (version 52) in the jars of a
 * directory (target/lib) as version 52 with stack maps, computed by the JDK's ClassFile API, and leaves everything
 * else byte for byte. Why: the JDK's AOT cache (the launcher's -XX:AOTCache, JEP 483) links classes ahead of time
 * and cannot hold "old" classes, which need the old type-inferring verifier; picocli is compiled for Java 5, so its
 * ~300 classes were loaded, verified and linked at every launch (about 0.1 s of the CPU benchmark's 0.6 s start-up,
 * session 9). A jar with nothing to rewrite is not touched, so the step is idempotent.
 *
 * <p>Usage: {@code java scripts/ModernClassFiles.java DIR}
 */
public final class ModernClassFiles {
    private static final int JAVA_8 = 52;

    public static void main(String[] args) throws IOException {
        if (args.length != 1) throw new IllegalArgumentException("usage: ModernClassFiles DIR");
        try (DirectoryStream<Path> jars = Files.newDirectoryStream(Path.of(args[0]), "*.jar")) {
            for (Path jar : jars) modernize(jar);
        }
    }

    private static void modernize(Path jar) throws IOException {
        if (!hasOldClasses(jar)) return;
        // Stack maps need the class hierarchy: the jar's own classes, then the JDK's.
        try (URLClassLoader loader = new URLClassLoader(new URL[] {jar.toUri().toURL()}, null)) {
            ClassFile cf = ClassFile.of(ClassFile.StackMapsOption.GENERATE_STACK_MAPS,
                    ClassFile.ClassHierarchyResolverOption.of(ClassHierarchyResolver.defaultResolver()
                            .orElse(ClassHierarchyResolver.ofResourceParsing(loader))));
            Path tmp = jar.resolveSibling(jar.getFileName() + ".tmp");
            int rewritten = 0;
            try (ZipInputStream in = new ZipInputStream(Files.newInputStream(jar));
                 ZipOutputStream out = new ZipOutputStream(Files.newOutputStream(tmp))) {
                for (ZipEntry e; (e = in.getNextEntry()) != null; ) {
                    byte[] bytes = in.readAllBytes();
                    if (e.getName().endsWith(".class")) {
                        ClassModel m = cf.parse(bytes);
                        if (m.majorVersion() < JAVA_8) {
                            // Re-emitting every code element makes the ClassFile API build the code attribute
                            // again, stack map table included; the version goes up at the class's end.
                            bytes = cf.transformClass(m, ClassTransform.transformingMethodBodies((code, el) -> code.with(el))
                                    .andThen(ClassTransform.endHandler(cb -> cb.withVersion(JAVA_8, 0))));
                            rewritten++;
                        }
                    }
                    ZipEntry copy = new ZipEntry(e.getName());
                    copy.setTime(e.getTime());
                    out.putNextEntry(copy);
                    out.write(bytes);
                    out.closeEntry();
                }
            }
            Files.move(tmp, jar, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            System.out.println("ModernClassFiles: " + jar.getFileName() + ": " + rewritten + " classes now version " + JAVA_8);
        }
    }

    private static boolean hasOldClasses(Path jar) throws IOException {
        try (ZipInputStream in = new ZipInputStream(Files.newInputStream(jar))) {
            for (ZipEntry e; (e = in.getNextEntry()) != null; ) {
                if (!e.getName().endsWith(".class") || e.getName().endsWith("module-info.class")) continue;
                byte[] head = in.readNBytes(8);
                if (head.length == 8 && ((head[6] & 0xFF) << 8 | (head[7] & 0xFF)) < JAVA_8) return true;
            }
        }
        return false;
    }
}
