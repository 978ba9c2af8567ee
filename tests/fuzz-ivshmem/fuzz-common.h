/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers shared by the ivshmem fuzz targets: an input reader, fd
 * bookkeeping (which fds were open when the target started, so that an
 * iteration can prove it closed everything it or the library opened),
 * and a check that fails loudly through abort(), which libFuzzer turns
 * into a crash report with a reproducer.
 *
 * Only for tests/fuzz-ivshmem; the targets include it once each.
 */

#ifndef FUZZ_IVSHMEM_COMMON_H
#define FUZZ_IVSHMEM_COMMON_H

#include <dirent.h>
#include <sys/syscall.h>
#include <linux/kcmp.h>

/* Upper bound on the fd numbers the targets look at. */
#define FUZZ_MAX_FD 4096

/* Removes the target's temporary directory: abort() skips atexit. */
static void (*fuzz_cleanup)(void);

#define fuzz_check(cond, ...)                                           \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "fuzz check failed at %s:%d: %s: ",         \
                    __FILE__, __LINE__, #cond);                         \
            fprintf(stderr, __VA_ARGS__);                               \
            fputc('\n', stderr);                                        \
            if (fuzz_cleanup) {                                         \
                fuzz_cleanup();                                         \
            }                                                           \
            abort();                                                    \
        }                                                               \
    } while (0)

/* Input reader: past the end, every byte reads as 0. */
typedef struct FuzzIn {
    const uint8_t *p;
    size_t left;
} FuzzIn;

static inline bool fin_empty(FuzzIn *in)
{
    return in->left == 0;
}

static inline uint8_t fin_u8(FuzzIn *in)
{
    if (!in->left) {
        return 0;
    }
    in->left--;
    return *in->p++;
}

static inline uint16_t fin_u16(FuzzIn *in)
{
    uint16_t lo = fin_u8(in);

    return lo | (uint16_t)fin_u8(in) << 8;
}

/* Copy up to @len bytes; returns how many there were. */
static inline size_t fin_bytes(FuzzIn *in, uint8_t *buf, size_t len)
{
    size_t n = len < in->left ? len : in->left;

    memcpy(buf, in->p, n);
    in->p += n;
    in->left -= n;
    return n;
}

/*
 * Which fds were open: at start-up, and at the start of the current
 * iteration for the fds below the window.  The sanitizer runtime opens
 * fds of its own between iterations (the symbolizer's pipes, when
 * libFuzzer prints new functions), so each iteration takes a fresh look
 * at the window, which grows to twice the highest fd number checked.
 */
static uint8_t fuzz_fd_init[FUZZ_MAX_FD];
static uint8_t fuzz_fd_base[FUZZ_MAX_FD];
static int fuzz_fd_window = 64, fuzz_fd_base_len;
static bool fuzz_fd_ready;

static inline bool fuzz_fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

/* Once, at start-up, once the libraries have opened their lazy fds. */
static inline void fuzz_fd_snapshot(void)
{
    int fd;

    for (fd = 0; fd < FUZZ_MAX_FD; fd++) {
        fuzz_fd_init[fd] = fuzz_fd_is_open(fd);
    }
    fuzz_fd_ready = true;
}

/* At the start of every iteration. */
static inline void fuzz_fd_begin(void)
{
    int fd;

    fuzz_fd_base_len = fuzz_fd_window;
    for (fd = 0; fd < fuzz_fd_base_len; fd++) {
        fuzz_fd_base[fd] = fuzz_fd_is_open(fd);
    }
}

/*
 * Every fd below @hi must be open exactly when it was at the start of
 * the iteration.  Fds are allocated lowest first, so whatever an
 * iteration opened and leaked has a number below the highest number it
 * saw plus the number of fds it received from elsewhere; the caller
 * passes that bound.
 */
static inline void fuzz_fd_check(int hi, const char *what)
{
    bool was_open;
    int fd;

    if (!fuzz_fd_ready) {
        return;
    }
    if (hi > FUZZ_MAX_FD) {
        hi = FUZZ_MAX_FD;
    }
    if (hi * 2 > fuzz_fd_window) {
        fuzz_fd_window = MIN(hi * 2, FUZZ_MAX_FD);
    }
    for (fd = 0; fd < hi; fd++) {
        was_open = fd < fuzz_fd_base_len ? fuzz_fd_base[fd]
                                         : fuzz_fd_init[fd];
        if (fuzz_fd_is_open(fd) != was_open) {
            char link[64], target[256] = "?";
            ssize_t n;

            snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
            n = readlink(link, target, sizeof(target) - 1);
            if (n > 0) {
                target[n] = 0;
            }
            fuzz_check(false, "%s: fd %d is %s (-> %s)", what, fd,
                       was_open ? "closed but was open" : "leaked",
                       target);
        }
    }
}

/*
 * Do @a and @b refer to the same open file description?  1 yes, 0 no,
 * -1 cannot tell (kcmp unavailable).
 */
static inline int fuzz_same_file(int a, int b)
{
    pid_t pid = getpid();
    long ret = syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b);

    return ret < 0 ? -1 : ret == 0;
}

#endif /* FUZZ_IVSHMEM_COMMON_H */
