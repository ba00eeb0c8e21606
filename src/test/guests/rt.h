/* Freestanding runtime shared by the test guests (32-bit rt32 and 64-bit rt64 builds).
 * Console: COM1 (0x3F8) polled on LSR.THRE; exit: QEMU isa-debug-exit at 0xf4 (status (v<<1)|1). */
#ifndef RT_H
#define RT_H
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned long uptr;

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }

void putc(char c);
void puts(const char *s);              /* no newline added */
void put_hex(u64 v);                   /* 0x-prefixed, minimal digits */
void put_dec(u64 v);
void printf(const char *fmt, ...);     /* %s %c %d %u %x %lx %llx %% only */
void exit(int code) __attribute__((noreturn));
void *memcpy(void *d, const void *s, uptr n);
void *memset(void *d, int c, uptr n);
int memcmp(const void *a, const void *b, uptr n);
int strcmp(const char *a, const char *b);
uptr strlen(const char *s);

/* check(cond, what): prints "ok what" or "FAIL what" and counts failures. */
extern int failures;
void check(int cond, const char *what);
/* Prints the summary line and exits 0 (all passed) or 1. */
void finish(void) __attribute__((noreturn));

#endif
