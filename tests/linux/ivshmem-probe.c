/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ivshmem-probe: the guest side of the Linux guest check.
 *
 * Runs inside a Linux guest (statically linked, from a busybox initramfs),
 * with no ivshmem driver: everything goes through sysfs, the way a
 * userspace driver or an administrator would see the devices.
 *
 * - Finds the ivshmem devices (vendor 0x1af4, device 0x1110) under
 *   /sys/bus/pci/devices and checks what the PCI core made of them against
 *   docs/specs/ivshmem-spec.rst: IDs, revision, subsystem, class, interrupt
 *   pin, the BARs (sysfs "resource" file and the BAR type bits in config
 *   space) and the MSI-X capability (doorbell only, table and PBA in BAR1).
 * - Maps BAR0 through resource0 and checks the registers.
 * - Maps BAR2 through resource2 and exchanges patterns with the host and a
 *   peer guest: both find the host's marker, role "a" writes, role "b"
 *   waits for a's pattern and writes an acknowledgement, which "a" waits
 *   for in turn.
 * - When the test driver ivshmem-irq.ko (ivshmem-irq.c) has bound the
 *   doorbell device, checks MSI-X interrupts: the guest rings itself on
 *   every vector, rings an absent peer, rings the host peer and receives
 *   the host peer's doorbell.
 *
 * Parameters come from the kernel command line (/proc/cmdline):
 *   ivt.role=a|b         which guest this is
 *   ivt.nonce=HEX        32-bit value that makes this run's patterns unique
 *   ivt.plain=SIZE       expected BAR2 size of the ivshmem-plain device
 *   ivt.doorbell=SIZE    expected BAR2 size of the ivshmem-doorbell device,
 *                        0 or absent: the guest has no doorbell device
 *   ivt.vectors=N        expected MSI-X table size of the doorbell device
 *   ivt.wait=SECONDS     how long to wait for the peer guest (default 90)
 *   ivt.hostpeer=1       a host peer (ivshmem-client) takes part in the
 *                        interrupt checks, see check_interrupts()
 *
 * Output, on stdout (the serial console): one line per check,
 *   "IVT ok - DESCRIPTION" or "IVT not ok - DESCRIPTION: WHY",
 * informational lines starting "IVT # ", and a last line
 *   "IVT done passed=N failed=M".
 * With ivt.exit=1, the program then writes to the isa-debug-exit port 0xf4
 * (0x10 when all passed, 0x11 otherwise): QEMU exits with status 33 or 35.
 * That is x86 only; elsewhere (aarch64) /init runs the next program and
 * powers the guest off, and the runner reads the "IVT done" line.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <sys/io.h>
#endif
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ivt.h"

/* IORESOURCE_* flags as the kernel prints them in the "resource" file */
#define IORESOURCE_MEM          0x00000200
#define IORESOURCE_PREFETCH     0x00002000
#define IORESOURCE_MEM_64       0x00100000

static long read_hex(const char *dir, const char *name)
{
    char buf[64];

    if (read_file(dir, name, buf, sizeof(buf)) < 0) {
        return -1;
    }
    return strtol(buf, NULL, 16);
}

static int write_file(const char *dir, const char *name, const char *val)
{
    char path[512];
    int fd, ret;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY);
    if (fd < 0) {
        return -1;
    }
    ret = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -1;
    close(fd);
    return ret;
}

struct bar {
    uint64_t start, end, flags;
    uint64_t size;
};

struct dev {
    char name[256];
    char dir[320];
    uint8_t cfg[256];
    struct bar bar[6];
    int has_msix;
    unsigned msix_cap;
    int32_t ivpos;
    const char *kind;           /* "plain" or "doorbell" */
};

static int read_resources(struct dev *d)
{
    char buf[2048], *line, *save = NULL;
    int i = 0;

    if (read_file(d->dir, "resource", buf, sizeof(buf)) < 0) {
        return -1;
    }
    for (line = strtok_r(buf, "\n", &save); line && i < 6;
         line = strtok_r(NULL, "\n", &save), i++) {
        struct bar *b = &d->bar[i];

        if (sscanf(line, "%" SCNx64 " %" SCNx64 " %" SCNx64,
                   &b->start, &b->end, &b->flags) != 3) {
            return -1;
        }
        b->size = b->end ? b->end - b->start + 1 : 0;
    }
    return 0;
}

