/* A slow card for tests and benchmarks: LD_PRELOAD'ed into a dynamically linked blackbox,
 * it makes every fdatasync/fsync wait SLOWSYNC_MS milliseconds before doing the real one
 * (an SD card under load flushes that slowly). Built by tests/slow_card.rs and scripts/bench. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>

static long delay_ms = -1;

static void wait_a_while(void) {
    if (delay_ms < 0) {
        const char *e = getenv("SLOWSYNC_MS");
        delay_ms = e ? atol(e) : 0;
    }
    if (delay_ms > 0) {
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        }
    }
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    wait_a_while();
    return real(fd);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    wait_a_while();
    return real(fd);
}
