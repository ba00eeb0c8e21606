package dev.polyvisor.cpu.exec;

import dev.polyvisor.cpu.decode.OpcodeTable;

/** Assembles the opcode table from every handler group. */
public final class Isa {
    private static final OpcodeTable TABLE = build();

    private Isa() {}

    public static OpcodeTable table() { return TABLE; }

    private static OpcodeTable build() {
        OpcodeTable t = new OpcodeTable();
        IntegerOps.register(t);
        ControlOps.register(t);
        BitOps.register(t);
        StringOps.register(t);
        SystemOps.register(t);
        SegmentOps.register(t);
        PortIoOps.register(t);
        FarControlOps.register(t);
        SseIntOps.register(t);
        SseMoveOps.register(t);
        FxsaveOps.register(t);
        SseFpOps.register(t);
        X87Ops.register(t);
        MmxOps.register(t);
        MmxIntOps.register(t);
        MmxConvertOps.register(t);
        return t;
    }
}
