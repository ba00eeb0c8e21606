/* (g) benchmark guest: runs bench_run(rounds) and prints the checksum. The command line may say
 * "rounds=N" (default 4). */
#include "rt64.h"
#include "bench_core.c"

struct mbi { u32 flags, mem_lower, mem_upper, boot_device, cmdline; };

static u32 parse_rounds(const char *s) {
    for (; *s; s++) {
        if (s[0] == 'r' && s[1] == 'o' && s[2] == 'u' && s[3] == 'n' && s[4] == 'd' && s[5] == 's' && s[6] == '=') {
            u32 v = 0;
            for (s += 7; *s >= '0' && *s <= '9'; s++) v = v * 10 + (u32)(*s - '0');
            return v;
        }
    }
    return 4;
}

int main(u32 magic, struct mbi *mbi) {
    u32 rounds = (magic == 0x2BADB002 && (mbi->flags & 4)) ? parse_rounds((const char *)(uptr)mbi->cmdline) : 4;
    printf("bench: %u rounds\n", rounds);
    u64 sum = bench_run(rounds);
    printf("checksum %lx\n", sum);
    return 0;
}
