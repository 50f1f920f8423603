/*
 * uml-xstate.so: lets Debian 12's user-mode-linux kernel (6.1) run on hosts whose CPUs have a
 * larger extended register state (XSAVE area) than the kernel was built for, such as AMX.
 *
 * The problem. UML switches the registers of its processes with ptrace. For the floating point
 * and vector registers it uses PTRACE_GETREGSET/PTRACE_SETREGSET with NT_X86_XSTATE and a
 * buffer of its own fixed size (2696 bytes: up to AVX-512 and PKRU). Reading with a short buffer
 * works (the host copies less), but the host refuses to write anything but its whole XSAVE area
 * (arch/x86/kernel/fpu/regset.c: count != fpu_user_cfg.max_size -> EFAULT). With AMX that area
 * is 11008 bytes, and the lab kernel dies at its first process:
 *     userspace - ptrace set fp regs failed, errno = 14
 *     Kernel panic - not syncing: Attempted to kill init!
 *
 * The fix, preloaded into linux.uml (LD_PRELOAD; tests/lab/run does it): a PTRACE_SETREGSET of
 * NT_X86_XSTATE with a buffer shorter than the host's area reads the process's whole area, puts
 * UML's buffer over its start and writes the whole. What lies beyond UML's buffer is state no
 * process in the lab can use: AMX needs a per-process permission from the host
 * (arch_prctl ARCH_REQ_XCOMP_PERM), which UML's own arch_prctl does not pass on, so it stays as
 * the host set it. Every other call goes straight through; on a host whose area fits UML's
 * buffer, all of them do.
 *
 * UML calls ptrace from one host thread only, so one static buffer is enough.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

/* Larger than any XSAVE area so far (AMX: 11008 bytes). */
static unsigned char whole[65536] __attribute__((aligned(64)));

typedef long (*ptrace_fn)(enum __ptrace_request, ...);
static ptrace_fn real_ptrace;
static size_t area;  /* the host's XSAVE area in bytes, once read */

static long call(enum __ptrace_request request, pid_t pid, void *addr, void *data)
{
    if (!real_ptrace)
        real_ptrace = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
    return real_ptrace(request, pid, addr, data);
}

long ptrace(enum __ptrace_request request, ...)
{
    va_list ap;
    pid_t pid;
    void *addr, *data;
    struct iovec *iov, read;
    long rc;

    va_start(ap, request);
    pid = va_arg(ap, pid_t);
    addr = va_arg(ap, void *);
    data = va_arg(ap, void *);
    va_end(ap);

    if (request != PTRACE_SETREGSET || (uintptr_t)addr != NT_X86_XSTATE || !data)
        return call(request, pid, addr, data);
    iov = data;
    if (area && iov->iov_len >= area)
        return call(request, pid, addr, data);
    read.iov_base = whole;
    read.iov_len = sizeof(whole);
    /* the host copies min(asked, its area): read.iov_len becomes the area's size */
    rc = call(PTRACE_GETREGSET, pid, addr, &read);
    if (rc < 0)
        return call(request, pid, addr, data);
    area = read.iov_len;
    if (iov->iov_len >= area)
        return call(request, pid, addr, data);
    memcpy(whole, iov->iov_base, iov->iov_len);
    return call(PTRACE_SETREGSET, pid, addr, &read);
}
