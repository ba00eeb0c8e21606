/* The CPU-bound workload of the benchmark guest, in plain C so it can also be built for the host
 * to compute the expected checksum: integer mixing loops, memcpy, an insertion/shell sort, CRC-32. */
#include "bench_core.h"

static u32 crc_table[256];
static u32 buf_a[BENCH_WORDS], buf_b[BENCH_WORDS];

static void crc_init(void) {
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static u32 crc32(const u8 *p, u64 n, u32 crc) {
    crc = ~crc;
    while (n--) crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static void copy_words(u32 *d, const u32 *s, u64 n) { for (u64 i = 0; i < n; i++) d[i] = s[i]; }

static void shell_sort(u32 *a, u64 n) {
    static const u64 gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (int g = 0; g < 8; g++) {
        u64 gap = gaps[g];
        for (u64 i = gap; i < n; i++) {
            u32 t = a[i];
            u64 j = i;
            for (; j >= gap && a[j - gap] > t; j -= gap) a[j] = a[j - gap];
            a[j] = t;
        }
    }
}

u64 bench_run(u32 rounds) {
    crc_init();
    u64 h = 0x9E3779B97F4A7C15ull;
    u32 x = 12345;
    u32 crc = 0;
    for (u32 r = 0; r < rounds; r++) {
        for (u32 i = 0; i < BENCH_WORDS; i++) {
            x = x * 1103515245u + 12345u;
            buf_a[i] = x ^ (x >> 16);
        }
        for (u32 i = 0; i < 20000; i++) {
            h ^= h >> 29;
            h *= 0xBF58476D1CE4E5B9ull;
            h += i;
        }
        copy_words(buf_b, buf_a, BENCH_WORDS);
        shell_sort(buf_b, BENCH_WORDS);
        for (u32 i = 1; i < BENCH_WORDS; i++) if (buf_b[i - 1] > buf_b[i]) h ^= 0xDEAD;
        crc = crc32((const u8 *)buf_b, sizeof buf_b, crc);
        h += crc;
    }
    return h ^ crc;
}
