/* Host build of the benchmark workload: prints the checksum the guest must print. */
#include <stdio.h>
#include <stdlib.h>
#include "bench_core.c"
int main(int argc, char **argv) {
    unsigned rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 4;
    printf("checksum 0x%llx\n", (unsigned long long)bench_run(rounds));
    return 0;
}
