package dev.polyvisor.personality;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static dev.polyvisor.personality.FakeContext.*;
import static org.junit.jupiter.api.Assertions.*;

/** How the stack routes exits between stacked personalities (pv-abi.md 9). */
class StackRoutingTest {
    final TestVm vm = new TestVm(2);

    @AfterEach void close() { vm.close(); }

    @Test
    void bareRaisesUdOnVmcallAndClaimsNothing() {
        PersonalityStack s = vm.stack("bare");
        assertFalse(s.hypercall(new FakeContext(0).set(RAX, 5).vmcall()));
        assertInstanceOf(dev.polyvisor.personality.core.MsrAccess.NotHandled.class, s.rdmsr(0, 0x4b564d01));
        assertTrue(s.portIo(0x5658).isEmpty());
        assertEquals(Long.MAX_VALUE, s.nextDeadlineNs());
        assertFalse(s.consumeUnhalt(0));
    }

    @Test
    void vmcallGoesToThePersonalityAtTheHighestBaseOnATie() {
        // xen at 0x40000000, kvm at 0x40000100: Linux picks KVM, and so does the stack.
        PersonalityStack s = vm.stack("xen+kvm");
        FakeContext c = new FakeContext(0).set(RAX, 17).set(RBX, 0);
        assertTrue(s.hypercall(c.vmcall()));
        assertEquals(-1000, c.rax(), "hypercall 17 is unknown to KVM");
        PersonalityStack t = vm.stack("kvm+xen");
        FakeContext d = new FakeContext(0).set(RAX, 17).set(RDI, 0);
        assertTrue(t.hypercall(d.vmcall()));
        assertEquals(0x00040010, d.rax(), "Xen answers xen_version");
    }

    @Test
    void stackAggregatesKicksTimersAndUpcalls() {
        PersonalityStack s = vm.stack("hyperv+kvm");
        FakeContext kick = new FakeContext(0).set(RAX, 5).set(RCX, 1);
        s.hypercall(kick.vmcall());
        assertTrue(s.consumeUnhalt(1));
        assertFalse(s.consumeUnhalt(1));
        HypervPersonality h = s.find(HypervPersonality.class).orElseThrow();
        h.wrmsr(0, 0x400000B0, 1 | (0x30 << 4) | (1L << 12));
        h.wrmsr(0, 0x400000B1, vm.clock.now / 100 + 7);
        assertEquals((vm.clock.now / 100 + 7) * 100, s.nextDeadlineNs());
        s.onTick(s.nextDeadlineNs());
        assertTrue(vm.injector.events.contains("fixed 0 0x30"));
        assertFalse(s.upcallPending(0));
    }
}
