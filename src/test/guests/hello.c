/* (a) hello: the smallest multiboot guest. Prints a greeting and what the loader passed. */
#include "rt.h"

struct mbi { u32 flags, mem_lower, mem_upper, boot_device, cmdline; };

int main(u32 magic, struct mbi *mbi) {
    puts("Hello from a freestanding multiboot guest\n");
    printf("magic %x\n", magic);
    if (magic != 0x2BADB002) return 1;
    if (mbi->flags & 4) printf("cmdline: %s\n", (const char *)(uptr)mbi->cmdline);
    if (mbi->flags & 1) printf("memory: %u KiB low, %u KiB high\n", mbi->mem_lower, mbi->mem_upper);
    return 0;
}
