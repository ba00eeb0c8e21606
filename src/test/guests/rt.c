#include "rt.h"
#include <stdarg.h>

int failures;

void putc(char c) {
    if (c == '\n') putc('\r');
    while (!(inb(0x3F8 + 5) & 0x20)) { }
    outb(0x3F8, (u8)c);
}

void puts(const char *s) { while (*s) putc(*s++); }

void put_hex(u64 v) {
    char buf[17];
    int i = 16;
    buf[i] = 0;
    do { buf[--i] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    puts("0x");
    puts(&buf[i]);
}

void put_dec(u64 v) {
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    puts(&buf[i]);
}

void printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') { putc(*fmt); continue; }
        fmt++;
        int longs = 0;
        while (*fmt == 'l') { longs++; fmt++; }
        switch (*fmt) {
        case 's': puts(va_arg(ap, const char *)); break;
        case 'c': putc((char)va_arg(ap, int)); break;
        case 'd': {
            long long v = longs >= 2 ? va_arg(ap, long long) : longs ? va_arg(ap, long) : va_arg(ap, int);
            if (v < 0) { putc('-'); v = -v; }
            put_dec((u64)v);
            break;
        }
        case 'u': put_dec(longs >= 2 ? va_arg(ap, u64) : longs ? va_arg(ap, unsigned long) : va_arg(ap, unsigned)); break;
        case 'x': put_hex(longs >= 2 ? va_arg(ap, u64) : longs ? va_arg(ap, unsigned long) : va_arg(ap, unsigned)); break;
        case '%': putc('%'); break;
        default: putc('?'); break;
        }
    }
    va_end(ap);
}

void exit(int code) {
    outl(0xF4, (u32)code);
    /* Not reached under a VMM with the debug-exit device: stop for good. */
    for (;;) __asm__ volatile("cli; hlt");
}

void *memcpy(void *d, const void *s, uptr n) {
    u8 *dp = d; const u8 *sp = s;
    while (n--) *dp++ = *sp++;
    return d;
}

void *memset(void *d, int c, uptr n) {
    u8 *dp = d;
    while (n--) *dp++ = (u8)c;
    return d;
}

int memcmp(const void *a, const void *b, uptr n) {
    const u8 *x = a, *y = b;
    for (; n; n--, x++, y++) if (*x != *y) return *x - *y;
    return 0;
}

int strcmp(const char *a, const char *b) {
    while (*a && *a == *b) { a++; b++; }
    return (u8)*a - (u8)*b;
}

uptr strlen(const char *s) { uptr n = 0; while (s[n]) n++; return n; }

void check(int cond, const char *what) {
    if (!cond) failures++;
    printf("%s %s\n", cond ? "ok" : "FAIL", what);
}

void finish(void) {
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
    exit(failures ? 1 : 0);
}
