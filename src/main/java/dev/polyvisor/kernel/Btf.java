package dev.polyvisor.kernel;

import dev.polyvisor.kernel.BtfType.Array;
import dev.polyvisor.kernel.BtfType.Composite;
import dev.polyvisor.kernel.BtfType.Composite.Member;
import dev.polyvisor.kernel.BtfType.DataSec;
import dev.polyvisor.kernel.BtfType.DeclTag;
import dev.polyvisor.kernel.BtfType.EnumType;
import dev.polyvisor.kernel.BtfType.FloatType;
import dev.polyvisor.kernel.BtfType.Func;
import dev.polyvisor.kernel.BtfType.FuncProto;
import dev.polyvisor.kernel.BtfType.Fwd;
import dev.polyvisor.kernel.BtfType.IntType;
import dev.polyvisor.kernel.BtfType.Ptr;
import dev.polyvisor.kernel.BtfType.Qualifier;
import dev.polyvisor.kernel.BtfType.Typedef;
import dev.polyvisor.kernel.BtfType.Var;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static dev.polyvisor.kernel.BtfType.*;

/**
 * A parsed BTF blob: the {@code .BTF} section of a vmlinux (CONFIG_DEBUG_INFO_BTF), or any
 * self-contained ("base") BTF. Format: include/uapi/linux/btf.h and Documentation/bpf/btf.rst — a
 * {@code struct btf_header} (magic 0xEB9F, version 1, hdr_len, then type and string sections at
 * offsets relative to the header's end), a type section of {@code struct btf_type} records each
 * followed by its kind's data, and a string section that starts with the empty string.
 *
 * <p>Everything is checked when the blob is parsed: the header, every record against the type
 * section's end, every name against the string section, every referenced type id, and the absence
 * of cycles among the edges the accessors follow without a bound (typedef, qualifier, array element,
 * by-value struct/union member, variable). So the accessors, which throw unchecked
 * {@link IllegalArgumentException}s only for names or paths the caller got wrong, never loop.
 */
public final class Btf {
    public static final int MAGIC = 0xEB9F, VERSION = 1, HEADER_SIZE = 24;
    /** kernel/bpf/btf.c: BTF_MAX_TYPE and BTF_MAX_NAME_OFFSET. */
    static final int MAX_TYPES = 0x000F_FFFF, MAX_NAME_OFFSET = 0x00FF_FFFF;
    static final int BTF_TYPE_SIZE = 12;

    private final BtfType[] types;
    private final Map<String, List<Integer>> byName = new HashMap<>();

    private Btf(BtfType[] types) {
        this.types = types;
        for (BtfType t : types) if (!(t instanceof BtfType.Void) && !t.name().isEmpty() && !(t instanceof Qualifier))
            byName.computeIfAbsent(t.name(), k -> new ArrayList<>(1)).add(t.id());
    }

    public static Btf parse(byte[] blob) throws KernelFormatException { return parse(new Bytes(blob, "BTF")); }

