/**
 * Reading a Linux kernel's own state out of guest memory, with no guest cooperation: the vmlinux
 * ELF ({@link dev.polyvisor.kernel.Elf64}), its BTF type information ({@link dev.polyvisor.kernel.Btf},
 * the {@code .BTF} section that CONFIG_DEBUG_INFO_BTF leaves in the image), its symbols
 * ({@link dev.polyvisor.kernel.KernelSymbols}: the kallsyms tables compiled into {@code .rodata}, a
 * System.map or /proc/kallsyms text, or an ELF {@code .symtab}), the kernel-virtual to
 * guest-physical mapping of the kernel image and the direct map, KASLR included
 * ({@link dev.polyvisor.kernel.KernelAddresses}), and on top of them the dispatch tables a
 * paravirtualized kernel binds at boot: {@code pv_ops}, the APIC driver, {@code x86_platform},
 * {@code x86_init}, {@code x86_cpuinit}, static calls, PV static keys, clocksource and clockevent
 * ({@link dev.polyvisor.kernel.DispatchTables}). The layouts are those of Debian's kernels from 6.1
 * to 7.x (kallsyms as scripts/kallsyms.c has written it in each; per-CPU symbols zero-based or not);
 * {@code __initdata} such as x86_init can be read before free_initmem() and stand in for the freed root
 * ({@link dev.polyvisor.kernel.DispatchTables#readInitData}).
 *
 * <p>It starts at the vmlinux ELF: getting that out of a bzImage is
 * {@code vmm.boot.linux.KernelPayload#vmlinux}'s job (the callers pass the bytes in). Guest memory
 * is read through {@link dev.polyvisor.kernel.PhysicalMemory}, a one-method interface, so everything
 * here is testable without a VM. Imports nothing of Polyvisor but {@code dev.polyvisor.memory} (for
 * the {@link dev.polyvisor.kernel.PhysicalMemory#of adapter} to a VM's RAM): no cpu, devices,
 * personality or vmm.
 */
package dev.polyvisor.kernel;
