/**
 * Guest physical memory: RAM as one off-heap {@link java.lang.foreign.MemorySegment}, the physical
 * address map (RAM ranges and MMIO regions), little-endian unaligned access and the atomic helpers
 * that give LOCK-prefixed instructions their semantics.
 *
 * <p>Imports nothing else of Polyvisor. Devices plug MMIO handlers in through {@link dev.polyvisor.memory.MmioHandler}.
 */
package dev.polyvisor.memory;