    static Btf parse(Bytes b) throws KernelFormatException {
        if (b.length < HEADER_SIZE) throw KernelFormatException.of("BTF truncated: %d bytes, the header alone is %d", b.length, HEADER_SIZE);
        int magic = b.u16(0);
        if (magic != MAGIC) {
            if (magic == 0x9FEB) throw new KernelFormatException("BTF is big-endian (magic 0x9FEB); only little-endian BTF is read");
            throw KernelFormatException.of("not BTF: magic 0x%04x, expected 0xEB9F", magic);
        }
        if (b.u8(2) != VERSION) throw KernelFormatException.of("BTF version %d is not supported (only 1)", b.u8(2));
        long hdrLen = b.u32(4), typeOff = b.u32(8), typeLen = b.u32(12), strOff = b.u32(16), strLen = b.u32(20);
        if (hdrLen < HEADER_SIZE || hdrLen > b.length) throw KernelFormatException.of("corrupt BTF: hdr_len %d (the blob has %d bytes)", hdrLen, b.length);
        if (typeOff % 4 != 0) throw KernelFormatException.of("corrupt BTF: type section offset %d is not 4-byte aligned", typeOff);
        if (typeLen % 4 != 0) throw KernelFormatException.of("corrupt BTF: type section length %d is not a multiple of 4", typeLen);
        long end = b.length - hdrLen;
        if (typeOff + typeLen > end) throw KernelFormatException.of("BTF truncated: type section 0x%x+0x%x runs past the 0x%x bytes after the header", typeOff, typeLen, end);
        if (strOff + strLen > end) throw KernelFormatException.of("BTF truncated: string section 0x%x+0x%x runs past the 0x%x bytes after the header", strOff, strLen, end);
        if (typeOff < strOff + strLen && strOff < typeOff + typeLen) throw new KernelFormatException("corrupt BTF: the type and string sections overlap");
        if (strLen == 0 || strLen > MAX_NAME_OFFSET + 1L) throw KernelFormatException.of("corrupt BTF: string section length %d", strLen);
        Bytes typeSec = b.slice(hdrLen + typeOff, typeLen, "BTF type section"), strSec = b.slice(hdrLen + strOff, strLen, "BTF string section");
        if (strSec.u8(0) != 0) throw new KernelFormatException("corrupt BTF: the string section does not start with the empty string");
        if (strSec.u8(strLen - 1) != 0) throw new KernelFormatException("corrupt BTF: the string section's last string is not NUL-terminated");

        Strings strings = new Strings(strSec);
        List<BtfType> out = new ArrayList<>();
        out.add(new BtfType.Void());
        long at = 0;
        while (at < typeLen) {
            int id = out.size();
            if (id > MAX_TYPES) throw KernelFormatException.of("corrupt BTF: more than %d types", MAX_TYPES);
            if (at + BTF_TYPE_SIZE > typeLen) throw KernelFormatException.of("BTF truncated: type %d at 0x%x has no room for its 12-byte header", id, at);
            long nameOff = typeSec.u32(at);
            int info = typeSec.s32(at + 4);
            long sizeOrType = typeSec.u32(at + 8);
            int vlen = info & 0xFFFF, kind = (info >>> 24) & 0x1F;
            boolean kflag = info < 0;
            String name = strings.at(nameOff, id);
            long data = at + BTF_TYPE_SIZE;
            long dataLen = switch (kind) {
                case KIND_INT, KIND_VAR, KIND_DECL_TAG -> 4;
                case KIND_ARRAY -> 12;
                case KIND_STRUCT, KIND_UNION, KIND_ENUM64, KIND_DATASEC -> 12L * vlen;
                case KIND_ENUM, KIND_FUNC_PROTO -> 8L * vlen;
                case KIND_PTR, KIND_FWD, KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_FUNC, KIND_FLOAT, KIND_TYPE_TAG -> 0;
                default -> throw KernelFormatException.of("corrupt BTF: type %d at 0x%x has unknown kind %d", id, at, kind);
            };
            if (data + dataLen > typeLen)
                throw KernelFormatException.of("BTF truncated: type %d (kind %d, vlen %d) at 0x%x runs past the type section's end 0x%x", id, kind, vlen, at, typeLen);
            int ref = (int) Math.min(sizeOrType, Integer.MAX_VALUE);
            BtfType t = switch (kind) {
                case KIND_INT -> {
                    int enc = typeSec.s32(data);
                    yield new IntType(id, name, ref, (enc >>> 24) & 0xF, (enc >>> 16) & 0xFF, enc & 0xFF);
                }
                case KIND_PTR -> new Ptr(id, ref);
                case KIND_ARRAY -> new Array(id, typeSec.s32(data), typeSec.s32(data + 4), typeSec.u32(data + 8));
                case KIND_STRUCT, KIND_UNION -> {
                    List<Member> members = new ArrayList<>(vlen);
                    for (int i = 0; i < vlen; i++) {
                        long m = data + 12L * i;
                        long off = typeSec.u32(m + 8);
                        members.add(kflag ? new Member(strings.at(typeSec.u32(m), id), typeSec.s32(m + 4), off & 0xFF_FFFF, (int) (off >>> 24))
                                : new Member(strings.at(typeSec.u32(m), id), typeSec.s32(m + 4), off, 0));
                    }
                    yield new Composite(id, name, kind == KIND_UNION, sizeOrType, List.copyOf(members));
                }
                case KIND_ENUM, KIND_ENUM64 -> {
                    List<EnumType.Enumerator> values = new ArrayList<>(vlen);
                    for (int i = 0; i < vlen; i++) {
                        if (kind == KIND_ENUM) {
                            long e = data + 8L * i;
                            int v = typeSec.s32(e + 4);
                            values.add(new EnumType.Enumerator(strings.at(typeSec.u32(e), id), kflag ? v : Integer.toUnsignedLong(v)));
                        } else {
                            long e = data + 12L * i;
                            values.add(new EnumType.Enumerator(strings.at(typeSec.u32(e), id), typeSec.u32(e + 4) | typeSec.u32(e + 8) << 32));
                        }
                    }
                    yield new EnumType(id, name, ref, kflag, List.copyOf(values));
                }
                case KIND_FWD -> new Fwd(id, name, kflag);
                case KIND_TYPEDEF -> new Typedef(id, name, ref);
                case KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG -> new Qualifier(id, kind, name, ref);
                case KIND_FUNC -> new Func(id, name, ref, vlen);
                case KIND_FUNC_PROTO -> {
                    List<FuncProto.Param> params = new ArrayList<>(vlen);
                    for (int i = 0; i < vlen; i++) {
                        long p = data + 8L * i;
                        params.add(new FuncProto.Param(strings.at(typeSec.u32(p), id), typeSec.s32(p + 4)));
                    }
                    yield new FuncProto(id, ref, List.copyOf(params));
                }
                case KIND_VAR -> new Var(id, name, ref, typeSec.s32(data));
                case KIND_DATASEC -> {
                    List<DataSec.VarInfo> vars = new ArrayList<>(vlen);
                    for (int i = 0; i < vlen; i++) {
                        long v = data + 12L * i;
                        vars.add(new DataSec.VarInfo(typeSec.s32(v), typeSec.u32(v + 4), typeSec.u32(v + 8)));
                    }
                    yield new DataSec(id, name, sizeOrType, List.copyOf(vars));
                }
                case KIND_FLOAT -> new FloatType(id, name, ref);
                case KIND_DECL_TAG -> new DeclTag(id, name, ref, typeSec.s32(data));
                default -> throw new AssertionError(kind);
            };
            out.add(t);
            at = data + dataLen;
        }
        BtfType[] types = out.toArray(BtfType[]::new);
        checkReferences(types);
        checkAcyclic(types);
        return new Btf(types);
    }

