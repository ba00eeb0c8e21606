/*
 * Host side of the differential CPU oracle (dev.polyvisor.cpu.oracle.HostCpuOracleTest).
 *
 * Reads batches of test cases from stdin, runs each case's instruction bytes natively and writes one
 * result per case to stdout. Protocol (all little-endian): a u32 case count (0 = exit), then that many
 * 1616-byte struct in_case records; the reply is the same number of 1592-byte struct out_case records.
 * The whole batch is read before any result is written, so the parent can write a batch and then read
 * without deadlocking on the pipes.
 *
 * Each case: the instruction is copied to a fixed RWX code page followed by "jmp [rip+0]" back into
 * the stub below; the x87 state (FXRSTOR), all 16 GPRs (RSP included), the arithmetic flags and DF,
 * XMM0-15 and MXCSR are loaded; the instruction runs; everything is stored again. A fault (SIGSEGV, SIGILL, SIGFPE, SIGBUS,
 * SIGTRAP) is caught on an alternate signal stack (RSP may hold anything), the architectural vector is
 * taken from the kernel's sigcontext (trapno) and the registers at the fault from the ucontext.
 *
 * out_case.dirty: bit 0 = the data page changed outside the window, bit 1 = the code page changed.
 *
 * in_case.mode 1 runs the case in 32-bit compatibility mode, as a 32-bit Linux process runs (CS 0x23:
 * D=1, L=0; DS = ES = SS = 0x2b): the stub loads DS/ES with 0x2b (a 64-bit process has null DS/ES, which
 * fault in compatibility mode), loads the registers as for a 64-bit case and enters the code through
 * "ljmp *" (m16:32, selector 0x23). The instruction is followed by "jmp far 0x33:TRAMP" (EA ptr16:32,
 * valid in compatibility mode), which returns to 64-bit mode at a trampoline in the same page that does
 * "jmp [rip+0]" to native_return. native_return restores its own RSP from memory: the upper halves of the
 * GPRs are undefined after compatibility mode (SDM Vol. 1, 3.4.1.1; this host zeroes RSP's), so only
 * their low 32 bits are meaningful, and R8-R15 are not compared. The data page is also mapped at
 * LOW_ADDR (a second view of the same memfd) so that 16-bit addressing (67 prefix, offsets below 64 KiB)
 * reaches the compared window; vm.mmap_min_addr must allow it (the Java side checks).
 *
 * The code page and the data page sit at fixed linear addresses that the emulator maps identically,
 * so register values that are addresses compare equal on both sides.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define CODE_ADDR 0x10000000UL
#define DATA_ADDR 0x20000000UL
#define CODE_OFF 0x100
#define WIN_OFF 0x600
#define WIN_LEN 1024
#define PAGE 4096
#define NO_TRAP 0xFFFFFFFFu
#define TRAILER 21 /* bytes after the code that belong to the return jump (see run_case) */
#define LOW_ADDR 0x7000UL     /* alias of the data page, reachable with 16-bit addresses */
#define TRAMP_OFF 0xF00       /* compatibility mode: 64-bit trampoline back to native_return */
#define USER32_CS 0x23
#define USER_CS 0x33
#define USER_DS 0x2b

/* x87 state in FXSAVE terms: abridged tag (bit per physical register), ST(i) in stack order. */
struct x87 {
    uint16_t fcw;
    uint16_t fsw;
    uint8_t ftw;
    uint8_t pad[3];
    uint8_t st[8][16]; /* 80-bit value in bytes 0..9 */
};

struct in_case {
    uint8_t len;        /* bytes of code: one instruction, or a short sequence (at most 32 bytes) */
    uint8_t mode;       /* 0: 64-bit mode; 1: 32-bit compatibility mode (CS 0x23) */
    uint8_t pad[22];    /* keeps gpr..mem at the same offsets as in struct out_case */
    uint64_t gpr[16];
    uint64_t rflags;
    uint32_t mxcsr;
    uint32_t pad2;
    uint8_t xmm[256];
    uint8_t mem[WIN_LEN];
    uint8_t code[32];
    struct x87 x87;
};

struct out_case {
    uint32_t trapno;
    uint32_t err;
    uint64_t addr;
    uint64_t rip;
    uint64_t gpr[16];
    uint64_t rflags;
    uint32_t mxcsr;
    uint32_t dirty;
    uint8_t xmm[256];
    uint8_t mem[WIN_LEN];
    struct x87 x87;
    uint64_t page_hash; /* FNV-1a of the whole data page after the instruction */
};

