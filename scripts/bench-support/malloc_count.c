/*
 * LD_PRELOAD allocation counter, used by scripts/bench to count the heap
 * allocations of a program we can't instrument (ffmpeg).
 *
 * Counts calls to malloc, calloc, realloc, reallocarray, posix_memalign,
 * aligned_alloc, memalign, valloc and pvalloc (free is not counted).  At exit,
 * the total is written as "allocs=N\n" to the file named by $MALLOC_COUNT_FILE,
 * or to stderr if unset.
 *
 * Build: gcc -shared -fPIC -O2 -o malloc_count.so malloc_count.c -ldl
 *
 * Bootstrap: dlsym() itself may call calloc before we know the real calloc, so
 * until the real functions are resolved allocations are served from a static
 * bump buffer (never freed; free/realloc recognise its pointers).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);

static unsigned long count; /* updated with __atomic builtins */

static _Alignas(64) char bump[64 * 1024];
static size_t bump_used;
static int resolving;

static int in_bump(const void *p) {
    return (const char *)p >= bump && (const char *)p < bump + sizeof bump;
}

static void *bump_alloc(size_t n) {
    size_t off = (bump_used + 15) & ~(size_t)15;
    if (off + n > sizeof bump) return NULL;
    bump_used = off + n;
    return bump + off; /* static storage: already zeroed, fine for calloc */
}

/* Resolve the next definitions.  Runs during single-threaded start-up in
 * practice (the first allocation happens long before any thread exists). */
static void resolve(void) {
    if (real_malloc || resolving) return;
    resolving = 1;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_valloc = dlsym(RTLD_NEXT, "valloc");
    real_pvalloc = dlsym(RTLD_NEXT, "pvalloc");
    real_malloc = dlsym(RTLD_NEXT, "malloc"); /* last: it marks "resolved" */
    resolving = 0;
}

static inline void counted(void) { __atomic_fetch_add(&count, 1, __ATOMIC_RELAXED); }

void *malloc(size_t n) {
    resolve();
    if (!real_malloc) return bump_alloc(n);
    counted();
    return real_malloc(n);
}

void *calloc(size_t n, size_t size) {
    resolve();
    if (!real_calloc) return bump_alloc(n * size);
    counted();
    return real_calloc(n, size);
}

void *realloc(void *p, size_t n) {
    resolve();
    if (in_bump(p)) { /* move a bootstrap block to the real heap */
        size_t avail = (size_t)(bump + sizeof bump - (char *)p); /* old size unknown: copy what fits */
        void *q = malloc(n);
        if (q) memcpy(q, p, n < avail ? n : avail);
        return q;
    }
    if (!real_realloc) return bump_alloc(n);
    counted();
    return real_realloc(p, n);
}

void *reallocarray(void *p, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    return realloc(p, n * size);
}

void free(void *p) {
    if (!p || in_bump(p)) return;
    resolve();
    if (real_free) real_free(p);
}

int posix_memalign(void **out, size_t align, size_t n) {
    resolve();
    counted();
    return real_posix_memalign(out, align, n);
}

void *aligned_alloc(size_t align, size_t n) {
    resolve();
    counted();
    return real_aligned_alloc(align, n);
}

void *memalign(size_t align, size_t n) {
    resolve();
    counted();
    return real_memalign(align, n);
}

void *valloc(size_t n) {
    resolve();
    counted();
    return real_valloc(n);
}

void *pvalloc(size_t n) {
    resolve();
    counted();
    return real_pvalloc(n);
}

__attribute__((destructor)) static void report(void) {
    char buf[64];
    int len = snprintf(buf, sizeof buf, "allocs=%lu\n", __atomic_load_n(&count, __ATOMIC_RELAXED));
    const char *path = getenv("MALLOC_COUNT_FILE");
    int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : 2;
    if (fd < 0) return;
    if (write(fd, buf, (size_t)len) < 0) { /* nothing useful to do */ }
    if (fd != 2) close(fd);
}