    /** String-section names, each decoded once. */
    private record Strings(Bytes sec, Map<Long, String> cache) {
        Strings(Bytes sec) { this(sec, new HashMap<>()); }

        String at(long off, int typeId) throws KernelFormatException {
            String s = cache.get(off);
            if (s != null) return s;
            if (off >= sec.length) throw KernelFormatException.of("corrupt BTF: type %d names string offset 0x%x, past the string section's 0x%x bytes", typeId, off, sec.length);
            s = sec.cString(off, "name of type " + typeId);
            cache.put(off, s);
            return s;
        }
    }

    private static void checkReferences(BtfType[] types) throws KernelFormatException {
        for (BtfType t : types) {
            List<Integer> refs = switch (t) {
                case Ptr p -> List.of(p.target());
                case Array a -> List.of(a.element(), a.index());
                case Composite c -> c.members().stream().map(Member::type).toList();
                case Typedef d -> List.of(d.target());
                case Qualifier q -> List.of(q.target());
                case Func f -> List.of(f.proto());
                case FuncProto fp -> {
                    List<Integer> r = new ArrayList<>(fp.params().stream().map(FuncProto.Param::type).toList());
                    r.add(fp.returnType());
                    yield r;
                }
                case Var v -> List.of(v.type());
                case DataSec ds -> ds.vars().stream().map(DataSec.VarInfo::type).toList();
                case DeclTag dt -> List.of(dt.target());
                default -> List.of();
            };
            for (int r : refs)
                if (r < 0 || r >= types.length)
                    throw KernelFormatException.of("corrupt BTF: type %d refers to type %d, but there are only %d", t.id(), Integer.toUnsignedLong(r), types.length - 1);
            if (t instanceof Func f && !(types[f.proto()] instanceof FuncProto))
                throw KernelFormatException.of("corrupt BTF: function %d (%s) has type %d, which is not a prototype", f.id(), f.name(), f.proto());
        }
    }