/* The stub below hard-codes these offsets. */
_Static_assert(sizeof(struct in_case) == 1616, "in_case size");
_Static_assert(sizeof(struct out_case) == 1592, "out_case size");
_Static_assert(offsetof(struct in_case, gpr) == 24 && offsetof(struct out_case, gpr) == 24, "gpr");
_Static_assert(offsetof(struct in_case, rflags) == 152 && offsetof(struct out_case, rflags) == 152, "rflags");
_Static_assert(offsetof(struct in_case, mxcsr) == 160 && offsetof(struct out_case, mxcsr) == 160, "mxcsr");
_Static_assert(offsetof(struct in_case, xmm) == 168 && offsetof(struct out_case, xmm) == 168, "xmm");

struct in_case g_in;
struct out_case g_out;
uint64_t g_saved_rsp;
uint64_t g_code_ptr;
/* m16:32 far pointer for "ljmp *" into compatibility mode: offset, then selector 0x23. */
struct __attribute__((packed)) { uint32_t off; uint16_t sel; } g_far_ptr;
uint32_t g_default_mxcsr = 0x1F80;

void run_native(void);
void native_return(void);
void signal_entry(int, siginfo_t *, void *);
void compat_enter(void);

__asm__(
    ".text\n"
    ".globl run_native\n"
    "run_native:\n"
    "  push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
    "  mov %rsp, g_saved_rsp(%rip)\n"
    "  ldmxcsr g_in+160(%rip)\n"
    "  movdqu g_in+168(%rip), %xmm0\n  movdqu g_in+184(%rip), %xmm1\n"
    "  movdqu g_in+200(%rip), %xmm2\n  movdqu g_in+216(%rip), %xmm3\n"
    "  movdqu g_in+232(%rip), %xmm4\n  movdqu g_in+248(%rip), %xmm5\n"
    "  movdqu g_in+264(%rip), %xmm6\n  movdqu g_in+280(%rip), %xmm7\n"
    "  movdqu g_in+296(%rip), %xmm8\n  movdqu g_in+312(%rip), %xmm9\n"
    "  movdqu g_in+328(%rip), %xmm10\n movdqu g_in+344(%rip), %xmm11\n"
    "  movdqu g_in+360(%rip), %xmm12\n movdqu g_in+376(%rip), %xmm13\n"
    "  movdqu g_in+392(%rip), %xmm14\n movdqu g_in+408(%rip), %xmm15\n"
    "  pushq g_in+152(%rip)\n"
    "  popfq\n"
    /* MOV does not touch the flags. RSP is loaded last: nothing below uses the stack. */
    "  mov g_in+24(%rip), %rax\n  mov g_in+32(%rip), %rcx\n  mov g_in+40(%rip), %rdx\n"
    "  mov g_in+48(%rip), %rbx\n  mov g_in+64(%rip), %rbp\n  mov g_in+72(%rip), %rsi\n"
    "  mov g_in+80(%rip), %rdi\n  mov g_in+88(%rip), %r8\n   mov g_in+96(%rip), %r9\n"
    "  mov g_in+104(%rip), %r10\n mov g_in+112(%rip), %r11\n mov g_in+120(%rip), %r12\n"
    "  mov g_in+128(%rip), %r13\n mov g_in+136(%rip), %r14\n mov g_in+144(%rip), %r15\n"
    "  mov g_in+56(%rip), %rsp\n"
    "  jmp *g_code_ptr(%rip)\n"
    /* Compatibility-mode cases: g_code_ptr points here (nothing between changes flags or registers). */
    ".globl compat_enter\n"
    "compat_enter:\n"
    "  ljmpl *g_far_ptr(%rip)\n"
    ".globl native_return\n"
    "native_return:\n"
    "  mov %rsp, g_out+56(%rip)\n"
    "  mov g_saved_rsp(%rip), %rsp\n"
    "  pushfq\n"
    "  popq g_out+152(%rip)\n"
    /* A POPF or IRET under test may have set AC (alignment checking is on at CPL 3: Linux sets CR0.AM):
       clear it before any C code runs. POPF at CPL 3 leaves IF alone. */
    "  pushq $2\n"
    "  popfq\n"
    "  mov %rax, g_out+24(%rip)\n  mov %rcx, g_out+32(%rip)\n  mov %rdx, g_out+40(%rip)\n"
    "  mov %rbx, g_out+48(%rip)\n  mov %rbp, g_out+64(%rip)\n  mov %rsi, g_out+72(%rip)\n"
    "  mov %rdi, g_out+80(%rip)\n  mov %r8, g_out+88(%rip)\n   mov %r9, g_out+96(%rip)\n"
    "  mov %r10, g_out+104(%rip)\n mov %r11, g_out+112(%rip)\n mov %r12, g_out+120(%rip)\n"
    "  mov %r13, g_out+128(%rip)\n mov %r14, g_out+136(%rip)\n mov %r15, g_out+144(%rip)\n"
    "  movdqu %xmm0, g_out+168(%rip)\n  movdqu %xmm1, g_out+184(%rip)\n"
    "  movdqu %xmm2, g_out+200(%rip)\n  movdqu %xmm3, g_out+216(%rip)\n"
    "  movdqu %xmm4, g_out+232(%rip)\n  movdqu %xmm5, g_out+248(%rip)\n"
    "  movdqu %xmm6, g_out+264(%rip)\n  movdqu %xmm7, g_out+280(%rip)\n"
    "  movdqu %xmm8, g_out+296(%rip)\n  movdqu %xmm9, g_out+312(%rip)\n"
    "  movdqu %xmm10, g_out+328(%rip)\n movdqu %xmm11, g_out+344(%rip)\n"
    "  movdqu %xmm12, g_out+360(%rip)\n movdqu %xmm13, g_out+376(%rip)\n"
    "  movdqu %xmm14, g_out+392(%rip)\n movdqu %xmm15, g_out+408(%rip)\n"
    "  stmxcsr g_out+160(%rip)\n"
    "  ldmxcsr g_default_mxcsr(%rip)\n"
    "  cld\n"
    "  pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
    "  ret\n");

