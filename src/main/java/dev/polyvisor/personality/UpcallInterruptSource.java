package dev.polyvisor.personality;

import dev.polyvisor.cpu.InterruptSource;

import java.util.List;

/**
 * A vCPU's interrupt line with a hypervisor upcall in front of its LAPIC. Xen's HVM callback vector
 * (HVM_PARAM_CALLBACK_IRQ type 2) is level-like: it is delivered whenever vcpu_info.evtchn_upcall_pending
 * is set and RFLAGS.IF=1, without entering the LAPIC's IRR or ISR, so the guest's handler
 * (sysvec_xen_hvm_callback, arch/x86/xen/enlighten_hvm.c) sends no EOI. KVM's host gives it priority over
 * the LAPIC (arch/x86/kvm/irq.c kvm_cpu_has_extint / kvm_cpu_get_extint, pv-abi.md 6.4); so does this.
 */
final class UpcallInterruptSource implements InterruptSource {
    private final int vcpu;
    private final List<Personality> upcalls;
    private final InterruptSource lapic;

    UpcallInterruptSource(int vcpu, List<Personality> upcalls, InterruptSource lapic) {
        this.vcpu = vcpu;
        this.upcalls = List.copyOf(upcalls);
        this.lapic = lapic;
    }

    private int pendingUpcall() {
        for (Personality p : upcalls) {
            int v = p.upcallVector();
            if (v != 0 && p.upcallPending(vcpu)) return v;
        }
        return -1;
    }

    @Override public boolean hasPending() { return pendingUpcall() >= 0 || lapic.hasPending(); }

    @Override
    public int acknowledge() {
        int v = pendingUpcall();
        return v >= 0 ? v : lapic.acknowledge();
    }
}
