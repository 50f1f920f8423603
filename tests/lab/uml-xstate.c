/*
 * uml-xstate.so: lets Debian 12's user-mode-linux kernel (6.1) run on hosts whose CPUs have a
 * larger extended register state (XSAVE area) than the kernel was built for: AVX-512, PKRU, AMX.
 *
 * The problem. UML switches the registers of its processes with ptrace. For the floating point
 * and vector registers it uses PTRACE_GETREGSET/PTRACE_SETREGSET with NT_X86_XSTATE and a
 * buffer of its own fixed size (832 bytes: legacy area, header, AVX). Reading with a short
 * buffer works (the host copies less), but the host refuses to write anything but a whole XSAVE
 * area (arch/x86/kernel/fpu/regset.c: count != fpu_user_cfg.max_size -> EFAULT). On a CPU with
 * AMX that area is 11008 bytes, so the lab kernel dies at its first process:
 *     userspace - ptrace set fp regs failed, errno = 14
 *     Kernel panic - not syncing: Attempted to kill init!
 *
 * The fix, preloaded into linux.uml (LD_PRELOAD; tests/lab/run does it): for those two requests
 * only, when UML's buffer is shorter than the host's area, keep a whole area per UML buffer
 * (UML keeps one per task, at a fixed address), read the whole area into it, hand UML its
 * part, and on write put UML's part over the saved whole and write that. So each task gets
 * back all of its own registers, the ones UML does not know of included. Where a buffer was
 * never read (a new task whose registers UML copied), the rest is taken from the process as
 * it is. On a host whose area fits UML's buffer nothing is changed: every call goes straight
 * through.
 *
 * UML calls ptrace from one host thread only, so there is no locking.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

#define SLOTS 8192           /* saved areas; a task that loses its slot falls back as above */
#define PROBES 8
#define PROBE_SIZE 65536     /* larger than any XSAVE area so far (AMX: 11008 bytes) */

typedef long (*ptrace_fn)(enum __ptrace_request, ...);

static ptrace_fn real_ptrace;
static size_t area_size;     /* the host's whole XSAVE area, in bytes; 0 until known */
static unsigned char *arena; /* SLOTS areas of area_size bytes */
static const void *keys[SLOTS];
static unsigned char probe[PROBE_SIZE] __attribute__((aligned(64)));

static long call(enum __ptrace_request request, pid_t pid, void *addr, void *data)
{
    if (!real_ptrace)
        real_ptrace = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
    return real_ptrace(request, pid, addr, data);
}

/* The size of the host's area, learnt from the first read: the host copies min(ask, size). */
static int learn_size(pid_t pid)
{
    struct iovec iov = {probe, sizeof(probe)};

    if (area_size)
        return 0;
    if (call(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) < 0)
        return -1;
    area_size = iov.iov_len;
    arena = mmap(NULL, (size_t)SLOTS * area_size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED) {
        arena = NULL;
        area_size = 0;
        return -1;
    }
    return 0;
}

/* The saved area for UML's buffer at key; *fresh is set when it had none (a slot is taken,
 * evicting another buffer's if all probed slots are in use). */
static unsigned char *slot_for(const void *key, int *fresh)
{
    size_t start = (size_t)(((uintptr_t)key >> 4) * 0x9E3779B97F4A7C15ull >> 51) % SLOTS;
    size_t i, free_slot = SLOTS;

    for (i = 0; i < PROBES; i++) {
        size_t s = (start + i) % SLOTS;
        if (keys[s] == key) {
            *fresh = 0;
            return arena + s * area_size;
        }
        if (!keys[s] && free_slot == SLOTS)
            free_slot = s;
    }
    if (free_slot == SLOTS)
        free_slot = start;
    keys[free_slot] = key;
    *fresh = 1;
    return arena + free_slot * area_size;
}

long ptrace(enum __ptrace_request request, ...)
{
    va_list ap;
    pid_t pid;
    void *addr, *data;
    struct iovec *iov, whole;
    unsigned char *saved;
    int fresh;
    long rc;

    va_start(ap, request);
    pid = va_arg(ap, pid_t);
    addr = va_arg(ap, void *);
    data = va_arg(ap, void *);
    va_end(ap);

    if ((request != PTRACE_GETREGSET && request != PTRACE_SETREGSET)
        || (uintptr_t)addr != NT_X86_XSTATE || !data)
        return call(request, pid, addr, data);
    iov = data;
    if (learn_size(pid) < 0 || iov->iov_len >= area_size)
        return call(request, pid, addr, data);

    saved = slot_for(iov->iov_base, &fresh);
    whole.iov_base = saved;
    whole.iov_len = area_size;
    if (request == PTRACE_GETREGSET || fresh) {
        rc = call(PTRACE_GETREGSET, pid, addr, &whole);
        if (rc < 0)
            return rc;
    }
    if (request == PTRACE_GETREGSET) {
        memcpy(iov->iov_base, saved, iov->iov_len);
        return rc;
    }
    memcpy(saved, iov->iov_base, iov->iov_len);
    whole.iov_len = area_size;
    return call(PTRACE_SETREGSET, pid, addr, &whole);
}