static int read_config(struct dev *d)
{
    char path[512];
    int fd;
    ssize_t n;

    snprintf(path, sizeof(path), "%s/config", d->dir);
    fd = open(path, O_RDONLY);
    if (fd < 0) {
        return -1;
    }
    n = pread(fd, d->cfg, sizeof(d->cfg), 0);
    close(fd);
    return n == sizeof(d->cfg) ? 0 : -1;
}

static uint16_t cfg16(const struct dev *d, unsigned off)
{
    return d->cfg[off] | d->cfg[off + 1] << 8;
}

static uint32_t cfg32(const struct dev *d, unsigned off)
{
    return cfg16(d, off) | (uint32_t)cfg16(d, off + 2) << 16;
}

/* Walk the capability list; returns the offset of capability @id or 0. */
static unsigned find_cap(const struct dev *d, uint8_t id, char *list, size_t len)
{
    unsigned off, found = 0, guard = 0;
    size_t used = 0;

    list[0] = 0;
    if (!(cfg16(d, 0x06) & 0x10)) {     /* status: capabilities list */
        return 0;
    }
    for (off = d->cfg[0x34] & 0xfc; off && guard < 48; guard++) {
        used += snprintf(list + used, used < len ? len - used : 0,
                         "%s0x%02x@0x%02x", used ? "," : "", d->cfg[off], off);
        if (d->cfg[off] == id && !found) {
            found = off;
        }
        off = d->cfg[off + 1] & 0xfc;
    }
    return found;
}

static int find_devices(struct dev *devs, int max)
{
    const char *base = "/sys/bus/pci/devices";
    DIR *dir = opendir(base);
    struct dirent *e;
    int n = 0;

    if (!dir) {
        return -1;
    }
    while ((e = readdir(dir)) != NULL && n < max) {
        char path[320];

        if (e->d_name[0] == '.' || strlen(e->d_name) > 200) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
        if (read_hex(path, "vendor") != IVSHMEM_VENDOR ||
            read_hex(path, "device") != IVSHMEM_DEVICE) {
            continue;
        }
        memset(&devs[n], 0, sizeof(devs[n]));
        snprintf(devs[n].name, sizeof(devs[n].name), "%s", e->d_name);
        snprintf(devs[n].dir, sizeof(devs[n].dir), "%s", path);
        n++;
    }
    closedir(dir);
    return n;
}

/* ---- checks of what the PCI core sees ---- */

