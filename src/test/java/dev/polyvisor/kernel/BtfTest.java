package dev.polyvisor.kernel;

import dev.polyvisor.kernel.BtfBuilder.M;
import dev.polyvisor.kernel.BtfType.Composite;
import dev.polyvisor.kernel.BtfType.EnumType;
import dev.polyvisor.kernel.BtfType.FuncProto;
import dev.polyvisor.kernel.BtfType.IntType;
import dev.polyvisor.kernel.BtfType.Ptr;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The BTF reader on blobs encoded by {@link BtfBuilder} (layouts as include/uapi/linux/btf.h and Documentation/bpf/btf.rst give them). */
class BtfTest {
    /** A miniature of arch/x86/include/asm/paravirt_types.h and a few other kernel shapes. */
    static final class Sample {
        final BtfBuilder b = new BtfBuilder();
        final int intT = b.intType("int", 4, IntType.SIGNED);
        final int uint = b.intType("unsigned int", 4, 0);
        final int u32 = b.typedef("u32", uint);
        final int ulong = b.intType("long unsigned int", 8, 0);
        final int charT = b.intType("char", 1, IntType.CHAR | IntType.SIGNED);
        final int voidFn = b.funcProto(0);
        final int voidFnPtr = b.ptr(voidFn);
        final int intArgFn = b.funcProto(0, "cpu", intT);
        final int intArgFnPtr = b.ptr(intArgFn);
        final int voidPtr = b.ptr(0);
        final int calleeSave = b.struct("paravirt_callee_save", 8, new M("func", voidPtr, 0));
        final int cpuOps = b.struct("pv_cpu_ops", 16, new M("io_delay", voidFnPtr, 0), new M("write_cr0", intArgFnPtr, 64));
        final int constU32 = b.constOf(u32);
        final int volConstU32 = b.volatileOf(constU32);
        final int anonUnion = b.union("", 8, new M("u_int", intT, 0), new M("u_long", ulong, 0));
        final int fnArray = b.array(voidFnPtr, intT, 3);
        final int lockOps = b.struct("pv_lock_ops", 64,
                new M("queued_spin_lock_slowpath", intArgFnPtr, 0),
                new M("vcpu_is_preempted", calleeSave, 64),
                new M("", anonUnion, 128),
                new M("flags", volConstU32, 192),
                new M("hooks", fnArray, 256));
        final int template = b.struct("paravirt_patch_template", 80, new M("cpu", cpuOps, 0), new M("lock", lockOps, 128));
        final int bits = b.struct("bits", 4, new M("lo", uint, 0, 3), new M("hi", uint, 3, 29));
        final int apic = b.struct("apic", 24, new M("send_IPI", intArgFnPtr, 0), new M("name", b.ptr(b.constOf(charT)), 64),
                new M("dest_mode_logical", u32, 128));
        final int apicPtr = b.ptr(apic);
        final int fwdApic = b.fwd("apic_fwd", false);
        final int states = b.enumType("system_states", 4, false, "SYSTEM_BOOTING", 0, "SYSTEM_RUNNING", 3);
        final int big = b.enum64("big", "HUGE", 0x1_0000_0002L);
        final int tick = b.struct("tick_device", 16, new M("evtdev", voidPtr, 0), new M("mode", intT, 64));
        final int tickVar = b.var("tick_cpu_device", tick, 1);
        final int percpu = b.datasec(".data..percpu", 0x1000, tickVar, 0x140, 16);
        final int dbl = b.floatType("double", 8);
        final int tag = b.declTag("user", tick, 1);
        final int tagged = b.typeTag("percpu", intT);
        final int func = b.func("native_io_delay", voidFn, 1);

        Btf parse() throws KernelFormatException { return Btf.parse(b.build()); }
    }

