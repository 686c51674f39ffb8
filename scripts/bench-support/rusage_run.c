/*
 * rusage_run OUT CMD [ARGS...]: run CMD, then write its wall time and rusage
 * as one JSON object to the file OUT.  Exit status: 0 if CMD could be waited
 * for (CMD's own status is in the JSON: exit code, or -signal).
 *
 * Why not os.wait4 from Python: Linux carries the high-water RSS of the
 * address space a process had *before* execve into its ru_maxrss, and a child
 * of Python starts as a (v)fork of the Python process, so every program
 * started from Python reports at least Python's RSS (10-30 MiB).  This helper
 * is tiny, so the program it forks reports its own peak RSS.
 *
 * Build: gcc -O2 -o rusage_run rusage_run.c
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double secs(struct timeval tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s OUT CMD [ARGS...]\n", argv[0]);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror(argv[2]);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) { perror("wait4"); return 2; }
    clock_gettime(CLOCK_MONOTONIC, &t1);

    FILE *out = fopen(argv[1], "w");
    if (!out) { perror(argv[1]); return 2; }
    fprintf(out,
            "{\"status\": %d, \"wall_s\": %.6f, \"utime_s\": %.6f, \"stime_s\": %.6f, "
            "\"maxrss_kib\": %ld, \"oublock\": %ld}\n",
            WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status),
            (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
            secs(ru.ru_utime), secs(ru.ru_stime), ru.ru_maxrss, ru.ru_oublock);
    return fclose(out) == 0 ? 0 : 2;
}
