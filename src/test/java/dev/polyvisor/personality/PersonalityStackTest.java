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
        assertTrue(error("vmware:backdoor=smoke").contains("vmware backdoor must be port, vmcall or vmmcall"));
        assertTrue(error("hyperv+kvm:base=0x40000000").contains("two personalities at CPUID base 0x40000000"));
        assertTrue(error("xen", "kvm.pv-eoi").contains("belongs to kvm, which is not in 'xen'"));
    }

    @Test
    void stackedBasesFollowTheOrderOfTheSpec() {
        List<PersonalityConfig> c = PersonalityStack.parse("hyperv + xen:base=0x40000200 + kvm", List.of());
        assertEquals(List.of("hyperv", "xen", "kvm"), c.stream().map(PersonalityConfig::name).toList());
        assertEquals(List.of(0x40000000, 0x40000200, 0x40000300), c.stream().map(PersonalityConfig::base).toList());
    }

    @Test
    void disabledIdsGoToTheirPersonality() {
        List<PersonalityConfig> c = PersonalityStack.parse("kvm", List.of("kvm.pv-eoi,kvm.steal-time", "kvm.pv-unhalt"));
        assertEquals(1, c.size());
        assertEquals(Set.of("kvm.pv-eoi", "kvm.steal-time", "kvm.pv-unhalt"), c.get(0).disabled());
        assertEquals(0x40000000, c.get(0).base());
    }
}
