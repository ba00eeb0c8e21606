package dev.polyvisor.cpu.model;

/** The four CPUID output registers, in the order CPUID results are stored ({eax, ebx, ecx, edx}). */
public enum CpuidReg {
    EAX, EBX, ECX, EDX;

    public int index() { return ordinal(); }
}