static void check_identity(struct dev *d, uint64_t shm_size, unsigned vectors)
{
    long rev = read_hex(d->dir, "revision");
    long svendor = read_hex(d->dir, "subsystem_vendor");
    long sdevice = read_hex(d->dir, "subsystem_device");
    long class = read_hex(d->dir, "class");
    char caps[256];
    struct bar *b0 = &d->bar[0], *b1 = &d->bar[1], *b2 = &d->bar[2];
    uint32_t raw0 = cfg32(d, 0x10), raw2 = cfg32(d, 0x18);
    const char *n = d->name, *k = d->kind;
    int i;

    info("%s %s: vendor 0x%04lx device 0x%04lx revision 0x%02lx "
         "subsystem 0x%04lx:0x%04lx class 0x%06lx",
         n, k, read_hex(d->dir, "vendor"), read_hex(d->dir, "device"),
         rev, svendor, sdevice, class);
    for (i = 0; i < 6; i++) {
        if (d->bar[i].size) {
            info("%s %s: BAR%d 0x%" PRIx64 "-0x%" PRIx64 " size 0x%" PRIx64
                 " flags 0x%" PRIx64, n, k, i, d->bar[i].start, d->bar[i].end,
                 d->bar[i].size, d->bar[i].flags);
        }
    }
    find_cap(d, 0x11, caps, sizeof(caps));
    info("%s %s: capabilities [%s] interrupt pin %u", n, k,
         caps[0] ? caps : "none", d->cfg[0x3d]);

    result(rev == 1, "%s %s: revision 1 (got 0x%lx)", n, k, rev);
    result(svendor == 0x1af4 && sdevice == 0x1100,
           "%s %s: subsystem 1af4:1100 (got %04lx:%04lx)", n, k,
           svendor, sdevice);
    result(class == 0x050000, "%s %s: class 0x0500 memory controller/RAM "
           "(got 0x%06lx)", n, k, class);
    result(d->cfg[0x3d] == 0, "%s %s: interrupt pin 0, no INTx (got %u)",
           n, k, d->cfg[0x3d]);

    result(b0->size == 256 && (b0->flags & IORESOURCE_MEM) &&
           !(b0->flags & IORESOURCE_MEM_64) && (raw0 & 0x7) == 0,
           "%s %s: BAR0 32-bit memory, 256 bytes (size 0x%" PRIx64
           ", flags 0x%" PRIx64 ", BAR 0x%08" PRIx32 ")", n, k,
           b0->size, b0->flags, raw0);
    result(b2->size == shm_size && (b2->flags & IORESOURCE_MEM) &&
           (b2->flags & IORESOURCE_PREFETCH) && (b2->flags & IORESOURCE_MEM_64) &&
           (raw2 & 0xf) == 0xc,
           "%s %s: BAR2 64-bit prefetchable memory, 0x%" PRIx64 " bytes "
           "(size 0x%" PRIx64 ", flags 0x%" PRIx64 ", BAR 0x%08" PRIx32 ")",
           n, k, shm_size, b2->size, b2->flags, raw2);

    if (!strcmp(k, "plain")) {
        result(!d->has_msix, "%s plain: no MSI-X capability", n);
        result(b1->size == 0, "%s plain: no BAR1 (size 0x%" PRIx64 ")",
               n, b1->size);
    } else {
        unsigned c = d->msix_cap;
        uint16_t ctrl = c ? cfg16(d, c + 2) : 0;
        uint32_t table = c ? cfg32(d, c + 4) : 0, pba = c ? cfg32(d, c + 8) : 0;
        unsigned tsize = (ctrl & 0x7ff) + 1;

        result(d->has_msix, "%s doorbell: MSI-X capability present", n);
        result(c && tsize == vectors && (table & 7) == 1 && (pba & 7) == 1,
               "%s doorbell: MSI-X table of %u entries, table and PBA in BAR1 "
               "(entries %u, table 0x%08" PRIx32 ", PBA 0x%08" PRIx32 ")",
               n, vectors, tsize, table, pba);
        result(b1->size && (b1->flags & IORESOURCE_MEM) &&
               (uint64_t)tsize * 16 <= b1->size,
               "%s doorbell: BAR1 memory holds the MSI-X table (size 0x%"
               PRIx64 ")", n, b1->size);
    }
}

/* ---- BAR access through sysfs resourceN ---- */

static volatile void *map_bar(struct dev *d, int bar, size_t size)
{
    char path[512];
    void *p;
    int fd;

    snprintf(path, sizeof(path), "%s/resource%d", d->dir, bar);
    fd = open(path, O_RDWR | O_SYNC);
    if (fd < 0) {
        info("open %s: %s", path, strerror(errno));
        return NULL;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        info("mmap %s: %s", path, strerror(errno));
        return NULL;
    }
    return p;
}

static uint32_t rd32(volatile void *base, size_t off)
{
    return *(volatile uint32_t *)((volatile char *)base + off);
}

static void wr32(volatile void *base, size_t off, uint32_t v)
{
    *(volatile uint32_t *)((volatile char *)base + off) = v;
}

