/* rt64: 64-bit runtime for test guests (long mode, identity map of the first 1 GiB). */
#ifndef RT64_H
#define RT64_H
#include "rt.h"

struct frame {
    u64 r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    u64 vector, error, rip, cs, rflags, rsp, ss;
};
typedef void (*handler_t)(struct frame *);

/* Installs a handler; with dpl 3 the vector may be raised by INT n from ring 3. ist: 0 or 1. */
void set_handler(int vec, handler_t h, int dpl, int ist);
/* Sets or clears the Present bit of an IDT gate (to provoke #NP/#DF). */
void set_gate_present(int vec, int present);

/* The default handler: when fixup_rip is set, records the fault and resumes there. */
extern volatile u64 fixup_rip, fault_vector, fault_error, fault_cr2, fault_rip;
int probe_read(u64 addr);
int probe_write(u64 addr, u8 value);
int probe_exec(u64 addr);
int probe_div0(void);
extern char probe_div0_insn[];

u64 enter_user(void (*fn)(void), u64 user_rsp);
extern char user_return[];

/* 4 KiB mappings in the window [1 GiB, 2 GiB): flags are PTE bits (P=1, RW=2, US=4, NX=1<<63). */
#define PTE_P 1ULL
#define PTE_RW 2ULL
#define PTE_US 4ULL
#define PTE_A 0x20ULL
#define PTE_D 0x40ULL
#define PTE_NX (1ULL << 63)
#define MAP_BASE 0x40000000ULL
u64 *pte_of(u64 va);
void map_page(u64 va, u64 pa, u64 flags);

static inline u64 read_cr0(void) { u64 v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline void write_cr0(u64 v) { __asm__ volatile("mov %0, %%cr0" :: "r"(v) : "memory"); }
static inline u64 read_cr2(void) { u64 v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline u64 read_cr3(void) { u64 v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline void write_cr3(u64 v) { __asm__ volatile("mov %0, %%cr3" :: "r"(v) : "memory"); }
static inline void invlpg(u64 va) { __asm__ volatile("invlpg (%0)" :: "r"(va) : "memory"); }
static inline u64 rdmsr(u32 msr) { u32 lo, hi; __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr)); return ((u64)hi << 32) | lo; }
static inline void wrmsr(u32 msr, u64 v) { __asm__ volatile("wrmsr" :: "c"(msr), "a"((u32)v), "d"((u32)(v >> 32))); }
static inline u16 read_cs(void) { u16 v; __asm__ volatile("mov %%cs, %0" : "=r"(v)); return v; }
#endif
