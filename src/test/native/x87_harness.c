/*
 * Host side of X87HostOracleTest: runs x87 code sequences on the host CPU. Each input record is
 * 64 bytes of code (byte 0 = length, then the code, which ends in RET) and 128 bytes of data; the
 * code is called with RDI = a 768-byte buffer holding the data at offset 0 (the code stores RFLAGS
 * at 0x80 and its FXSAVE64 image at 0x100). The whole 768-byte buffer is written back.
 * All x87 exceptions stay masked (the code loads its own control word), so nothing traps.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static uint8_t buf[768] __attribute__((aligned(64)));

int main(void) {
    uint8_t *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) return 2;
    uint8_t in[192];
    while (fread(in, 1, sizeof in, stdin) == sizeof in) {
        memset(code, 0xCC, 64);
        memcpy(code, in + 1, in[0] < 63 ? in[0] : 63);
        memset(buf, 0, sizeof buf);
        memcpy(buf, in + 64, 128);
        ((void (*)(uint8_t *)) code)(buf);
        if (fwrite(buf, 1, sizeof buf, stdout) != sizeof buf) return 3;
    }
    fflush(stdout);
    return 0;
}
