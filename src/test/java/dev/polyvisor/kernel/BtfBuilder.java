package dev.polyvisor.kernel;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

import static dev.polyvisor.kernel.BtfType.*;

/**
 * A small BTF encoder for tests, writing the layout of include/uapi/linux/btf.h: the 24-byte
 * header, then the type section, then the string section. Type ids are handed out in order from 1;
 * {@link #nextId()} lets a test refer to a type it has not written yet (loops, forward references).
 */
final class BtfBuilder {
    private final ByteArrayOutputStream types = new ByteArrayOutputStream();
    private final ByteArrayOutputStream strings = new ByteArrayOutputStream();
    private final Map<String, Integer> stringOffsets = new LinkedHashMap<>();
    private int nextId = 1;

    record M(String name, int type, long bitOffset, int bitfieldSize) {
        M(String name, int type, long bitOffset) { this(name, type, bitOffset, 0); }
    }

    BtfBuilder() {
        strings.write(0); // offset 0 is the empty string
        stringOffsets.put("", 0);
    }

    int nextId() { return nextId; }

    int str(String s) {
        return stringOffsets.computeIfAbsent(s, k -> {
            int off = strings.size();
            strings.writeBytes(k.getBytes(StandardCharsets.UTF_8));
            strings.write(0);
            return off;
        });
    }

    private void word(long v) {
        types.write((int) v);
        types.write((int) (v >>> 8));
        types.write((int) (v >>> 16));
        types.write((int) (v >>> 24));
    }

    /** A raw btf_type: name, kind, vlen, kind_flag, size-or-type, then the kind's data as 32-bit words. */
    int raw(String name, int kind, int vlen, boolean kflag, long sizeOrType, long... data) {
        word(str(name));
        word((long) vlen | (long) kind << 24 | (kflag ? 1L << 31 : 0));
        word(sizeOrType);
        for (long d : data) word(d);
        return nextId++;
    }

    int intType(String name, int size, int encoding) { return raw(name, KIND_INT, 0, false, size, (long) encoding << 24 | size * 8L); }

    int ptr(int target) { return raw("", KIND_PTR, 0, false, target); }

    int array(int element, int index, long count) { return raw("", KIND_ARRAY, 0, false, 0, element, index, count); }

    int struct(String name, long size, M... members) { return composite(KIND_STRUCT, name, size, members); }

    int union(String name, long size, M... members) { return composite(KIND_UNION, name, size, members); }

    private int composite(int kind, String name, long size, M... members) {
        boolean kflag = false;
        for (M m : members) kflag |= m.bitfieldSize() != 0;
        long[] data = new long[3 * members.length];
        for (int i = 0; i < members.length; i++) {
            M m = members[i];
            data[3 * i] = str(m.name());
            data[3 * i + 1] = m.type();
            data[3 * i + 2] = kflag ? (long) m.bitfieldSize() << 24 | m.bitOffset() : m.bitOffset();
        }
        return raw(name, kind, members.length, kflag, size, data);
    }

    int enumType(String name, int size, boolean signed, Object... namesAndValues) {
        long[] data = new long[namesAndValues.length];
        for (int i = 0; i < namesAndValues.length; i += 2) {
            data[i] = str((String) namesAndValues[i]);
            data[i + 1] = ((Number) namesAndValues[i + 1]).longValue() & 0xFFFF_FFFFL;
        }
        return raw(name, KIND_ENUM, namesAndValues.length / 2, signed, size, data);
    }

    int enum64(String name, Object... namesAndValues) {
        int n = namesAndValues.length / 2;
        long[] data = new long[3 * n];
        for (int i = 0; i < n; i++) {
            long v = ((Number) namesAndValues[2 * i + 1]).longValue();
            data[3 * i] = str((String) namesAndValues[2 * i]);
            data[3 * i + 1] = v & 0xFFFF_FFFFL;
            data[3 * i + 2] = v >>> 32;
        }
        return raw(name, KIND_ENUM64, n, false, 8, data);
    }

    int fwd(String name, boolean union) { return raw(name, KIND_FWD, 0, union, 0); }

    int typedef(String name, int target) { return raw(name, KIND_TYPEDEF, 0, false, target); }

    int constOf(int target) { return raw("", KIND_CONST, 0, false, target); }

    int volatileOf(int target) { return raw("", KIND_VOLATILE, 0, false, target); }

    int restrictOf(int target) { return raw("", KIND_RESTRICT, 0, false, target); }

    int typeTag(String tag, int target) { return raw(tag, KIND_TYPE_TAG, 0, false, target); }

    /** A prototype: return type, then (name, type) pairs. */
    int funcProto(int returnType, Object... params) {
        long[] data = new long[params.length];
        for (int i = 0; i < params.length; i += 2) {
            data[i] = str((String) params[i]);
            data[i + 1] = ((Number) params[i + 1]).longValue();
        }
        return raw("", KIND_FUNC_PROTO, params.length / 2, false, returnType, data);
    }

    int func(String name, int proto, int linkage) { return raw(name, KIND_FUNC, linkage, false, proto); }

    int var(String name, int type, int linkage) { return raw(name, KIND_VAR, 0, false, type, linkage); }

    /** A DATASEC: (var id, offset, size) triples. */
    int datasec(String name, long size, long... triples) { return raw(name, KIND_DATASEC, triples.length / 3, false, size, triples); }

    int floatType(String name, int size) { return raw(name, KIND_FLOAT, 0, false, size); }

    int declTag(String tag, int target, int componentIdx) { return raw(tag, KIND_DECL_TAG, 0, false, target, componentIdx & 0xFFFF_FFFFL); }

    byte[] typeSection() { return types.toByteArray(); }

    byte[] stringSection() { return strings.toByteArray(); }

    byte[] build() { return blob(typeSection(), stringSection()); }

    /** A blob with the standard header around the given sections (type section first, strings after it). */
    static byte[] blob(byte[] typeSec, byte[] strSec) {
        return header(Btf.MAGIC, 1, 24, 0, typeSec.length, typeSec.length, strSec.length, typeSec, strSec);
    }

    /** A blob with every header field given, followed by the two sections as written. */
    static byte[] header(int magic, int version, int hdrLen, long typeOff, long typeLen, long strOff, long strLen, byte[] typeSec, byte[] strSec) {
        ByteBuffer b = ByteBuffer.allocate(Math.max(hdrLen, 24) + typeSec.length + strSec.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putShort((short) magic).put((byte) version).put((byte) 0).putInt(hdrLen)
                .putInt((int) typeOff).putInt((int) typeLen).putInt((int) strOff).putInt((int) strLen);
        b.position(Math.max(hdrLen, 24));
        b.put(typeSec).put(strSec);
        return b.array();
    }
}