/* The signal handler's entry: Linux does not clear AC on signal delivery (only DF, RF and TF), and a case
   may have set it (POPF, IRET): clear it before any C code runs. The push/pop leaves RSP as the kernel set it. */
__asm__(
    ".text\n"
    ".globl signal_entry\n"
    "signal_entry:\n"
    "  pushfq\n"
    "  andl $~0x40000, (%rsp)\n"
    "  popfq\n"
    "  jmp on_signal\n");

static uint8_t g_fx_template[512] __attribute__((aligned(64)));
static uint8_t g_fx_in[512] __attribute__((aligned(64)));
static uint8_t g_fx_out[512] __attribute__((aligned(64)));

static void x87_from_fxsave(struct x87 *x, const uint8_t *fx) {
    memcpy(&x->fcw, fx + 0, 2);
    memcpy(&x->fsw, fx + 2, 2);
    x->ftw = fx[4];
    for (int i = 0; i < 8; i++) {
        memset(x->st[i], 0, 16);
        memcpy(x->st[i], fx + 32 + 16 * i, 10);
    }
}

static sigjmp_buf g_jmp;
static volatile sig_atomic_t g_in_case;
static uint8_t g_pattern[PAGE];

/* sigcontext GPR order -> architectural register numbers 0..15 (RAX RCX RDX RBX RSP RBP RSI RDI R8..R15). */
static const int GREG_OF[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
                                REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};

void on_signal(int sig, siginfo_t *si, void *ctx) {
    if (!g_in_case) _exit(100 + sig);
    ucontext_t *uc = ctx;
    greg_t *g = uc->uc_mcontext.gregs;
    g_out.trapno = (uint32_t) g[REG_TRAPNO];
    g_out.err = (uint32_t) g[REG_ERR];
    g_out.addr = g_out.trapno == 14 ? (uint64_t) si->si_addr : 0;
    g_out.rip = (uint64_t) g[REG_RIP];
    for (int i = 0; i < 16; i++) g_out.gpr[i] = (uint64_t) g[GREG_OF[i]];
    g_out.rflags = (uint64_t) g[REG_EFL];
    if (uc->uc_mcontext.fpregs) {
        g_out.mxcsr = uc->uc_mcontext.fpregs->mxcsr;
        memcpy(g_out.xmm, uc->uc_mcontext.fpregs->_xmm, 256);
        /* The signal frame's FP area starts with the FXSAVE image of the interrupted state. */
        x87_from_fxsave(&g_out.x87, (const uint8_t *) uc->uc_mcontext.fpregs);
    }
    g_in_case = 0;
    siglongjmp(g_jmp, 1);
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void read_full(void *buf, size_t n) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = read(0, p, n);
        if (r <= 0) exit(r == 0 ? 0 : 3);
        p += r;
        n -= (size_t) r;
    }
}

