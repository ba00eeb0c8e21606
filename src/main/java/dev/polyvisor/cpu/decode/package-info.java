/**
 * The x86 decoder: legacy prefixes, REX, the opcode maps (one-byte, 0F, 0F38, 0F3A), ModRM/SIB,
 * displacements and immediates, driven by one declarative {@link dev.polyvisor.cpu.decode.OpcodeTable}.
 * Each table entry carries the form's operand encoding and the factory that builds its specialised,
 * immutable handler ({@link dev.polyvisor.cpu.decode.Insn}); the differential test generator reads
 * the same entries.
 *
 * <p>May import {@code cpu} and {@code cpu.mmu}; never {@code cpu.exec} (handlers register themselves).
 */
package dev.polyvisor.cpu.decode;
