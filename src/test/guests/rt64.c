#include "rt64.h"

struct gate { u16 off0, sel; u8 ist, type; u16 off1; u32 off2, zero; };
static struct gate idt[256] __attribute__((aligned(16)));
static handler_t handlers[256];
volatile u64 fixup_rip, fault_vector, fault_error, fault_cr2, fault_rip;

/* 64-bit TSS (SDM Vol. 3A, 8.7): RSP0 for ring-3 -> ring-0 transitions, IST1 for #DF. */
static struct __attribute__((packed)) { u32 rsvd0; u64 rsp[3]; u64 rsvd1; u64 ist[7]; u64 rsvd2; u16 rsvd3, iomap; } tss;
static u8 rsp0_stack[16384] __attribute__((aligned(16)));
static u8 ist1_stack[8192] __attribute__((aligned(16)));
extern u64 gdt[];

extern char isr0[], isr1[], isr2[], isr3[], isr4[], isr5[], isr6[], isr7[], isr8[], isr9[], isr10[], isr11[],
    isr12[], isr13[], isr14[], isr15[], isr16[], isr17[], isr18[], isr19[], isr20[], isr21[], isr128[];
static char *const stubs[22] = {isr0, isr1, isr2, isr3, isr4, isr5, isr6, isr7, isr8, isr9, isr10, isr11,
    isr12, isr13, isr14, isr15, isr16, isr17, isr18, isr19, isr20, isr21};
extern char syscall_entry[];

static void set_gate(int vec, char *stub, int dpl, int ist) {
    u64 a = (u64)stub;
    idt[vec].off0 = (u16)a;
    idt[vec].sel = 0x08;
    idt[vec].ist = (u8)ist;
    idt[vec].type = (u8)(0x8E | (dpl << 5));  /* present 64-bit interrupt gate */
    idt[vec].off1 = (u16)(a >> 16);
    idt[vec].off2 = (u32)(a >> 32);
    idt[vec].zero = 0;
}

void set_gate_present(int vec, int present) {
    if (present) idt[vec].type |= 0x80; else idt[vec].type &= 0x7F;
}

static void default_handler(struct frame *f) {
    if (fixup_rip) {
        fault_vector = f->vector;
        fault_error = f->error;
        fault_rip = f->rip;
        fault_cr2 = f->vector == 14 ? read_cr2() : 0;
        f->rip = fixup_rip;
        return;
    }
    printf("unexpected exception %u error %lx at rip %lx\n", (u32)f->vector, f->error, f->rip);
    exit(2);
}

void set_handler(int vec, handler_t h, int dpl, int ist) {
    handlers[vec] = h;
    set_gate(vec, vec == 128 ? isr128 : stubs[vec], dpl, ist);
}

void isr_dispatch(struct frame *f) {
    handler_t h = handlers[f->vector];
    (h ? h : default_handler)(f);
}

static void exit_user_or_putc(struct frame *f) {
    /* INT 0x80 from ring 3: RAX=0 returns to the kernel with RDI; RAX=1 prints RDI's low byte. */
    if (f->rax == 0) {
        f->rax = f->rdi;
        f->rip = (u64)user_return;
        f->cs = 0x08;
        f->ss = 0x10;
        f->rflags = 0x2;
    } else if (f->rax == 1) {
        putc((char)f->rdi);
    }
}

void rt64_init(void) {
    u64 base = (u64)&tss;
    tss.rsp[0] = (u64)(rsp0_stack + sizeof rsp0_stack);
    tss.ist[0] = (u64)(ist1_stack + sizeof ist1_stack);
    tss.iomap = sizeof tss;
    u64 limit = sizeof tss - 1;
    gdt[6] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ULL << 40) | (((base >> 24) & 0xFF) << 56);
    gdt[7] = base >> 32;
    __asm__ volatile("ltr %w0" :: "r"(0x30));
    for (int v = 0; v < 22; v++) set_gate(v, stubs[v], 0, v == 8 ? 1 : 0);
    set_handler(128, exit_user_or_putc, 3, 0);
    struct __attribute__((packed)) { u16 limit; u64 base; } idtr = {sizeof idt - 1, (u64)idt};
    __asm__ volatile("lidt %0" :: "m"(idtr));
    /* SYSCALL/SYSRET (AMD APM Vol. 2, 6.1.1): STAR[47:32] kernel CS, STAR[63:48] user CS base (0x18). */
    wrmsr(0xC0000081, (0x18ULL << 48) | (0x08ULL << 32));
    wrmsr(0xC0000082, (u64)syscall_entry);
    wrmsr(0xC0000084, 0x200);                  /* SFMASK: clear IF on entry */
}

/* ---- 4 KiB page tables for [1 GiB, 2 GiB) ---- */
extern u64 pdpt[];
static u64 pd1[512] __attribute__((aligned(4096)));
static u64 pts[4][512] __attribute__((aligned(4096)));

u64 *pte_of(u64 va) {
    u64 off = va - MAP_BASE;
    int pde = (int)(off >> 21), pte = (int)((off >> 12) & 511);
    if (pde >= 4) { printf("pte_of: %lx outside the test window\n", va); exit(2); }
    if (!(pdpt[1] & 1)) pdpt[1] = (u64)pd1 | 7;
    if (!(pd1[pde] & 1)) pd1[pde] = (u64)pts[pde] | 7;
    return &pts[pde][pte];
}

void map_page(u64 va, u64 pa, u64 flags) {
    *pte_of(va) = pa | flags;
    invlpg(va);
}

/* Guests without system calls of their own get this one (user.c defines the real one). */
__attribute__((weak)) u64 syscall_dispatch(u64 nr, u64 arg, u64 user_rflags) {
    (void)arg; (void)user_rflags;
    printf("unexpected SYSCALL %lx\n", nr);
    exit(2);
}