static void check_registers(struct dev *d)
{
    volatile void *regs = map_bar(d, 0, 256);
    const char *n = d->name, *k = d->kind;
    uint32_t v, v2;
    int32_t pos;

    result(regs != NULL, "%s %s: BAR0 maps through sysfs resource0", n, k);
    if (!regs) {
        return;
    }
    pos = (int32_t)rd32(regs, REG_IVPOSITION);
    d->ivpos = pos;
    info("%s %s: IVPOSITION %" PRId32, n, k, pos);
    if (!strcmp(k, "plain")) {
        result(pos == 0, "%s plain: IVPOSITION reads 0 (got %" PRId32 ")",
               n, pos);
    } else {
        result(pos >= 0 && pos <= 0xffff,
               "%s doorbell: IVPOSITION is a peer ID 0..65535 (got %" PRId32
               ")", n, pos);
    }
    wr32(regs, REG_IVPOSITION, 0x1234);
    result((int32_t)rd32(regs, REG_IVPOSITION) == pos,
           "%s %s: IVPOSITION ignores writes", n, k);

    wr32(regs, REG_INTRMASK, 0xa5a5f00d);
    v = rd32(regs, REG_INTRMASK);
    wr32(regs, REG_INTRMASK, 0);
    result(v == 0xa5a5f00d, "%s %s: INTRMASK is read/write storage "
           "(read 0x%08" PRIx32 ")", n, k, v);

    wr32(regs, REG_INTRSTATUS, 0x5a5a0ff0);
    v = rd32(regs, REG_INTRSTATUS);
    v2 = rd32(regs, REG_INTRSTATUS);
    result(v == 0x5a5a0ff0 && v2 == 0, "%s %s: INTRSTATUS reads back, "
           "then reads 0 (read 0x%08" PRIx32 ", 0x%08" PRIx32 ")",
           n, k, v, v2);

    v = rd32(regs, REG_DOORBELL);
    wr32(regs, REG_RESERVED, 0xffffffff);
    v2 = rd32(regs, REG_RESERVED) | rd32(regs, 0xfc);
    result(v == 0 && v2 == 0, "%s %s: DOORBELL and reserved registers "
           "read 0 (0x%08" PRIx32 ", 0x%08" PRIx32 ")", n, k, v, v2);
    munmap((void *)regs, 256);
}

static uint32_t word_pattern(uint32_t nonce, uint32_t i)
{
    return (nonce * 2654435761u) ^ (i * 0x9e3779b9u) ^ 0xa5a5a5a5u;
}

static void fill_magic(char *buf, const char *what, uint32_t nonce)
{
    memset(buf, 0, MAGIC_LEN);
    snprintf(buf, MAGIC_LEN, "ivshmem-linux-check %s %08" PRIx32, what, nonce);
}

static int match_at(volatile void *mem, size_t off, const char *magic)
{
    volatile char *p = (volatile char *)mem + off;
    int i;

    for (i = 0; i < MAGIC_LEN; i++) {
        if (p[i] != magic[i]) {
            return 0;
        }
    }
    return 1;
}