    @Test
    void structLayoutsResolveThroughNestedAnonymousAndArrayMembers() throws Exception {
        Sample s = new Sample();
        Btf btf = s.parse();
        assertEquals(s.func + 1, btf.count());
        Composite t = btf.struct("paravirt_patch_template");
        assertEquals(80, t.size());
        assertEquals(List.of("cpu", "lock"), t.members().stream().map(Composite.Member::name).toList());
        assertEquals(0, btf.memberOffset("paravirt_patch_template", "cpu.io_delay"));
        assertEquals(8, btf.memberOffset("paravirt_patch_template", "cpu.write_cr0"));
        assertEquals(16, btf.memberOffset("paravirt_patch_template", "lock.queued_spin_lock_slowpath"));
        assertEquals(24, btf.memberOffset("paravirt_patch_template", "lock.vcpu_is_preempted"));
        assertEquals(24, btf.memberOffset("paravirt_patch_template", "lock.vcpu_is_preempted.func"));
        // Members of an anonymous union are found by their own names, as in C.
        assertEquals(32, btf.memberOffset("paravirt_patch_template", "lock.u_long"));
        assertEquals(s.ulong, btf.member("paravirt_patch_template", "lock.u_long").type());
        assertEquals(40, btf.memberOffset("paravirt_patch_template", "lock.flags"));
        assertEquals(48 + 2 * 8, btf.memberOffset("paravirt_patch_template", "lock.hooks[2]"));
        assertEquals(s.voidFnPtr, btf.member("paravirt_patch_template", "lock.hooks[2]").type());
        assertTrue(btf.isFunctionPointer(btf.member("paravirt_patch_template", "cpu.write_cr0").type()));
        assertFalse(btf.isFunctionPointer(btf.member("paravirt_patch_template", "lock.vcpu_is_preempted.func").type()));
    }

    @Test
    void typedefsAndQualifiersResolveAndSizesFollow() throws Exception {
        Sample s = new Sample();
        Btf btf = s.parse();
        assertEquals(btf.type(s.uint), btf.resolve(s.volConstU32));
        assertEquals(btf.type(s.intT), btf.resolve(s.tagged));
        assertEquals(4, btf.sizeOf(s.volConstU32));
        assertEquals(8, btf.sizeOf(s.apicPtr));
        assertEquals(24, btf.sizeOf(s.fnArray));
        assertEquals(0, btf.sizeOf(0));
        assertEquals(0, btf.sizeOf(s.fwdApic));
        assertEquals("volatile const u32", btf.describe(s.volConstU32));
        assertEquals("struct apic *", btf.describe(s.apicPtr));
        assertEquals("void (*)(int)", btf.describe(s.intArgFnPtr));
        assertEquals("void (*)(void)[3]", btf.describe(s.fnArray));
        assertEquals("void native_io_delay(void)", btf.describe(s.func));
        assertEquals(s.apicPtr, btf.typeId("struct apic *"));
        assertEquals(s.u32, btf.typeId("u32"));
        assertEquals(s.uint, btf.typeId("unsigned int"));
        assertThrows(IllegalArgumentException.class, () -> btf.typeId("struct apic **"));
    }

