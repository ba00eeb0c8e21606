/* The bundled guest of `polyvisor run --boot multiboot` (no --kernel): a freestanding multiboot
 * kernel that reports what the virtual machine looks like from inside (CPUID vendor and brand, the
 * memory and command line from the boot loader) on COM1, then powers the machine off through the
 * ACPI PM1a control register at port 0x604: SLP_EN with SLP_TYP 5 (Polyvisor's DSDT \_S5), then with
 * SLP_TYP 0 (QEMU's \_S5, which ignores type 5), so the same image powers off on both. */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

struct mbi { u32 flags, mem_lower, mem_upper, boot_device, cmdline; };

static inline void outb(u16 p, u8 v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outw(u16 p, u16 v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(p)); }
static inline u8 inb(u16 p) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline void cpuid(u32 leaf, u32 r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

static void putc(char c) {
    if (c == '\n') putc('\r');
    while (!(inb(0x3FD) & 0x20)) { }
    outb(0x3F8, (u8)c);
}
static void puts(const char *s) { while (*s) putc(*s++); }
static void putu(u32 v) { char b[11]; int i = 10; b[i] = 0; do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v); puts(&b[i]); }

void main(u32 magic, struct mbi *mbi) {
    puts("Polyvisor freestanding guest: a small multiboot kernel (polyvisor run --boot multiboot)\n");
    if (magic != 0x2BADB002) { puts("not started by a multiboot loader\n"); return; }
    u32 r[4];
    char vendor[13];
    cpuid(0, r);
    *(u32 *)&vendor[0] = r[1]; *(u32 *)&vendor[4] = r[3]; *(u32 *)&vendor[8] = r[2]; vendor[12] = 0;
    puts("cpu: "); puts(vendor);
    cpuid(0x80000000, r);
    if (r[0] >= 0x80000004) {
        char brand[49];
        for (u32 i = 0; i < 3; i++) {
            cpuid(0x80000002 + i, r);
            for (int j = 0; j < 4; j++) *(u32 *)&brand[16 * i + 4 * j] = r[j];
        }
        brand[48] = 0;
        puts(", "); puts(brand);
    }
    cpuid(1, r);
    puts(r[2] & (1u << 31) ? ", hypervisor bit set\n" : ", no hypervisor bit\n");
    if (mbi->flags & 1) { puts("memory: "); putu((mbi->mem_upper + 1024) / 1024); puts(" MiB\n"); }
    if (mbi->flags & 4) { puts("command line: "); puts((const char *)mbi->cmdline); puts("\n"); }
    puts("powering off\n");
    outw(0x604, 0x2000 | (5 << 10));
    outw(0x604, 0x2000);
}
