package dev.polyvisor.personality;

import dev.polyvisor.personality.core.AbiElement;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class AbiCatalogTest {
    @Test
    void renderListsEveryElementWithNumbersEffectAndSource() {
        String kvm = AbiCatalog.render("kvm");
        for (AbiElement e : AbiCatalog.contract("kvm").elements()) {
            assertTrue(kvm.contains(e.id()), e.id());
            assertTrue(kvm.contains(e.source()), e.id());
            assertFalse(e.enables().isBlank(), e.id());
            assertFalse(e.source().isBlank(), e.id());
        }
        assertTrue(kvm.contains("kvm.pv-eoi") && kvm.contains("MSR 0x4b564d04"));
        assertTrue(AbiCatalog.render(null).contains("bare (0 elements)"));
        assertThrows(IllegalArgumentException.class, () -> AbiCatalog.render("nope"));
    }

    @Test
    void everyElementHasAMechanismToSwitchOff() {
        for (String p : AbiCatalog.names())
            for (AbiElement e : AbiCatalog.contract(p).elements())
                assertFalse(e.cpuidBits().isEmpty() && e.msrs().isEmpty() && e.hypercalls().isEmpty()
                        && !e.kind().equals(AbiElement.Kind.PORT) && !e.kind().equals(AbiElement.Kind.FEATURE_BIT) && !e.kind().equals(AbiElement.Kind.SHARED_STRUCTURE),
                        e.id() + " has nothing --abi-disable could remove");
    }
}
