package dev.polyvisor.kernel;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * A kernel's symbols at their link-time addresses (what System.map and kallsyms list with KASLR
 * off; add {@link KernelAddresses#virtualSlide()} for where they are at run time): name to address,
 * and address to the symbol at or below it.
 *
 * <p>Sources: the kallsyms tables inside the vmlinux ({@link #fromKallsyms}; Debian's stripped
 * image has no .symtab and its package ships a placeholder System.map, so this is the one that
 * works for the default guest), an ELF {@code .symtab} ({@link #fromElf}), or the text of a
 * System.map or /proc/kallsyms ({@link #fromSystemMap}).
 */
public final class KernelSymbols {
    /** One symbol; {@code type} is nm's letter (T/t text, D/d data, R/r read-only, B/b bss, A absolute, W weak, ...). */
    public record Symbol(long address, char type, String name) {
        public boolean global() { return Character.isUpperCase(type); }

        public boolean text() { return type == 'T' || type == 't' || type == 'W' || type == 'w'; }

        /** System.map's format: "ffffffff81000000 T _text". */
        @Override public String toString() { return String.format("%016x %c %s", address, type, name); }
    }

    /** A symbol and how far past its start an address is. */
    public record Hit(Symbol symbol, long offset) {
        @Override public String toString() { return offset == 0 ? symbol.name() : symbol.name() + String.format("+0x%x", offset); }
    }

    /** How far past the nearest symbol an address may be and still be named after it. */
    public static final long MAX_OFFSET = 1 << 20;

    private final Symbol[] byAddress;
    private final Map<String, Symbol> byName = new HashMap<>();

    private KernelSymbols(Collection<Symbol> symbols) {
        List<Symbol> sorted = new ArrayList<>(symbols);
        // Among symbols at one address, prefer a global one, then text, then the source's own order (the sort is stable).
        sorted.sort(Comparator.comparing(Symbol::address, Long::compareUnsigned)
                .thenComparing(s -> !s.global()).thenComparing(s -> !s.text()));
        this.byAddress = sorted.toArray(Symbol[]::new);
        for (Symbol s : sorted) byName.merge(s.name(), s, (a, b) -> a.global() || !b.global() ? a : b);
    }

    public static KernelSymbols of(Collection<Symbol> symbols) { return new KernelSymbols(symbols); }

    /** The kallsyms tables in the image's {@code .rodata}. */
    public static KernelSymbols fromKallsyms(Elf64 elf) throws KernelFormatException {
        return new KernelSymbols(Kallsyms.read(elf, elf.requireSection(".rodata")).symbols());
    }

    /** The image's {@code .symtab}: functions and objects, section symbols and file names left out. */
    public static KernelSymbols fromElf(Elf64 elf) throws KernelFormatException {
        List<Symbol> out = new ArrayList<>();
        for (Elf64.Symbol s : elf.symbols()) {
            if (s.name().isEmpty() || s.shndx() == 0 || s.type() == 3 /* STT_SECTION */ || s.type() == 4 /* STT_FILE */) continue;
            boolean text = s.shndx() < elf.sections().size() && s.shndx() != 0xFFF1
                    && (elf.sections().get(s.shndx()).flags() & Elf64.SHF_EXECINSTR) != 0;
            char t = s.shndx() == 0xFFF1 /* SHN_ABS */ ? 'a' : text ? 't' : 'd';
            out.add(new Symbol(s.value(), s.bind() == Elf64.Symbol.STB_LOCAL ? t : Character.toUpperCase(t), s.name()));
        }
        return new KernelSymbols(out);
    }

    /**
     * Parses System.map or /proc/kallsyms text: "address type name" per line ({@code [module]} after
     * the name in /proc/kallsyms; module symbols are kept like the others). Debian's linux-image packages
     * ship a one-line placeholder System.map ("The real System.map is in the linux-image-&lt;version&gt;-dbg
     * package"), which is refused with that explanation.
     */
    public static KernelSymbols fromSystemMap(String text) throws KernelFormatException {
        List<Symbol> out = new ArrayList<>();
        int lineNo = 0;
        for (String line : text.split("\n")) {
            lineNo++;
            String l = line.strip();
            if (l.isEmpty()) continue;
            if (l.contains("The real System.map is in"))
                throw new KernelFormatException("this System.map is Debian's placeholder (\"" + l.substring(l.indexOf("The real")) + "\"); read the symbols from the image's kallsyms instead");
            String[] f = l.split("\\s+");
            if (f.length < 3 || f[1].length() != 1 || (f.length > 3 && !(f.length == 4 && f[3].startsWith("["))))
                throw KernelFormatException.of("System.map line %d is not \"address type name\": %s", lineNo, l.length() > 80 ? l.substring(0, 80) + "..." : l);
            long addr;
            try {
                addr = Long.parseUnsignedLong(f[0], 16);
            } catch (NumberFormatException e) {
                throw KernelFormatException.of("System.map line %d: bad address %s", lineNo, f[0]);
            }
            out.add(new Symbol(addr, f[1].charAt(0), f[2]));
        }
        if (out.isEmpty()) throw new KernelFormatException("System.map has no symbols");
        return new KernelSymbols(out);
    }

    public int size() { return byAddress.length; }

    public List<Symbol> all() { return List.of(byAddress); }

    public Optional<Symbol> symbol(String name) { return Optional.ofNullable(byName.get(name)); }

    public OptionalLong address(String name) {
        Symbol s = byName.get(name);
        return s == null ? OptionalLong.empty() : OptionalLong.of(s.address());
    }

    public long require(String name) {
        Symbol s = byName.get(name);
        if (s == null) throw new IllegalArgumentException("the kernel has no symbol " + name);
        return s.address();
    }

    /** The symbol at {@code address}, or the closest one below it if it is at most {@link #MAX_OFFSET} away. */
    public Optional<Hit> nearest(long address) {
        int lo = 0, hi = byAddress.length - 1, best = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (Long.compareUnsigned(byAddress[mid].address(), address) <= 0) { best = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        if (best < 0) return Optional.empty();
        long at = byAddress[best].address();
        while (best > 0 && byAddress[best - 1].address() == at) best--; // the preferred one of several at this address
        long off = address - at;
        return Long.compareUnsigned(off, MAX_OFFSET) > 0 ? Optional.empty() : Optional.of(new Hit(byAddress[best], off));
    }

    /** "name" when a symbol starts at {@code address}, "name+0x10" inside one, else the address in hex. */
    public String describe(long address) {
        return nearest(address).map(Hit::toString).orElseGet(() -> String.format("0x%x", address));
    }
}
