/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The floor for doorbell latency: two host processes ping-pong through a
 * pair of eventfds (the same kernel object an ivshmem doorbell ends in),
 * N round trips.  Prints one round-trip time in nanoseconds per line.
 *
 *   floor N
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void ring(int fd)
{
    uint64_t one = 1;

    if (write(fd, &one, sizeof(one)) != sizeof(one)) {
        perror("eventfd write");
        exit(1);
    }
}

static void wait_for(int fd)
{
    uint64_t v;

    if (read(fd, &v, sizeof(v)) != sizeof(v)) {     /* blocking read */
        perror("eventfd read");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000;
    int to_child = eventfd(0, EFD_CLOEXEC), to_parent = eventfd(0, EFD_CLOEXEC);
    uint64_t *rtt = calloc(n, sizeof(*rtt));
    pid_t pid;

    if (to_child < 0 || to_parent < 0 || !rtt || n <= 0) {
        fprintf(stderr, "usage: floor N\n");
        return 1;
    }
    pid = fork();
    if (pid == 0) {
        for (long i = 0; i < n; i++) {
            wait_for(to_child);
            ring(to_parent);
        }
        _exit(0);
    }
    for (long i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        ring(to_child);
        wait_for(to_parent);
        rtt[i] = now_ns() - t0;
    }
    waitpid(pid, NULL, 0);
    for (long i = 0; i < n; i++) {
        printf("%llu\n", (unsigned long long)rtt[i]);
    }
    return 0;
}