    @Test
    void bitfieldsCarryTheirWidthAndAreNotByteAddressable() throws Exception {
        Btf btf = new Sample().parse();
        Btf.Location hi = btf.member("bits", "hi");
        assertEquals(3, hi.bitOffset());
        assertEquals(29, hi.bitfieldSize());
        assertEquals(3, btf.member("bits", "lo").bitfieldSize());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, hi::byteOffset);
        assertTrue(e.getMessage().contains("bitfield"), e.getMessage());
    }

    @Test
    void enumsVariablesDatasecsAndTheOtherKindsParse() throws Exception {
        Sample s = new Sample();
        Btf btf = s.parse();
        EnumType states = (EnumType) btf.named("system_states").getFirst();
        assertEquals(List.of(new EnumType.Enumerator("SYSTEM_BOOTING", 0), new EnumType.Enumerator("SYSTEM_RUNNING", 3)), states.values());
        assertEquals(0x1_0000_0002L, ((EnumType) btf.type(s.big)).values().getFirst().value());
        BtfType.Var v = btf.variable("tick_cpu_device").orElseThrow();
        assertEquals(s.tick, v.type());
        assertEquals(new BtfType.DataSec.VarInfo(s.tickVar, 0x140, 16), btf.placement(v).orElseThrow());
        assertEquals(btf.type(s.tick), btf.typeOf("tick_cpu_device"));
        assertEquals(new BtfType.FloatType(s.dbl, "double", 8), btf.type(s.dbl));
        assertEquals(new BtfType.DeclTag(s.tag, "user", s.tick, 1), btf.type(s.tag));
        assertEquals(new BtfType.Fwd(s.fwdApic, "apic_fwd", false), btf.type(s.fwdApic));
        assertInstanceOf(FuncProto.class, btf.type(((BtfType.Func) btf.type(s.func)).proto()));
    }

    @Test
    void globalsWithoutAVarTakeTheirTypeFromTheKnownVariablesTable() throws Exception {
        Sample s = new Sample();
        Btf btf = s.parse();
        assertEquals(s.template, btf.typeOfVariable("pv_ops"));
        assertEquals(s.apicPtr, btf.typeOfVariable("apic"));
        assertInstanceOf(Ptr.class, btf.typeOf("apic"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> btf.typeOfVariable("no_such_variable"));
        assertTrue(e.getMessage().contains("no_such_variable"), e.getMessage());
        // In the table, but this BTF lacks the struct.
        assertThrows(IllegalArgumentException.class, () -> btf.typeOfVariable("x86_platform"));
    }

    @Test
    void wrongNamesAndPathsSayWhatIsMissing() throws Exception {
        Btf btf = new Sample().parse();
        assertTrue(assertThrows(IllegalArgumentException.class, () -> btf.struct("nope")).getMessage().contains("struct nope"));
        assertThrows(IllegalArgumentException.class, () -> btf.union("paravirt_patch_template"));
        String m = assertThrows(IllegalArgumentException.class, () -> btf.member("paravirt_patch_template", "mmu.flush_tlb_multi")).getMessage();
        assertTrue(m.contains("no member mmu"), m);
        m = assertThrows(IllegalArgumentException.class, () -> btf.member("paravirt_patch_template", "cpu.io_delay.x")).getMessage();
        assertTrue(m.contains("not a struct"), m);
        m = assertThrows(IllegalArgumentException.class, () -> btf.member("paravirt_patch_template", "lock.hooks[3]")).getMessage();
        assertTrue(m.contains("out of bounds"), m);
        assertThrows(IllegalArgumentException.class, () -> btf.member("paravirt_patch_template", "cpu[0]"));
        assertThrows(IllegalArgumentException.class, () -> btf.type(10_000));
    }

    // ---- malformed input ----

    private static String fails(byte[] blob) {
        return assertThrows(KernelFormatException.class, () -> Btf.parse(blob)).getMessage();
    }

    @Test
    void badHeadersAreRefused() {
        byte[] ok = new Sample().b.build();
        assertTrue(fails(Arrays.copyOf(ok, 10)).contains("truncated"));
        byte[] magic = ok.clone();
        magic[0] = 0x12;
        assertTrue(fails(magic).contains("magic"));
        byte[] be = ok.clone();
        be[0] = (byte) 0xEB;
        be[1] = (byte) 0x9F;
        assertTrue(fails(be).contains("big-endian"));
        byte[] version = ok.clone();
        version[2] = 2;
        assertTrue(fails(version).contains("version 2"));
        byte[] t = new byte[0], s = {0};
        assertTrue(fails(BtfBuilder.header(Btf.MAGIC, 1, 8, 0, 0, 0, 1, t, s)).contains("hdr_len"));
        assertTrue(fails(BtfBuilder.header(Btf.MAGIC, 1, 24, 0, 0, 0, 100, t, s)).contains("string section"));
        assertTrue(fails(BtfBuilder.header(Btf.MAGIC, 1, 24, 2, 0, 0, 1, t, s)).contains("aligned"));
        assertTrue(fails(BtfBuilder.header(Btf.MAGIC, 1, 24, 0, 0, 0, 0, t, new byte[0])).contains("string section length"));
        assertTrue(fails(BtfBuilder.header(Btf.MAGIC, 1, 24, 0, 0xFFFF_FFF0L, 0, 1, t, s)).contains("type section"));
        assertTrue(fails(BtfBuilder.header(Btf.MAGIC, 1, 24, 0, 0, 0, 2, t, new byte[] {0, 'a'})).contains("NUL-terminated"));
        assertTrue(fails(BtfBuilder.header(Btf.MAGIC, 1, 24, 0, 0, 0, 2, t, new byte[] {'a', 0})).contains("empty string"));
    }

    @Test
    void recordsRunningPastTheTypeSectionAreRefused() {
        BtfBuilder b = new BtfBuilder();
        int i = b.intType("int", 4, 1);
        b.struct("s", 8, new M("a", i, 0), new M("b", i, 32));
        byte[] types = b.typeSection();
        String m = fails(BtfBuilder.blob(Arrays.copyOf(types, types.length - 12), b.stringSection()));
        assertTrue(m.contains("runs past") && m.contains("type 2"), m);
        m = fails(BtfBuilder.blob(Arrays.copyOf(types, types.length - 12 * 2 - 4), b.stringSection()));
        assertTrue(m.contains("12-byte header") || m.contains("runs past"), m);
        // A vlen of 65535 members in a 12-byte record.
        BtfBuilder huge = new BtfBuilder();
        huge.raw("s", BtfType.KIND_STRUCT, 0xFFFF, false, 8);
        assertTrue(fails(huge.build()).contains("vlen 65535"));
    }

    @Test
    void unknownKindsBadNamesAndDanglingReferencesAreRefused() {
        BtfBuilder b = new BtfBuilder();
        b.raw("x", 31, 0, false, 0);
        assertTrue(fails(b.build()).contains("unknown kind 31"));

        BtfBuilder names = new BtfBuilder();
        names.intType("int", 4, 1);
        byte[] types = names.typeSection();
        types[0] = 0x70; // name_off 0x70, past the string section
        assertTrue(fails(BtfBuilder.blob(types, names.stringSection())).contains("string offset 0x70"));

        BtfBuilder dangling = new BtfBuilder();
        dangling.ptr(42);
        assertTrue(fails(dangling.build()).contains("refers to type 42"));

        BtfBuilder member = new BtfBuilder();
        member.struct("s", 4, new M("a", 7, 0));
        assertTrue(fails(member.build()).contains("refers to type 7"));

        BtfBuilder func = new BtfBuilder();
        int i = func.intType("int", 4, 1);
        func.func("f", i, 1);
        assertTrue(fails(func.build()).contains("not a prototype"));
    }

    @Test
    void typeLoopsWithoutAPointerAreRefused() throws Exception {
        // typedef a -> typedef b -> typedef a
        BtfBuilder loop = new BtfBuilder();
        int a = loop.nextId();
        loop.typedef("a", a + 1);
        loop.typedef("b", a);
        assertTrue(fails(loop.build()).contains("contains itself"));

        // const -> volatile -> const
        BtfBuilder q = new BtfBuilder();
        int c = q.nextId();
        q.constOf(c + 1);
        q.volatileOf(c);
        assertTrue(fails(q.build()).contains("contains itself"));

        // struct s { struct s inner; } and an array of itself
        BtfBuilder self = new BtfBuilder();
        int s = self.nextId();
        self.struct("s", 8, new M("inner", s, 0));
        assertTrue(fails(self.build()).contains("contains itself"));
        BtfBuilder arr = new BtfBuilder();
        int x = arr.nextId();
        arr.array(x, 0, 2);
        assertTrue(fails(arr.build()).contains("contains itself"));

        // Through a pointer a struct may refer to itself: struct list { struct list *next; }.
        BtfBuilder list = new BtfBuilder();
        int l = list.nextId();
        list.struct("list", 8, new M("next", l + 1, 0));
        list.ptr(l);
        Btf btf = Btf.parse(list.build());
        assertEquals("struct list *", btf.describe(btf.member("list", "next").type()));
    }

    @Test
    void truncatedAndCorruptedBlobsFailCleanly() {
        byte[] ok = new Sample().b.build();
        for (int len = 0; len < ok.length; len++) {
            byte[] cut = Arrays.copyOf(ok, len);
            try {
                Btf.parse(cut);
            } catch (KernelFormatException expected) {
                // the point: nothing else escapes
            }
        }
        Random r = new Random(10);
        for (int round = 0; round < 3000; round++) {
            byte[] bad = ok.clone();
            for (int k = 0; k < 1 + r.nextInt(4); k++) bad[r.nextInt(bad.length)] = (byte) r.nextInt(256);
            try {
                Btf btf = Btf.parse(bad);
                // Whatever parsed must also be walkable without loops.
                for (int id = 0; id < btf.count(); id++) {
                    btf.resolve(id);
                    btf.sizeOf(id);
                    btf.describe(id);
                }
            } catch (KernelFormatException expected) {
                // fine
            } catch (IllegalArgumentException e) {
                // sizeOf on an absurd array is a clear IAE
                assertTrue(e.getMessage().contains("larger than"), e.getMessage());
            }
        }
    }
}
