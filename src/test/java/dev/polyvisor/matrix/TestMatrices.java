package dev.polyvisor.matrix;

/** Synthetic matrices for tests in other packages. */
public final class TestMatrices {
    private TestMatrices() {}

    /** bare, kvm, kvm -kvm.clocksource, kvm -kvm.pv-send-ipi; the last panics when {@code ipiPanics}. */
    public static MatrixResult small(boolean ipiPanics) { return Cells.matrix(ipiPanics, (ipiPanics ? "cd" : "ab").repeat(32)); }
}
