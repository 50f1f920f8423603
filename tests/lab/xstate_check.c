/*
 * Run inside the lab by tests/lab/run_test.py: do threads of one process keep their own AVX-512
 * registers across the lab kernel's task switches? The kernel sets them through
 * uml-xstate.so on hosts with AMX. Each thread puts its own pattern in zmm31 and checks it
 * while the threads take turns on the lab's one CPU, then reads how often it was switched out.
 * Prints "ok <checks>" and exits 0; else names the thread whose register changed, or that was
 * never switched (then the check proved nothing), and exits 1.
 * Built without -mavx512f, and no library call between the load and the checks, so nothing
 * but a task switch can touch zmm31.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4
#define ROUNDS 1000
#define SPIN 200000

static volatile unsigned long sink;
static int bad[THREADS];
static unsigned long checks[THREADS], switches[THREADS];

static void *run(void *arg)
{
    int id = (int)(long)arg, r, i, w;
    unsigned long long want[8] __attribute__((aligned(64)));
    unsigned long long got[8] __attribute__((aligned(64)));
    char status[4096], *line;
    size_t n;
    FILE *f;

    for (w = 0; w < 8; w++)
        want[w] = 0x0101010101010101ull * (unsigned)(id * 8 + w + 1);
    __asm__ volatile("vmovdqu64 %0, %%zmm31" : : "m"(want));
    for (r = 0; r < ROUNDS; r++) {
        for (i = 0; i < SPIN; i++)
            sink += i;
        __asm__ volatile("vmovdqu64 %%zmm31, %0" : "=m"(got) : : "memory");
        for (w = 0; w < 8; w++)
            if (got[w] != want[w])
                bad[id] = 1;
        checks[id]++;
    }
    f = fopen("/proc/thread-self/status", "r");
    if (f) {
        n = fread(status, 1, sizeof(status) - 1, f);
        status[n] = 0;
        fclose(f);
        line = strstr(status, "nonvoluntary_ctxt_switches:");
        if (line)
            switches[id] = strtoul(line + strlen("nonvoluntary_ctxt_switches:"), NULL, 10);
    }
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS];
    unsigned long total = 0;
    int i, failed = 0;

    for (i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, run, (void *)(long)i);
    for (i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (i = 0; i < THREADS; i++) {
        total += checks[i];
        if (bad[i]) {
            printf("thread %d: zmm31 changed under it\n", i);
            failed = 1;
        }
        if (!switches[i]) {
            printf("thread %d: never switched out, nothing was checked\n", i);
            failed = 1;
        }
    }
    if (!failed)
        printf("ok %lu\n", total);
    return failed;
}
