/*
 * pv-workloads: the coupling matrix's micro-workloads (docs/MATRIX.md; issue 10), run by the default
 * guest's /init on 2 vCPUs. Each workload is bracketed by two console lines,
 *     pv-mark begin NAME
 *     pv-mark end NAME
 * which the VMM timestamps with the instructions retired and the VM exits taken when each line's newline
 * reaches the UART (vmm.ConsoleMarkers). Output is written with write(2) and drained with tcdrain(3), so
 * the begin line has left the guest before the workload starts; the small fixed cost of printing a
 * marker is part of every figure alike.
 *
 * Each workload exercises one thing the paravirtual interfaces change (arch/x86/kernel/kvm.c,
 * arch/x86/hyperv/, arch/x86/xen/): clock reads through the vDSO, IPI round trips between vCPUs, TLB
 * shootdowns, contended locks, sched_yield, idle wake-ups.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static void mark(const char *phase, const char *name) {
    char buf[96];
    int n = snprintf(buf, sizeof buf, "pv-mark %s %s\n", phase, name);
    if (write(1, buf, (size_t)n) != n) _exit(3);
    tcdrain(1); /* a tty: wait until the line is on the wire; a pipe: no-op (ENOTTY) */
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % (int)sysconf(_SC_NPROCESSORS_ONLN), &set);
    sched_setaffinity(0, sizeof set, &set);
}

static long futex(atomic_int *addr, int op, int val) {
    return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

/* ---- clock: CLOCK_MONOTONIC through the vDSO (kvm-clock, the Hyper-V TSC page, tsc, ...) ---- */
static void clock_reads(void) {
    struct timespec ts, last = {0, 0};
    for (int i = 0; i < 20000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (ts.tv_sec < last.tv_sec || (ts.tv_sec == last.tv_sec && ts.tv_nsec < last.tv_nsec)) {
            printf("pv-workloads: CLOCK_MONOTONIC went backwards\n");
            exit(2);
        }
        last = ts;
    }
}

/* ---- ipi: a futex ping-pong between threads pinned to CPU 0 and CPU 1; each wake of a sleeper on the
 * other CPU is a reschedule IPI (apic->send_IPI or the hypervisor's PV IPI) ---- */
#define ROUNDS 400
static atomic_int turn;

static void *pong(void *arg) {
    (void)arg;
    pin(1);
    for (int i = 0; i < ROUNDS; i++) {
        while (atomic_load(&turn) != 1) futex(&turn, FUTEX_WAIT_PRIVATE, 0);
        atomic_store(&turn, 0);
        futex(&turn, FUTEX_WAKE_PRIVATE, 1);
    }
    return NULL;
}

static void ipi_round_trips(void) {
    pthread_t t;
    atomic_store(&turn, 0);
    pthread_create(&t, NULL, pong, NULL);
    pin(0);
    for (int i = 0; i < ROUNDS; i++) {
        atomic_store(&turn, 1);
        futex(&turn, FUTEX_WAKE_PRIVATE, 1);
        while (atomic_load(&turn) != 0) futex(&turn, FUTEX_WAIT_PRIVATE, 1);
    }
    pthread_join(t, NULL);
}

/* ---- tlb: mprotect of memory a thread on the other CPU keeps using: every change flushes that CPU's
 * TLB (flush_tlb_multi: native IPIs, KVM's PV flush, Hyper-V's flush hypercall) ---- */
#define TLB_PAGES 16
static volatile char *shared;
static atomic_int stop_reader;

static void *reader(void *arg) {
    (void)arg;
    pin(1);
    unsigned sum = 0;
    while (!atomic_load(&stop_reader))
        for (int p = 0; p < TLB_PAGES; p++) sum += shared[p * 4096];
    return (void *)(unsigned long)sum;
}

static void tlb_shootdowns(void) {
    shared = mmap(NULL, TLB_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (shared == MAP_FAILED) { perror("pv-workloads: mmap"); exit(2); }
    pthread_t t;
    atomic_store(&stop_reader, 0);
    pthread_create(&t, NULL, reader, NULL);
    pin(0);
    for (int i = 0; i < 200; i++) {
        mprotect((void *)shared, TLB_PAGES * 4096, (i & 1) ? PROT_READ | PROT_WRITE : PROT_READ);
        sched_yield();
    }
    atomic_store(&stop_reader, 1);
    pthread_join(t, NULL);
    munmap((void *)shared, TLB_PAGES * 4096);
}

/* ---- lock: a pthread mutex contended from both CPUs (futex waits and wakes, the kernel's hash-bucket
 * spinlocks: PV spinlocks' wait/kick) ---- */
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *locker(void *arg) {
    pin((int)(long)arg);
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&mutex);
        counter++;
        pthread_mutex_unlock(&mutex);
    }
    return NULL;
}

static void contended_lock(void) {
    pthread_t a, b;
    counter = 0;
    pthread_create(&a, NULL, locker, (void *)0L);
    pthread_create(&b, NULL, locker, (void *)1L);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    if (counter != 10000) { printf("pv-workloads: lost updates (%ld)\n", counter); exit(2); }
}

/* ---- yield ---- */
static void yields(void) {
    pin(0);
    for (int i = 0; i < 2000; i++) sched_yield();
}

/* ---- idle: short sleeps, so the CPU idles and a timer interrupt (LAPIC timer, Hyper-V stimer, Xen
 * single-shot timer) wakes it ---- */
static void idle_wakeups(void) {
    pin(0);
    struct timespec d = {0, 200000};
    for (int i = 0; i < 50; i++) nanosleep(&d, NULL);
}

static const struct { const char *name; void (*run)(void); } workloads[] = {
    {"clock", clock_reads},
    {"ipi", ipi_round_trips},
    {"tlb", tlb_shootdowns},
    {"lock", contended_lock},
    {"yield", yields},
    {"idle", idle_wakeups},
};

int main(int argc, char **argv) {
    int n = (int)(sizeof workloads / sizeof workloads[0]);
    for (int i = 0; i < n; i++) {
        if (argc > 1) {
            int wanted = 0;
            for (int a = 1; a < argc; a++) wanted |= strcmp(argv[a], workloads[i].name) == 0;
            if (!wanted) continue;
        }
        mark("begin", workloads[i].name);
        workloads[i].run();
        mark("end", workloads[i].name);
    }
    return 0;
}
