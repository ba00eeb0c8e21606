/**
 * The coupling matrix (issue 10, {@code polyvisor abi matrix}): which kernel behaviours depend on which
 * ABI element. For each personality one baseline boot with every element on and one boot per element
 * switched off, plus two reference columns, {@code bare} and {@code unknown} (hypervisor bit set, a
 * signature no kernel knows); each cell boots the guest in icount mode with {@code nokaslr} (entered at
 * the vmlinux's startup_64, the decompressor skipped, and no modules loaded) and records what the
 * kernel bound (its dispatch tables read from guest memory by {@link dev.polyvisor.kernel}, x86_init at
 * the guest's entry to free_initmem() through a trace-cache watch),
 * how much it used each ABI element ({@link dev.polyvisor.personality.core.AbiUsage}, counted by the
 * personality layer), how the boot ended, and the costs of the micro-workloads
 * ({@link dev.polyvisor.matrix.CellWorkload}, a hook filled in by the workload program).
 *
 * <p>{@link dev.polyvisor.matrix.MatrixPlan} says which cells to run, {@link dev.polyvisor.matrix.MatrixRunner}
 * runs them ({@code --jobs N} VMs at once in this JVM, each cell cached under {@code DIR/cells/} so that an
 * interrupted matrix resumes), {@link dev.polyvisor.matrix.MatrixDiff} compares a cell with its reference,
 * {@link dev.polyvisor.matrix.MatrixJson}, {@link dev.polyvisor.matrix.MatrixMarkdown} and
 * {@link dev.polyvisor.matrix.MatrixHtml} write matrix.json, matrix.md and the self-contained matrix.html,
 * and {@link dev.polyvisor.matrix.MatrixCompare} diffs two matrix.json files (two kernels). The schema is
 * in docs/MATRIX.md.
 *
 * <p>Imports {@code vmm} (to build and run VMs), {@code kernel}, {@code guest} (the image to boot),
 * {@code personality} (contracts and usage counters); never {@code cli} (the kernel command line builder
 * is passed in).
 */
package dev.polyvisor.matrix;
