package dev.polyvisor.personality;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

class PersonalityStackTest {
    static String error(String spec, String... disabled) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PersonalityStack.parse(spec, List.of(disabled)));
        assertFalse(e.getMessage().contains("\n"), "one-line error");
        return e.getMessage();
    }

    @Test
    void unknownNamesAndElementsGiveOneLineErrors() {
        assertTrue(error("kvmm").startsWith("unknown personality 'kvmm' (known: bare, kvm"));
        assertTrue(error("").startsWith("empty personality spec"));
        assertTrue(error("kvm+").contains("empty personality name"));
        assertTrue(error("kvm+kvm").contains("appears twice"));
        assertTrue(error("bare+kvm").contains("'bare' cannot be stacked"));
        assertEquals("unknown ABI element 'kvm.pv-eio' (see 'polyvisor abi list')", error("kvm", "kvm.pv-eio"));
        assertTrue(error("kvm:base=0x40000010").contains("in steps of 0x100"));
        assertTrue(error("kvm:base=zz").contains("bad CPUID base"));
        assertTrue(error("kvm:colour=red").contains("unknown option 'colour'"));
    }

    @Test
    void disabledIdsGoToTheirPersonality() {
        List<PersonalityConfig> c = PersonalityStack.parse("kvm", List.of("kvm.pv-eoi,kvm.steal-time", "kvm.pv-unhalt"));
        assertEquals(1, c.size());
        assertEquals(Set.of("kvm.pv-eoi", "kvm.steal-time", "kvm.pv-unhalt"), c.get(0).disabled());
        assertEquals(0x40000000, c.get(0).base());
    }
}
