package dev.polyvisor.matrix;

import dev.polyvisor.personality.AbiCatalog;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class MatrixPlanTest {
    @Test
    void theDefaultPlanIsTheReferencesThenEachPersonalitysBaselineAndOneCellPerElement() {
        MatrixPlan p = MatrixPlan.of(List.of(), List.of(), true);
        int expected = 2;
        for (String name : MatrixPlan.DEFAULT_PERSONALITIES) expected += 1 + AbiCatalog.contract(name).elements().size();
        assertEquals(expected, p.cells().size());
        assertEquals("bare", p.cells().get(0).id());
        assertEquals("unknown", p.cells().get(1).id());
        assertEquals("kvm", p.cells().get(2).id());
        assertEquals(CellSpec.Role.BASELINE, p.cells().get(2).role());
        assertEquals("kvm -kvm.clocksource", p.cells().get(3).id());
        assertEquals(p.cells().size(), p.cells().stream().map(CellSpec::id).distinct().count());
    }

    @Test
    void elementsNarrowThePlanAndNameTheirPersonalities() {
        MatrixPlan p = MatrixPlan.of(List.of(), List.of("kvm.clocksource", "kvm.pv-send-ipi"), false);
        assertEquals(List.of("kvm", "kvm -kvm.clocksource", "kvm -kvm.pv-send-ipi"), p.cells().stream().map(CellSpec::id).toList());
        assertEquals("kvm", p.reference(p.cells().get(1)).orElseThrow());
        assertTrue(p.reference(p.cells().get(0)).isEmpty(), "no bare in this plan");
        MatrixPlan q = MatrixPlan.of(List.of("kvm"), List.of("kvm.pv-eoi"), true);
        assertEquals(List.of("bare", "unknown", "kvm", "kvm -kvm.pv-eoi"), q.cells().stream().map(CellSpec::id).toList());
        assertEquals("bare", q.reference(q.cells().get(1)).orElseThrow());
        assertEquals("bare", q.reference(q.cells().get(2)).orElseThrow());
        assertTrue(q.reference(q.cells().get(0)).isEmpty());
    }

    @Test
    void stacksOfferEveryMembersElements() {
        MatrixPlan p = MatrixPlan.of(List.of("hyperv+kvm"), List.of(), false);
        assertEquals(1 + AbiCatalog.contract("hyperv").elements().size() + AbiCatalog.contract("kvm").elements().size(), p.cells().size());
        assertTrue(p.cells().stream().anyMatch(c -> c.id().equals("hyperv+kvm -kvm.pv-send-ipi")));
    }

    @Test
    void unknownNamesAreOneLineErrorsNamingTheValidChoices() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MatrixPlan.of(List.of("qnx"), List.of(), true));
        assertTrue(e.getMessage().contains("unknown personality 'qnx'") && e.getMessage().contains("kvm, hyperv"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MatrixPlan.of(List.of("kvm"), List.of("kvm.nope"), true));
        assertTrue(e.getMessage().contains("'kvm.nope'") && e.getMessage().contains("kvm.pv-send-ipi"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MatrixPlan.of(List.of("kvm"), List.of("xen.vcpu-info"), true));
        assertTrue(e.getMessage().contains("valid: kvm.clocksource"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> MatrixPlan.of(List.of(), List.of("nope.x"), true));
        assertTrue(e.getMessage().contains("kvm.clocksource") && e.getMessage().contains("vmware."), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }
}