static void put_at(volatile void *mem, size_t off, const char *magic)
{
    volatile char *p = (volatile char *)mem + off;
    int i;

    for (i = 0; i < MAGIC_LEN; i++) {
        p[i] = magic[i];
    }
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int wait_for(volatile void *mem, size_t off, const char *magic,
                    unsigned seconds, double *waited)
{
    double t0 = now();

    for (;;) {
        if (match_at(mem, off, magic)) {
            *waited = now() - t0;
            return 1;
        }
        if (now() - t0 > seconds) {
            *waited = now() - t0;
            return 0;
        }
        usleep(20000);
    }
}

/* The plain device's memory is shared with the host and the peer guest. */
static void exchange_plain(struct dev *d, const char *role, uint32_t nonce,
                           unsigned wait_s)
{
    uint64_t size = d->bar[2].size;
    volatile void *mem = map_bar(d, 2, size);
    char hello[MAGIC_LEN], ack[MAGIC_LEN], host[MAGIC_LEN];
    const char *n = d->name;
    double waited;
    uint32_t i, bad = 0;

    result(mem != NULL, "%s plain: BAR2 maps through sysfs resource2", n);
    if (!mem) {
        return;
    }
    fill_magic(hello, "A", nonce);
    fill_magic(ack, "B-ack", nonce);
    fill_magic(host, "host", nonce);

    /* The host wrote into the backing file before either guest started. */
    result(match_at(mem, HOST_PLAIN_OFF, host), "%s plain: what the host "
           "wrote into the backing file reads back from BAR2", n);

    if (!strcmp(role, "a")) {
        for (i = 0; i < A_WORDS_LEN / 4; i++) {
            wr32(mem, A_WORDS_OFF + 4 * i, word_pattern(nonce, i));
        }
        wr32(mem, size - 4, nonce ^ 0xffffffffu);      /* last word */
        for (i = 0; i < A_WORDS_LEN / 4; i++) {
            bad += rd32(mem, A_WORDS_OFF + 4 * i) != word_pattern(nonce, i);
        }
        bad += rd32(mem, size - 4) != (nonce ^ 0xffffffffu);
        put_at(mem, A_HELLO_OFF, hello);   /* last: tells b the rest is there */
        result(bad == 0, "%s plain: wrote the pattern into BAR2 and read "
               "it back (%u bad words)", n, bad);
        int ok = wait_for(mem, B_ACK_OFF, ack, wait_s, &waited);

        result(ok, "%s plain: the peer guest's acknowledgement appears in "
               "BAR2 (after %.1f s)", n, waited);
    } else {
        int ok = wait_for(mem, A_HELLO_OFF, hello, wait_s, &waited);

        result(ok, "%s plain: the peer guest's pattern appears in BAR2 "
               "(after %.1f s)", n, waited);
        if (ok) {
            for (i = 0; i < A_WORDS_LEN / 4; i++) {
                bad += rd32(mem, A_WORDS_OFF + 4 * i) != word_pattern(nonce, i);
            }
            bad += rd32(mem, size - 4) != (nonce ^ 0xffffffffu);
            result(bad == 0, "%s plain: all of the peer guest's words read "
                   "back from BAR2 (%u bad words)", n, bad);
            put_at(mem, B_ACK_OFF, ack);
            info("%s plain: acknowledgement written", n);
        }
    }
    munmap((void *)mem, size);
}

/* The doorbell device's memory is the server's, which the host reads. */
static void exchange_doorbell(struct dev *d, uint32_t nonce)
{
    uint64_t size = d->bar[2].size;
    volatile void *mem = map_bar(d, 2, size);
    char magic[MAGIC_LEN];
    uint32_t i, bad = 0;

    result(mem != NULL, "%s doorbell: BAR2 maps through sysfs resource2",
           d->name);
    if (!mem) {
        return;
    }
    fill_magic(magic, "doorbell", nonce);
    for (i = 0; i < A_WORDS_LEN / 4; i++) {
        wr32(mem, A_WORDS_OFF + 4 * i, ~word_pattern(nonce, i));
    }
    wr32(mem, size - 4, nonce);
    put_at(mem, A_HELLO_OFF, magic);
    for (i = 0; i < A_WORDS_LEN / 4; i++) {
        bad += rd32(mem, A_WORDS_OFF + 4 * i) != ~word_pattern(nonce, i);
    }
    result(bad == 0 && match_at(mem, A_HELLO_OFF, magic),
           "%s doorbell: wrote the pattern into BAR2 and read it back "
           "(%u bad words)", d->name, bad);
    munmap((void *)mem, size);
}

/* ---- MSI-X interrupts, through the test driver ivshmem-irq.ko ---- */

static int irq_counts(struct dev *d, unsigned *counts, unsigned max)
{
    char buf[4096], *p = buf, *end;
    int n = 0;

    if (read_file(d->dir, "irq_counts", buf, sizeof(buf)) < 0) {
        return -1;
    }
    while (n < (int)max) {
        unsigned long v = strtoul(p, &end, 10);

        if (end == p) {
            break;
        }
        counts[n++] = v;
        p = end;
    }
    return n;
}

static int ring(struct dev *d, unsigned peer, unsigned vector)
{
    char val[32];

    snprintf(val, sizeof(val), "0x%x", peer << 16 | vector);
    return write_file(d->dir, "doorbell", val);
}

/*
 * Wait until vector @v's count exceeds @before[v]; returns 1 if it did
 * within @seconds; *others is set when another vector's count changed.
 */
static int wait_irq(struct dev *d, const unsigned *before, unsigned nvec,
                    unsigned v, double seconds, int *others)
{
    unsigned now_c[64];
    double t0 = now();
    unsigned i;

    *others = 0;
    for (;;) {
        if (irq_counts(d, now_c, nvec) != (int)nvec) {
            return 0;
        }
        for (i = 0; i < nvec; i++) {
            if (i != v && now_c[i] != before[i]) {
                *others = 1;
            }
        }
        if (v < nvec && now_c[v] > before[v]) {
            return 1;
        }
        if (now() - t0 > seconds) {
            return 0;
        }
        usleep(10000);
    }
}

/* Diagnostics for an interrupt that did not come: MSI-X state as seen. */
static void dump_msix(struct dev *d, unsigned vectors)
{
    volatile void *tab = map_bar(d, 1, d->bar[1].size);
    uint32_t pba_off = cfg32(d, d->msix_cap + 8) & ~7u;
    char buf[8192], *line, *save = NULL;
    unsigned v;

    read_config(d);
    info("%s doorbell: MSI-X control 0x%04x", d->name,
         cfg16(d, d->msix_cap + 2));
    for (v = 0; tab && v < vectors && v < 8; v++) {
        info("%s doorbell: MSI-X entry %u: addr 0x%08" PRIx32 "%08" PRIx32
             " data 0x%08" PRIx32 " ctrl 0x%08" PRIx32 " pending %u", d->name,
             v, rd32(tab, 16 * v + 4), rd32(tab, 16 * v), rd32(tab, 16 * v + 8),
             rd32(tab, 16 * v + 12), (rd32(tab, pba_off) >> v) & 1);
    }
    if (tab) {
        munmap((void *)tab, d->bar[1].size);
    }
    if (read_file("/proc", "interrupts", buf, sizeof(buf)) > 0) {
        for (line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            if (strstr(line, "ivshmem") || strstr(line, "CPU0")) {
                info("interrupts: %s", line);
            }
        }
    }
}

static void check_interrupts(struct dev *d, unsigned vectors, uint32_t nonce,
                             int hostpeer, unsigned wait_s)
{
    char link[512], path[512], magic[MAGIC_LEN];
    unsigned before[64], v;
    const char *n = d->name;
    volatile void *mem;
    int others, got;
    ssize_t len;

    snprintf(path, sizeof(path), "%s/driver", d->dir);
    len = readlink(path, link, sizeof(link) - 1);
    link[len > 0 ? len : 0] = 0;
    if (!strstr(link, "ivshmem_irq")) {
        info("%s doorbell: test driver not bound (%s): no interrupt checks",
             n, link[0] ? link : "no driver");
        return;
    }
    read_config(d);
    result(cfg16(d, d->msix_cap + 2) & 0x8000,
           "%s doorbell: bound to ivshmem_irq, MSI-X enabled", n);
    if (vectors > 64 || irq_counts(d, before, vectors) != (int)vectors) {
        result(0, "%s doorbell: driver reports %u vectors", n, vectors);
        return;
    }
    for (v = 0; v < vectors; v++) {
        irq_counts(d, before, vectors);
        ring(d, d->ivpos, v);
        got = wait_irq(d, before, vectors, v, 5, &others);
        result(got && !others, "%s doorbell: ringing itself (peer %d) on "
               "vector %u raises MSI-X vector %u only", n, d->ivpos, v, v);
        if (!got) {
            dump_msix(d, vectors);
        }
    }
    irq_counts(d, before, vectors);
    ring(d, 0xfffe, 0);
    ring(d, d->ivpos, vectors);             /* no such vector */
    got = wait_irq(d, before, vectors, vectors, 1, &others);
    result(!others, "%s doorbell: ringing an absent peer or vector raises "
           "nothing", n);

    if (!hostpeer) {
        return;
    }
    /* The host peer announces its ID in the shared memory. */
    mem = map_bar(d, 2, d->bar[2].size);
    if (!mem) {
        result(0, "%s doorbell: BAR2 maps for the host peer exchange", n);
        return;
    }
    fill_magic(magic, "host-peer", nonce);
    {
        double waited;
        int ok = wait_for(mem, HOST_PEER_OFF, magic, wait_s, &waited);
        unsigned host = rd32(mem, HOST_PEER_OFF + MAGIC_LEN);

        result(ok && host <= 0xffff, "%s doorbell: the host peer's ID appears "
               "in BAR2 (peer %u, after %.1f s)", n, host, waited);
        if (!ok) {
            munmap((void *)mem, d->bar[2].size);
            return;
        }
        v = vectors > 1 ? 1 : 0;
        irq_counts(d, before, vectors);
        result(ring(d, host, 0) == 0, "%s doorbell: rang the host peer %u "
               "on vector 0", n, host);
        got = wait_irq(d, before, vectors, v, wait_s, &others);
        result(got, "%s doorbell: the host peer's doorbell raises MSI-X "
               "vector %u", n, v);
    }
    munmap((void *)mem, d->bar[2].size);
}

int main(void)
{
    struct dev devs[8], *plain = NULL, *doorbell = NULL;
    int n, i, nplain = 0, ndoorbell = 0;
    const char *role;
    uint64_t plain_size, doorbell_size;
    unsigned vectors, wait_s;
    uint32_t nonce;

    read_cmdline();
    role = strdup(param("ivt.role", "a"));
    nonce = (uint32_t)strtoul(param("ivt.nonce", "1"), NULL, 16);
    plain_size = param_u64("ivt.plain", 0);
    doorbell_size = param_u64("ivt.doorbell", 0);
    vectors = param_u64("ivt.vectors", 1);
    wait_s = param_u64("ivt.wait", 90);
    info("role %s nonce %08" PRIx32 " plain 0x%" PRIx64 " doorbell 0x%" PRIx64
         " vectors %u", role, nonce, plain_size, doorbell_size, vectors);

    n = find_devices(devs, 8);
    for (i = 0; i < n; i++) {
        char caps[256];

        if (read_config(&devs[i]) < 0 || read_resources(&devs[i]) < 0) {
            result(0, "%s: sysfs config and resource readable", devs[i].name);
            continue;
        }
        devs[i].msix_cap = find_cap(&devs[i], 0x11, caps, sizeof(caps));
        devs[i].has_msix = devs[i].msix_cap != 0;
        devs[i].kind = devs[i].has_msix ? "doorbell" : "plain";
        if (devs[i].has_msix) {
            ndoorbell++;
            doorbell = &devs[i];
        } else {
            nplain++;
            plain = &devs[i];
        }
    }
    result(nplain == 1 && ndoorbell == (doorbell_size ? 1 : 0),
           "PCI core lists 1af4:1110 devices: %d plain (want 1), %d doorbell "
           "(want %d)", nplain, ndoorbell, doorbell_size ? 1 : 0);

    for (i = 0; i < n; i++) {
        if (!devs[i].kind) {
            continue;
        }
        /*
         * pci_enable_device() through sysfs, for memory decoding, as a
         * driver would; a device with a driver is enabled by the driver
         * (and sysfs refuses with EBUSY).
         */
        char drv[320];
        int bound;

        snprintf(drv, sizeof(drv), "%s/driver", devs[i].dir);
        bound = access(drv, F_OK) == 0;
        result((bound || write_file(devs[i].dir, "enable", "1") == 0) &&
               (read_config(&devs[i]), cfg16(&devs[i], 0x04) & 0x2),
               "%s %s: enabled %s, memory decoding on", devs[i].name,
               devs[i].kind, bound ? "by its driver" : "through sysfs");
        check_identity(&devs[i], devs[i].has_msix ? doorbell_size : plain_size,
                       vectors);
        check_registers(&devs[i]);
    }
    if (doorbell) {
        exchange_doorbell(doorbell, nonce);
    }
    if (plain) {
        exchange_plain(plain, role, nonce, wait_s);
    }
    if (doorbell) {
        check_interrupts(doorbell, vectors, nonce,
                         param_u64("ivt.hostpeer", 0), wait_s);
    }

    printf("IVT done passed=%u failed=%u\n", passed, failed);
    fflush(stdout);
    fsync(1);
#if defined(__x86_64__) || defined(__i386__)
    if (param_u64("ivt.exit", 0) && ioperm(0xf4, 4, 1) == 0) {
        outl(failed ? 0x11 : 0x10, 0xf4);
    }
#endif
    return failed ? 1 : 0;
}