    /** The edges the accessors follow without a depth bound; a cycle through them is malformed BTF. */
    private static int[] valueEdges(BtfType t) {
        return switch (t) {
            case Typedef d -> new int[] {d.target()};
            case Qualifier q -> new int[] {q.target()};
            case Array a -> new int[] {a.element()};
            case Var v -> new int[] {v.type()};
            case Composite c -> c.members().stream().mapToInt(Member::type).toArray();
            default -> new int[0];
        };
    }

    /** Iterative three-colour depth-first search over {@link #valueEdges}. */
    private static void checkAcyclic(BtfType[] types) throws KernelFormatException {
        byte[] colour = new byte[types.length]; // 0 unseen, 1 on the stack, 2 done
        int[] stack = new int[types.length], next = new int[types.length];
        for (int root = 1; root < types.length; root++) {
            if (colour[root] != 0) continue;
            int sp = 0;
            stack[sp++] = root;
            colour[root] = 1;
            next[root] = 0;
            while (sp > 0) {
                int v = stack[sp - 1];
                int[] edges = valueEdges(types[v]);
                if (next[v] < edges.length) {
                    int w = edges[next[v]++];
                    if (colour[w] == 1) throw KernelFormatException.of("corrupt BTF: type %d contains itself (a cycle through type %d without a pointer)", w, v);
                    if (colour[w] == 0) {
                        colour[w] = 1;
                        next[w] = 0;
                        stack[sp++] = w;
                    }
                } else {
                    colour[v] = 2;
                    sp--;
                }
            }
        }
    }

    // ---- lookups ----

    /** Number of types, void included: valid ids are 0 to {@code count() - 1}. */
    public int count() { return types.length; }

    public BtfType type(int id) {
        if (id < 0 || id >= types.length) throw new IllegalArgumentException("no BTF type " + id + " (there are " + (types.length - 1) + ")");
        return types[id];
    }

    /** Every type with this name (structs, unions, typedefs, functions, variables...), in id order. */
    public List<BtfType> named(String name) {
        return byName.getOrDefault(name, List.of()).stream().map(this::type).toList();
    }

    /**
     * The complete {@code struct name} (not a forward declaration). When deduplicated BTF keeps more
     * than one struct of that name, the first, lowest-id one is returned.
     */
    public Composite struct(String name) { return composite(name, false); }

    public Composite union(String name) { return composite(name, true); }

    private Composite composite(String name, boolean union) {
        for (BtfType t : named(name))
            if (t instanceof Composite c && c.union() == union) return c;
        throw new IllegalArgumentException("BTF has no " + (union ? "union " : "struct ") + name);
    }

    /** {@code id} with typedefs and qualifiers (const, volatile, restrict, type tags) stripped. */
    public BtfType resolve(int id) {
        BtfType t = type(id);
        while (true) {
            switch (t) {
                case Typedef d -> t = types[d.target()];
                case Qualifier q -> t = types[q.target()];
                default -> { return t; }
            }
        }
    }

    /** The size in bytes of an object of type {@code id} (btf.c's btf_type_size semantics; 0 for void, functions and forward declarations). */
    public long sizeOf(int id) {
        return switch (resolve(id)) {
            case IntType i -> i.size();
            case Ptr p -> 8;
            case Array a -> {
                try {
                    yield Math.multiplyExact(a.count(), sizeOf(a.element()));
                } catch (ArithmeticException e) {
                    throw new IllegalArgumentException("BTF array type " + a.id() + " is larger than 2^63 bytes");
                }
            }
            case Composite c -> c.size();
            case EnumType e -> e.size();
            case FloatType f -> f.size();
            case Var v -> sizeOf(v.type());
            case DataSec d -> d.size();
            default -> 0;
        };
    }

    /** A named variable's BTF_KIND_VAR (vmlinux BTF has them for per-CPU variables only). */
    public Optional<Var> variable(String name) {
        for (BtfType t : named(name)) if (t instanceof Var v) return Optional.of(v);
        return Optional.empty();
    }

