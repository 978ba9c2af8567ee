/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the Linux guest check's programs (ivshmem-probe.c, ivshmem-vfio.c)
 * share: the ABI constants they test against, the layout of the patterns
 * in the shared memory (which run-linux-check.py must match), TAP-like
 * result lines on the serial console, the kernel command line parameters,
 * and reading sysfs files.
 *
 * Define IVT_PREFIX (for instance "vfio: ") before including this to tag
 * the program's result and information lines.
 */

#ifndef IVT_H
#define IVT_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef IVT_PREFIX
#define IVT_PREFIX ""
#endif

#define IVSHMEM_VENDOR  0x1af4
#define IVSHMEM_DEVICE  0x1110

/* BAR0 registers */
#define REG_INTRMASK    0x00
#define REG_INTRSTATUS  0x04
#define REG_IVPOSITION  0x08
#define REG_DOORBELL    0x0c
#define REG_RESERVED    0x10

/* Layout of the patterns in the shared memory (offsets in BAR2) */
#define A_HELLO_OFF     0x0
#define A_WORDS_OFF     0x1000
#define A_WORDS_LEN     0x10000
#define B_ACK_OFF       0x20000
#define HOST_PEER_OFF   0x30000     /* doorbell memory: host peer's marker */
#define HOST_PLAIN_OFF  0x40000     /* plain memory: written by the host before boot */
#define MAGIC_LEN       64

static unsigned passed, failed;

static inline void result(int ok, const char *fmt, ...)
{
    va_list ap;

    printf("IVT %s - " IVT_PREFIX, ok ? "ok" : "not ok");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (ok) {
        passed++;
    } else {
        failed++;
    }
}

static inline void info(const char *fmt, ...)
{
    va_list ap;

    printf("IVT # " IVT_PREFIX);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* ---- kernel command line ---- */

static char cmdline[4096];

static inline void read_cmdline(void)
{
    int fd = open("/proc/cmdline", O_RDONLY);

    if (fd >= 0) {
        ssize_t r = read(fd, cmdline, sizeof(cmdline) - 1);

        cmdline[r > 0 ? r : 0] = 0;
        close(fd);
    }
}

/* The value of "NAME=value" on the command line, or @dflt. */
static inline const char *param(const char *name, const char *dflt)
{
    static char val[256];
    size_t n = strlen(name);
    const char *p = cmdline;

    while ((p = strstr(p, name)) != NULL) {
        if ((p == cmdline || p[-1] == ' ') && p[n] == '=') {
            size_t i = 0;

            p += n + 1;
            while (p[i] && p[i] != ' ' && p[i] != '\n' &&
                   i < sizeof(val) - 1) {
                val[i] = p[i];
                i++;
            }
            val[i] = 0;
            return val;
        }
        p += n;
    }
    return dflt;
}

static inline uint64_t param_u64(const char *name, uint64_t dflt)
{
    const char *v = param(name, NULL);

    return v ? strtoull(v, NULL, 0) : dflt;
}

/* ---- sysfs ---- */

static inline int read_file(const char *dir, const char *name, char *buf,
                            size_t len)
{
    char path[512];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY);
    if (fd < 0) {
        return -1;
    }
    n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0) {
        return -1;
    }
    buf[n] = 0;
    return (int)n;
}

#endif