static void write_full(const void *buf, size_t n) {
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = write(1, p, n);
        if (w <= 0) exit(4);
        p += w;
        n -= (size_t) w;
    }
}

/* DS and ES of this 64-bit process are null; a 32-bit process has USER_DS in both. */
static void set_data_segments(unsigned sel) {
    __asm__ volatile("mov %0, %%ds\n mov %0, %%es" : : "r"(sel));
}

static void run_case(const struct in_case *in, struct out_case *out) {
    uint8_t *code = (uint8_t *) CODE_ADDR;
    uint8_t *data = (uint8_t *) DATA_ADDR;
    memcpy(&g_in, in, sizeof g_in);
    unsigned len = in->len > 32 ? 32 : in->len;
    int compat = in->mode == 1;
    /* The whole code page is rebuilt every case (an earlier case may have written into it). */
    static uint8_t img[PAGE];
    memset(img, 0xCC, PAGE);
    memcpy(img + CODE_OFF, in->code, len);
    /* jmp qword [rip+pad] ; int3 x pad ; dq native_return -- the pointer 8-aligned, so that the jump cannot
       raise #AC when the instruction under test set RFLAGS.AC (TRAILER bytes at most). */
    uint64_t ret = (uint64_t) (uintptr_t) &native_return;
    unsigned toff = compat ? TRAMP_OFF : CODE_OFF + len;
    uint8_t *t = img + toff;
    unsigned pad = (8 - (toff + 6) % 8) % 8;
    t[0] = 0xFF; t[1] = 0x25; t[2] = (uint8_t) pad; t[3] = t[4] = t[5] = 0;
    memcpy(t + 6 + pad, &ret, 8);
    if (compat) {
        /* jmp far 0x33:CODE_ADDR+TRAMP_OFF (EA ptr16:32) back to 64-bit mode */
        uint8_t *f = img + CODE_OFF + len;
        uint32_t tramp = (uint32_t) (CODE_ADDR + TRAMP_OFF);
        f[0] = 0xEA;
        memcpy(f + 1, &tramp, 4);
        f[5] = USER_CS; f[6] = 0;
    }
    memcpy(code, img, PAGE);
    memcpy(data + WIN_OFF, in->mem, WIN_LEN);
    memset(&g_out, 0, sizeof g_out);
    g_out.trapno = NO_TRAP;
    g_code_ptr = compat ? (uint64_t) (uintptr_t) &compat_enter : CODE_ADDR + CODE_OFF;
    g_far_ptr.off = (uint32_t) (CODE_ADDR + CODE_OFF);
    g_far_ptr.sel = USER32_CS;
    /* x87 state goes in through FXRSTOR (XMM and MXCSR from the image are replaced by the stub). */
    memcpy(g_fx_in, g_fx_template, 512);
    memcpy(g_fx_in + 0, &in->x87.fcw, 2);
    memcpy(g_fx_in + 2, &in->x87.fsw, 2);
    g_fx_in[4] = in->x87.ftw;
    g_fx_in[5] = 0;
    memset(g_fx_in + 6, 0, 18); /* FOP, FIP, FDP */
    for (int i = 0; i < 8; i++) {
        memset(g_fx_in + 32 + 16 * i, 0, 16);
        memcpy(g_fx_in + 32 + 16 * i, in->x87.st[i], 10);
    }
    if (sigsetjmp(g_jmp, 1) == 0) {
        g_in_case = 1;
        __asm__ volatile("fxrstor64 %0" : : "m"(*(uint8_t (*)[512]) g_fx_in));
        if (compat) set_data_segments(USER_DS);
        run_native();
        if (compat) set_data_segments(0);
        __asm__ volatile("fxsave64 %0" : "=m"(*(uint8_t (*)[512]) g_fx_out));
        g_in_case = 0;
        x87_from_fxsave(&g_out.x87, g_fx_out);
        g_out.rip = CODE_ADDR + CODE_OFF + len;
    } else {
        __asm__ volatile("ldmxcsr %0" : : "m"(g_default_mxcsr));
        if (compat) set_data_segments(0);
    }
    /* A case may have loaded DS, ES or SS (MOV Sreg, LSS; never FS/GS, which hold the TLS base): back to the
       selectors of a 64-bit Linux process (DS = ES = 0, SS = __USER_DS). */
    __asm__ volatile("mov %0, %%ds\n mov %0, %%es\n mov %1, %%ss" : : "r"(0), "r"(0x2b));
    memcpy(g_out.mem, data + WIN_OFF, WIN_LEN);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < PAGE; i++) h = (h ^ data[i]) * 0x100000001b3ULL;
    g_out.page_hash = h;
    /* Writes outside the compared window are reported as one bit; the page is then restored. */
    if (memcmp(data, g_pattern, WIN_OFF) != 0
            || memcmp(data + WIN_OFF + WIN_LEN, g_pattern + WIN_OFF + WIN_LEN, PAGE - WIN_OFF - WIN_LEN) != 0) {
        g_out.dirty |= 1;
        memcpy(data, g_pattern, PAGE);
    }
    /* Bit 1: the instruction wrote to the code page. Outside the trailer only: the trailer's target
       address is a host address the emulator does not know. */
    if (memcmp(code, img, CODE_OFF + len) != 0
            || (compat ? memcmp(code + CODE_OFF + len + 14, img + CODE_OFF + len + 14, TRAMP_OFF - CODE_OFF - len - 14) != 0
                    || memcmp(code + TRAMP_OFF + TRAILER, img + TRAMP_OFF + TRAILER, PAGE - TRAMP_OFF - TRAILER) != 0
                : memcmp(code + CODE_OFF + len + TRAILER, img + CODE_OFF + len + TRAILER, PAGE - CODE_OFF - len - TRAILER) != 0))
        g_out.dirty |= 2;
    memcpy(out, &g_out, sizeof g_out);
}

