package dev.polyvisor.matrix;

import dev.polyvisor.cli.RunCommand;
import dev.polyvisor.guest.GuestImage;
import dev.polyvisor.guest.GuestImageException;
import dev.polyvisor.guest.GuestImages;
import dev.polyvisor.guest.KernelSource;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.opentest4j.TestAbortedException;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A small matrix on sid's current 7.x cloud kernel (fetched through the private apt configuration,
 * cached under ~/.cache/polyvisor; skipped when it cannot be obtained): kvm's baseline and
 * kvm.pv-send-ipi off, 2 vCPUs, icount, no workloads. Its dispatch tables are read (zstd payload,
 * 7.x kallsyms), x86_init at free_initmem(), the PV spinlock ops from 7.x's pv_ops_lock, and the
 * element's coupling to the APIC mask callbacks holds as on 6.1.
 */
@Tag("linux")
class MatrixNewerKernelBootTest {
    @Test
    void sidsKernelBindsKvmAndItsTablesAreRead() throws Exception {
        GuestImage guest;
        try {
            guest = GuestImages.build(KernelSource.parse(null, "sid"));
        } catch (GuestImageException e) {
            throw new TestAbortedException("sid's kernel cannot be obtained here: " + e.getMessage());
        }
        MatrixRunner r = new MatrixRunner(guest, MatrixSettings.defaults().withJobs(2), CellWorkload.NONE,
                RunCommand::linuxCommandLine, null, System.err, false);
        MatrixResult m = r.run(MatrixPlan.of(List.of("kvm"), List.of("kvm.pv-send-ipi"), false));
        CellResult base = m.cell("kvm").orElseThrow(), noIpi = m.cell("kvm -kvm.pv-send-ipi").orElseThrow();
        for (CellResult c : m.cells()) {
            assertEquals("boots", c.outcome().kind(), c.id() + ": " + c.outcome());
            assertFalse(c.tables().containsKey(CellResult.TABLES_UNREAD), c.id() + ": " + c.tables().get(CellResult.TABLES_UNREAD));
            assertTrue(c.tables().size() > 1000, c.id() + " has " + c.tables().size() + " table entries (7.x: many static calls)");
        }
        assertEquals("kvm-clock", base.clocksource());
        assertEquals("kvm_sched_clock_read", base.tables().get("static_call.pv_sched_clock"));
        assertEquals("kvm_init_platform", base.tables().get("x86_init.hyper.init_platform"), "x86_init read at free_initmem()");
        assertEquals("kvm_wait", base.tables().get("pv_ops.lock.wait"), "7.x's pv_ops_lock, read as pv_ops.lock");
        assertEquals("kvm_send_ipi_mask", base.tables().get("apic.send_IPI_mask"));
        assertFalse(noIpi.tables().get("apic.send_IPI_mask").startsWith("kvm_"), noIpi.tables().get("apic.send_IPI_mask"));
        assertFalse(noIpi.tables().get("static_call.apic_call_send_IPI_mask").startsWith("kvm_"));
    }
}
