/* (f) self-modifying code: instructions rewritten through a second virtual mapping of the same
 * physical page (as Linux's text_poke does) and by a store just before the modified instruction. */
#include "rt64.h"

static u8 code[4096] __attribute__((aligned(4096)));
#define XVA (MAP_BASE + 0x20000)   /* executable alias */
#define WVA (MAP_BASE + 0x21000)   /* writable alias, not executable */

typedef u32 (*fn_t)(void);

static void emit_ret_imm(volatile u8 *p, u32 v) {
    p[0] = 0xB8;                   /* mov eax, imm32 */
    p[1] = (u8)v; p[2] = (u8)(v >> 8); p[3] = (u8)(v >> 16); p[4] = (u8)(v >> 24);
    p[5] = 0xC3;                   /* ret */
}

int main(void) {
    map_page(XVA, (u64)code, PTE_P);
    map_page(WVA, (u64)code, PTE_P | PTE_RW | PTE_NX);
    fn_t f = (fn_t)XVA;
    emit_ret_imm((volatile u8 *)WVA, 1);
    u32 a = f();
    emit_ret_imm((volatile u8 *)WVA, 2);
    u32 b = f();
    printf("through the alias: %u then %u\n", a, b);
    check(a == 1 && b == 2, "code rewritten through a second mapping is re-decoded");

    u32 sum = 0;
    for (u32 i = 0; i < 100; i++) {
        ((volatile u8 *)WVA)[1] = (u8)i;
        sum += f();
    }
    check(sum == 4950, "a hot rewritten function always runs its newest bytes");

    /* The store patches the immediate of the very next instruction (no jump in between). */
    u32 r;
    __asm__ volatile("movb $0x7b, 1f+1(%%rip)\n\t"
                     "1: mov $0x11, %%eax\n\t"
                     : "=a"(r) :: "memory");
    printf("patched next instruction: %u\n", r);
    check(r == 0x7b, "a store into the next instruction takes effect");
    finish();
}
