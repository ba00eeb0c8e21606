#ifndef BENCH_CORE_H
#define BENCH_CORE_H
#ifndef RT_H
typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;
#endif
#define BENCH_WORDS 4096
u64 bench_run(u32 rounds);
#endif