    /** The {@code section} DATASEC's entry for variable {@code var} (its offset in the section). */
    public Optional<DataSec.VarInfo> placement(Var var) {
        for (BtfType t : types)
            if (t instanceof DataSec ds)
                for (DataSec.VarInfo vi : ds.vars()) if (vi.type() == var.id()) return Optional.of(vi);
        return Optional.empty();
    }

    /**
     * The type id of a kernel global: its BTF_KIND_VAR if the BTF has one, else the C type the
     * {@link KernelVariables} table gives for it (vmlinux BTF describes only per-CPU variables; pahole
     * leaves the other globals out).
     */
    public int typeOfVariable(String name) {
        Optional<Var> v = variable(name);
        if (v.isPresent()) return v.get().type();
        String decl = KernelVariables.typeOf(name)
                .orElseThrow(() -> new IllegalArgumentException("BTF has no variable " + name + " and the table of known variables does not list it"));
        return typeId(decl);
    }

    /** {@link #typeOfVariable} with typedefs and qualifiers resolved. */
    public BtfType typeOf(String variable) { return resolve(typeOfVariable(variable)); }

    /**
     * The id of a type written in C: {@code struct x}, {@code union x}, {@code enum x}, a typedef or
     * base-type name, each optionally followed by {@code *}s. A pointer type must exist in the BTF (every
     * pointer the kernel declares does).
     */
    public int typeId(String c) {
        String s = c.strip();
        int stars = 0;
        while (s.endsWith("*")) {
            stars++;
            s = s.substring(0, s.length() - 1).strip();
        }
        int id = -1;
        if (s.equals("void")) id = 0;
        else if (s.startsWith("struct ") || s.startsWith("union ")) id = composite(s.substring(s.indexOf(' ') + 1).strip(), s.startsWith("union ")).id();
        else {
            String name = s.startsWith("enum ") ? s.substring(5).strip() : s;
            for (BtfType t : named(name))
                if (t instanceof Typedef || t instanceof IntType || t instanceof EnumType || t instanceof FloatType) { id = t.id(); break; }
        }
        if (id < 0) throw new IllegalArgumentException("BTF has no type " + s);
        for (int i = 0; i < stars; i++) {
            int target = id;
            id = -1;
            for (BtfType t : types) if (t instanceof Ptr p && p.target() == target) { id = p.id(); break; }
            if (id < 0) throw new IllegalArgumentException("BTF has no pointer type to " + describe(target));
        }
        return id;
    }

    // ---- members ----

    /** Where a member sits: bit offset from the start of the outermost struct, bitfield width (0 for none), type id. */
    public record Location(String path, long bitOffset, int bitfieldSize, int type) {
        public long byteOffset() {
            if (bitOffset % 8 != 0 || bitfieldSize != 0) throw new IllegalArgumentException(path + " is a bitfield (bit " + bitOffset + "), not byte-addressable");
            return bitOffset / 8;
        }
    }

    /** {@link #member(Composite, String)} on {@code struct structName}. */
    public Location member(String structName, String path) { return member(struct(structName), path); }

    /** Byte offset of {@code path} within {@code struct structName}, e.g. {@code memberOffset("paravirt_patch_template", "mmu.flush_tlb_multi")}. */
    public long memberOffset(String structName, String path) { return member(structName, path).byteOffset(); }

