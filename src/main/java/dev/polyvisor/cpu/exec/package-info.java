/**
 * Instruction handlers: one small final class per opcode form, grouped by concern (integer ALU,
 * control flow, strings, system, x87, SSE), each group registering its forms in the
 * {@link dev.polyvisor.cpu.decode.OpcodeTable} from its {@code register} method. {@link
 * dev.polyvisor.cpu.exec.Isa} assembles the full table.
 *
 * <p>May import {@code cpu}, {@code cpu.decode}, {@code cpu.mmu}.
 */
package dev.polyvisor.cpu.exec;
