package dev.polyvisor.cpu;

/**
 * MSR 0x8B, the microcode patch level: MSR_AMD64_PATCH_LEVEL on AMD (APM Vol. 2, Appendix A, "MSR
 * Cross-Reference"; BKDG "MSR0000_008B Patch Level"), the same address as Intel's IA32_BIOS_SIGN_ID
 * (SDM Vol. 4, Table 2-2). Every AMD part implements it and Linux reads it unguarded: from 6.12 on,
 * {@code microcode_loader_disabled()} calls {@code amd_check_current_patch_level()} on the boot CPU
 * whenever CPUID.1:ECX[31] is clear (arch/x86/kernel/cpu/microcode/core.c, amd.c), so without it a
 * bare-metal boot starts with "unchecked MSR access error: RDMSR from 0x8b".
 *
 * <p>The value is KVM's for AMD guests, 0x01000065 ({@code __svm_vcpu_reset}, arch/x86/kvm/svm/svm.c),
 * which is none of the patch levels Linux refuses to overwrite ({@code final_levels} in amd.c). A
 * guest's WRMSR is ignored, as KVM ignores it ({@code MSR_IA32_UCODE_REV} in
 * {@code kvm_set_msr_common}, arch/x86/kvm/x86.c: only the host may set it).
 */
final class PatchLevelMsr {
    static final int INDEX = 0x8B;
    static final long VALUE = 0x0100_0065L;

    private PatchLevelMsr() {}

    static boolean owns(int msr) { return msr == INDEX; }

    static long read() { return VALUE; }

    static void write(long ignored) {
        // Guest writes do not change the patch level (KVM: host-initiated writes only).
    }
}