    /**
     * Locates a member by path: names separated by dots, descending through nested structs and
     * unions, array elements as {@code name[i]}; members of anonymous structs and unions are found
     * by their own names, as C does.
     */
    public Location member(Composite root, String path) {
        if (path.isEmpty()) throw new IllegalArgumentException("empty member path");
        long bits = 0;
        int bitfield = 0, type = root.id();
        int i = 0;
        StringBuilder walked = new StringBuilder(root.keyword() + " " + root.name());
        while (i < path.length()) {
            char ch = path.charAt(i);
            if (ch == '[') {
                int close = path.indexOf(']', i);
                if (close < 0) throw new IllegalArgumentException("unclosed '[' in " + path);
                long index;
                try {
                    index = Long.parseLong(path.substring(i + 1, close).strip());
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("bad array index in " + path);
                }
                if (!(resolve(type) instanceof Array a)) throw new IllegalArgumentException(walked + " is not an array (in " + path + ")");
                if (index < 0 || (a.count() != 0 && index >= a.count()))
                    throw new IllegalArgumentException(walked + "[" + index + "] is out of bounds (" + a.count() + " elements)");
                bits += index * sizeOf(a.element()) * 8;
                type = a.element();
                walked.append('[').append(index).append(']');
                i = close + 1;
                continue;
            }
            if (ch == '.') { i++; continue; }
            int end = i;
            while (end < path.length() && path.charAt(end) != '.' && path.charAt(end) != '[') end++;
            String name = path.substring(i, end);
            if (!(resolve(type) instanceof Composite c))
                throw new IllegalArgumentException(walked + " is a " + describe(type) + ", not a struct or union, so it has no member " + name);
            List<Member> chain = find(c, name);
            if (chain == null) throw new IllegalArgumentException(c.keyword() + " " + (c.name().isEmpty() ? "(anonymous)" : c.name()) + " has no member " + name);
            for (Member m : chain) bits += m.bitOffset();
            Member last = chain.getLast();
            bitfield = last.bitfieldSize();
            type = last.type();
            walked.append('.').append(name);
            i = end;
        }
        return new Location(path, bits, bitfield, type);
    }

    /** The member called {@code name}, possibly inside anonymous members: the chain from {@code c} down to it, or null. */
    private List<Member> find(Composite c, String name) {
        for (Member m : c.members()) if (m.name().equals(name)) return List.of(m);
        for (Member m : c.members()) {
            if (!m.name().isEmpty() || !(resolve(m.type()) instanceof Composite inner)) continue;
            List<Member> sub = find(inner, name);
            if (sub != null) {
                List<Member> chain = new ArrayList<>(sub.size() + 1);
                chain.add(m);
                chain.addAll(sub);
                return chain;
            }
        }
        return null;
    }

    /** True when {@code id} is a pointer to a function (through typedefs and qualifiers on both sides). */
    public boolean isFunctionPointer(int id) {
        return resolve(id) instanceof Ptr p && resolve(p.target()) instanceof FuncProto;
    }

    /** A C-like spelling of the type, for reports: {@code struct apic *}, {@code u32}, {@code void (*)(int)}, {@code char[16]}. */
    public String describe(int id) { return describe(id, 0); }

    private String describe(int id, int depth) {
        if (depth > 16) return "...";
        return switch (type(id)) {
            case BtfType.Void v -> "void";
            case IntType t -> t.name();
            case FloatType t -> t.name();
            case Typedef t -> t.name();
            case Composite c -> c.keyword() + " " + (c.name().isEmpty() ? "(anonymous)" : c.name());
            case EnumType e -> "enum " + (e.name().isEmpty() ? "(anonymous)" : e.name());
            case Fwd f -> (f.union() ? "union " : "struct ") + f.name();
            case Qualifier q -> q.keyword() + " " + describe(q.target(), depth + 1);
            case Ptr p -> type(p.target()) instanceof FuncProto fp ? describeProto(fp, "(*)", depth) : describe(p.target(), depth + 1) + " *";
            case Array a -> describe(a.element(), depth + 1) + "[" + a.count() + "]";
            case FuncProto fp -> describeProto(fp, "", depth);
            case Func f -> describeProto((FuncProto) type(f.proto()), f.name(), depth);
            case Var v -> describe(v.type(), depth + 1) + " " + v.name();
            case DataSec d -> "datasec " + d.name();
            case DeclTag t -> "decl_tag " + t.name();
        };
    }

    private String describeProto(FuncProto fp, String declarator, int depth) {
        StringBuilder sb = new StringBuilder(describe(fp.returnType(), depth + 1)).append(' ').append(declarator).append('(');
        if (fp.params().isEmpty()) sb.append("void");
        for (int i = 0; i < fp.params().size(); i++) {
            FuncProto.Param p = fp.params().get(i);
            if (i > 0) sb.append(", ");
            sb.append(p.type() == 0 && p.name().isEmpty() ? "..." : describe(p.type(), depth + 1));
        }
        return sb.append(')').toString();
    }
}