int main(void) {
    void *c = mmap((void *) CODE_ADDR, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (c != (void *) CODE_ADDR) die("mmap code page");
    /* The data page is a memfd mapped twice: at DATA_ADDR and, for 16-bit addressing, at LOW_ADDR. */
    int fd = memfd_create("oracle-data", 0);
    if (fd < 0 || ftruncate(fd, PAGE) != 0) die("memfd data page");
    void *d = mmap((void *) DATA_ADDR, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
    if (d != (void *) DATA_ADDR) die("mmap data page");
    void *low = mmap((void *) LOW_ADDR, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
    if (low != (void *) LOW_ADDR)
        fprintf(stderr, "oracle_harness: cannot map the 16-bit window at 0x%lx (vm.mmap_min_addr?)\n", LOW_ADDR);
    memset(c, 0xCC, PAGE);
    __asm__ volatile("fninit; fxsave64 %0" : "=m"(*(uint8_t (*)[512]) g_fx_template));
    memcpy(g_fx_template + 24, &g_default_mxcsr, 4);
    for (int i = 0; i < PAGE; i++) g_pattern[i] = (uint8_t) (i * 131 + 7);
    memcpy(d, g_pattern, PAGE);

    stack_t ss;
    ss.ss_sp = malloc(1 << 16);
    ss.ss_size = 1 << 16;
    ss.ss_flags = 0;
    if (!ss.ss_sp || sigaltstack(&ss, NULL) != 0) die("sigaltstack");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = signal_entry;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGTRAP};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0) die("sigaction");

    struct in_case *ins = NULL;
    struct out_case *outs = NULL;
    uint32_t cap = 0;
    for (;;) {
        uint32_t n;
        read_full(&n, 4);
        if (n == 0) return 0;
        if (n > 1000000) exit(5);
        if (n > cap) {
            cap = n;
            ins = realloc(ins, (size_t) cap * sizeof *ins);
            outs = realloc(outs, (size_t) cap * sizeof *outs);
            if (!ins || !outs) die("realloc");
        }
        read_full(ins, (size_t) n * sizeof *ins);
        alarm(30); /* a hung case kills the harness; the parent reports EOF */
        for (uint32_t i = 0; i < n; i++) run_case(&ins[i], &outs[i]);
        alarm(0);
        write_full(outs, (size_t) n * sizeof *outs);
    }
}
