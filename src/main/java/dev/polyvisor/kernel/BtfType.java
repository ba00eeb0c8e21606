package dev.polyvisor.kernel;

import java.util.List;

/**
 * One BTF type, as include/uapi/linux/btf.h and Documentation/bpf/btf.rst ("2. BTF Type and String
 * Encoding") define it: a {@code struct btf_type} (name_off, info = vlen | kind << 24 | kind_flag << 31,
 * size or type) followed by its kind's data. Type ids count from 1; id 0 is void. References to
 * other types are ids, resolved through {@link Btf}.
 */
public sealed interface BtfType {
    /** The kind numbers of btf.h's BTF_KIND_*. */
    int KIND_INT = 1, KIND_PTR = 2, KIND_ARRAY = 3, KIND_STRUCT = 4, KIND_UNION = 5, KIND_ENUM = 6, KIND_FWD = 7,
            KIND_TYPEDEF = 8, KIND_VOLATILE = 9, KIND_CONST = 10, KIND_RESTRICT = 11, KIND_FUNC = 12, KIND_FUNC_PROTO = 13,
            KIND_VAR = 14, KIND_DATASEC = 15, KIND_FLOAT = 16, KIND_DECL_TAG = 17, KIND_TYPE_TAG = 18, KIND_ENUM64 = 19;

    int id();

    /** The type's name, "" when anonymous (pointers, arrays, qualifiers and prototypes are always anonymous). */
    String name();

    /** Type id 0. */
    record Void() implements BtfType {
        public int id() { return 0; }

        public String name() { return "void"; }
    }

    /** BTF_KIND_INT: {@code encoding} holds BTF_INT_SIGNED (1), BTF_INT_CHAR (2), BTF_INT_BOOL (4). */
    record IntType(int id, String name, int size, int encoding, int bitOffset, int bits) implements BtfType {
        public static final int SIGNED = 1, CHAR = 2, BOOL = 4;

        public boolean signed() { return (encoding & SIGNED) != 0; }
    }

    record Ptr(int id, int target) implements BtfType {
        public String name() { return ""; }
    }

    record Array(int id, int element, int index, long count) implements BtfType {
        public String name() { return ""; }
    }

    /**
     * BTF_KIND_STRUCT or BTF_KIND_UNION. A member's {@code bitOffset} is from the start of the
     * composite; {@code bitfieldSize} is 0 unless the member is a bitfield (kind_flag set and a
     * non-zero size in the top byte of btf_member.offset).
     */
    record Composite(int id, String name, boolean union, long size, List<Member> members) implements BtfType {
        public record Member(String name, int type, long bitOffset, int bitfieldSize) {}

        public String keyword() { return union ? "union" : "struct"; }
    }

    /** BTF_KIND_ENUM (32-bit values) and BTF_KIND_ENUM64; kind_flag says the values are signed. */
    record EnumType(int id, String name, int size, boolean signed, List<Enumerator> values) implements BtfType {
        public record Enumerator(String name, long value) {}
    }

    /** A forward declaration: kind_flag 0 is a struct, 1 a union. */
    record Fwd(int id, String name, boolean union) implements BtfType {}

    record Typedef(int id, String name, int target) implements BtfType {}

    /** BTF_KIND_VOLATILE, CONST, RESTRICT and TYPE_TAG: a qualifier in front of {@code target}; a type tag's name is its tag. */
    record Qualifier(int id, int kind, String name, int target) implements BtfType {
        public String keyword() {
            return switch (kind) {
                case KIND_VOLATILE -> "volatile";
                case KIND_CONST -> "const";
                case KIND_RESTRICT -> "restrict";
                default -> "__attribute__((btf_type_tag(\"" + name + "\")))";
            };
        }
    }

    /** BTF_KIND_FUNC: a named function whose type is the prototype {@code proto}; vlen holds its linkage. */
    record Func(int id, String name, int proto, int linkage) implements BtfType {}

    record FuncProto(int id, int returnType, List<Param> params) implements BtfType {
        /** A parameter; the last one of a variadic prototype has name "" and type 0. */
        public record Param(String name, int type) {}

        public String name() { return ""; }
    }

    /** BTF_KIND_VAR: linkage 0 static, 1 global (btf.h, enum BTF_VAR_*). */
    record Var(int id, String name, int type, int linkage) implements BtfType {}

    /** BTF_KIND_DATASEC: the variables of one ELF section, at offsets within it (vmlinux has one: .data..percpu). */
    record DataSec(int id, String name, long size, List<VarInfo> vars) implements BtfType {
        public record VarInfo(int type, long offset, long size) {}
    }

    record FloatType(int id, String name, int size) implements BtfType {}

    /** BTF_KIND_DECL_TAG: a tag on {@code target}, or on its member/parameter {@code componentIdx} (-1 for the type itself). */
    record DeclTag(int id, String name, int target, int componentIdx) implements BtfType {}
}
