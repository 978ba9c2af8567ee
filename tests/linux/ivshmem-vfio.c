/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ivshmem-vfio: MSI-X doorbells of ivshmem-doorbell from Linux userspace
 * through the kernel's own vfio-pci, as userspace ivshmem drivers do it.
 *
 * Runs inside the Linux guest check's guest (statically linked, from the
 * busybox initramfs, after ivshmem-probe), with the kernel's vfio modules
 * loaded and no driver of ours:
 *
 * - finds the doorbell device (1af4:1110 with an MSI-X capability) in
 *   sysfs and binds it to vfio-pci through driver_override;
 * - opens its VFIO group: /dev/vfio/noiommu-N when the kernel runs vfio
 *   without an IOMMU, else /dev/vfio/N behind the machine's IOMMU (Debian's
 *   kernels lack CONFIG_VFIO_NOIOMMU, so the check gives the guest one);
 *   attaches it to a container with the matching IOMMU model and gets the
 *   device fd;
 * - checks the regions vfio reports (BAR0 256 bytes, BAR2 the memory's
 *   size) and the MSI-X interrupt count, maps BAR0 and BAR2 through the
 *   vfio regions (BAR0 through pread/pwrite when vfio offers no mmap of a
 *   BAR smaller than a page), and finds in BAR2 what ivshmem-probe wrote
 *   there through sysfs;
 * - turns on bus mastering through the config region (vfio-pci leaves it
 *   to userspace, and an MSI-X message is a memory write of the device);
 * - gives every MSI-X vector an eventfd (VFIO_DEVICE_SET_IRQS), rings its
 *   own ID on each vector through DOORBELL and checks that exactly that
 *   vector's eventfd fires, once, and that /proc/interrupts counts them on
 *   the expected chip (ITS-MSI on aarch64); rings an absent peer and a
 *   vector beyond the count and checks that nothing fires;
 * - with a host peer (ivshmem-client), waits for its ID in BAR2, rings it
 *   on vector 0 and waits for its doorbell on vector 1;
 * - releases the vectors.  A driver bound before (ivshmem-irq.ko on x86)
 *   stays unbound: the guest ends after this program.
 *
 * Parameters come from the kernel command line (/proc/cmdline), as for
 * ivshmem-probe: ivt.nonce, ivt.doorbell (expected BAR2 size), ivt.vectors,
 * ivt.wait; and ivt.vfio.hostpeer=1 for the host peer exchange (its own
 * name: where ivshmem-probe takes the host peer's doorbells through
 * ivshmem-irq.ko, x86, the host peer rings once and only for it).
 *
 * Output, on stdout: "IVT ok - vfio: ..." / "IVT not ok - vfio: ..." per
 * check, "IVT # " information, and a last line
 *   "IVT done ivshmem-vfio passed=N failed=M".
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/vfio.h>

#define IVT_PREFIX "vfio: "
#include "ivt.h"

#define MAX_VECTORS     64

static int write_file(const char *path, const char *val)
{
    int fd, ret;

    fd = open(path, O_WRONLY);
    if (fd < 0) {
        return -errno;
    }
    ret = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -errno;
    close(fd);
    return ret;
}

static long read_hex(const char *dir, const char *name)
{
    char buf[64];

    if (read_file(dir, name, buf, sizeof(buf)) < 0) {
        return -1;
    }
    return strtol(buf, NULL, 16);
}

/* The last component of the symbolic link @dir/@name, or "" */
static void link_name(const char *dir, const char *name, char *out, size_t len)
{
    char path[512], target[512];
    ssize_t n;
    const char *last;
    size_t l;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    n = readlink(path, target, sizeof(target) - 1);
    target[n > 0 ? n : 0] = 0;
    last = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
    l = strlen(last) < len ? strlen(last) : len - 1;
    memcpy(out, last, l);
    out[l] = 0;
}

/* Does config space (read through sysfs) list an MSI-X capability? */
static int has_msix(const char *dir)
{
    uint8_t cfg[256];
    unsigned off, guard;
    char path[512];
    int fd;

    snprintf(path, sizeof(path), "%s/config", dir);
    fd = open(path, O_RDONLY);
    if (fd < 0) {
        return 0;
    }
    if (pread(fd, cfg, sizeof(cfg), 0) != sizeof(cfg)) {
        close(fd);
        return 0;
    }
    close(fd);
    if (!(cfg[0x06] & 0x10)) {
        return 0;
    }
    for (off = cfg[0x34] & 0xfc, guard = 0; off && guard < 48; guard++) {
        if (cfg[off] == 0x11) {
            return 1;
        }
        off = cfg[off + 1] & 0xfc;
    }
    return 0;
}

static int find_doorbell(char *name, size_t len)
{
    const char *base = "/sys/bus/pci/devices";
    DIR *dir = opendir(base);
    struct dirent *e;
    int n = 0;

    if (!dir) {
        return 0;
    }
    while ((e = readdir(dir)) != NULL) {
        char path[320];

        if (e->d_name[0] == '.' || strlen(e->d_name) > 200) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
        if (read_hex(path, "vendor") == IVSHMEM_VENDOR &&
            read_hex(path, "device") == IVSHMEM_DEVICE && has_msix(path)) {
            if (!n++) {
                snprintf(name, len, "%s", e->d_name);
            }
        }
    }
    closedir(dir);
    return n;
}

/* driver_override, then unbind from any driver and let the core probe */
static int bind_vfio(const char *bdf, const char *dir, char *drv, size_t len)
{
    char path[512];
    int ret;

    snprintf(path, sizeof(path), "%s/driver_override", dir);
    ret = write_file(path, "vfio-pci");
    if (ret) {
        info("write %s: %s", path, strerror(-ret));
        return ret;
    }
    link_name(dir, "driver", drv, len);
    if (drv[0] && strcmp(drv, "vfio-pci")) {
        snprintf(path, sizeof(path), "%s/driver/unbind", dir);
        ret = write_file(path, bdf);
        if (ret) {
            info("write %s: %s", path, strerror(-ret));
        }
    }
    link_name(dir, "driver", drv, len);
    if (!drv[0]) {
        ret = write_file("/sys/bus/pci/drivers_probe", bdf);
        if (ret) {
            info("write drivers_probe: %s", strerror(-ret));
        }
    }
    link_name(dir, "driver", drv, len);
    return strcmp(drv, "vfio-pci") ? -ENODEV : 0;
}

/* ---- time, eventfds ---- */

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Read (and so reset) every eventfd that has fired; counts[i] gets its value. */
static void drain(const int *efd, unsigned n, uint64_t *counts)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        uint64_t v = 0;

        counts[i] = read(efd[i], &v, sizeof(v)) == sizeof(v) ? v : 0;
    }
}

/*
 * Wait up to @seconds until eventfd @want has fired (@want >= n: wait the
 * whole time for nothing), then collect every eventfd's count into
 * @counts.  Returns 1 when @want fired.
 */
static int wait_vector(const int *efd, unsigned n, unsigned want,
                       double seconds, uint64_t *counts)
{
    struct pollfd pfd = { .fd = want < n ? efd[want] : -1, .events = POLLIN };
    double t0 = now(), left;
    int r = 0;

    for (;;) {
        left = seconds - (now() - t0);
        if (left <= 0) {
            break;
        }
        r = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (r != 0 && !(r < 0 && errno == EINTR)) {
            break;
        }
    }
    drain(efd, n, counts);
    return want < n && counts[want] > 0;
}

static void fmt_counts(const uint64_t *counts, unsigned n, char *buf,
                       size_t len)
{
    size_t used = 0;
    unsigned i;

    buf[0] = 0;
    for (i = 0; i < n && used < len; i++) {
        used += snprintf(buf + used, len - used, "%s%" PRIu64, i ? " " : "",
                         counts[i]);
    }
}

/* Diagnostics for an interrupt that did not come: what the kernel counted */
static void show_interrupts(void)
{
    char buf[16384], *line, *save = NULL;

    if (read_file("/proc", "interrupts", buf, sizeof(buf)) <= 0) {
        return;
    }
    for (line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strstr(line, "vfio") || strstr(line, "CPU0")) {
            info("interrupts: %s", line);
        }
    }
}

/*
 * Which interrupt controller delivered the vectors: /proc/interrupts has a
 * "vfio-msix[N](BDF)" line per vector, with the per-CPU counts and the
 * chip's name.  On aarch64 MSI-X goes through the GICv3 ITS ("ITS-MSI");
 * on x86 the chip is PCI-MSI (IR-PCI-MSI behind interrupt remapping).
 */
#if defined(__aarch64__)
#define MSI_CHIP "ITS-MSI"
#else
#define MSI_CHIP "PCI-MSI"
#endif

static void check_irq_chip(const char *bdf, unsigned vectors)
{
    char buf[16384], *line, *save = NULL;
    unsigned lines = 0, chip = 0, fired = 0;

    if (read_file("/proc", "interrupts", buf, sizeof(buf)) <= 0) {
        result(0, "/proc/interrupts readable");
        return;
    }
    for (line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned long long sum = 0;
        char *p, *end;

        if (!strstr(line, "vfio-msix") || !strstr(line, bdf)) {
            continue;
        }
        info("interrupts: %s", line);
        lines++;
        chip += strstr(line, MSI_CHIP) != NULL;
        /* "IRQ:" then one count per CPU */
        p = strchr(line, ':');
        for (p = p ? p + 1 : line; ; p = end) {
            unsigned long long c = strtoull(p, &end, 10);

            if (end == p) {
                break;
            }
            sum += c;
        }
        fired += sum > 0;
    }
    result(lines == vectors && chip == vectors && fired == vectors,
           "the %u vfio-msix interrupts are " MSI_CHIP " interrupts that "
           "fired (%u listed, %u " MSI_CHIP ", %u fired)", vectors, lines,
           chip, fired);
}

/* ---- BAR0 through the vfio region ---- */

struct bar0 {
    int fd;
    uint64_t offset;                /* region offset in the device fd */
    volatile uint32_t *map;         /* NULL: pread/pwrite */
};

static uint32_t bar0_read(struct bar0 *b, unsigned reg)
{
    uint32_t v = 0xffffffff;

    if (b->map) {
        return b->map[reg / 4];
    }
    if (pread(b->fd, &v, 4, b->offset + reg) != 4) {
        info("pread BAR0 0x%x: %s", reg, strerror(errno));
    }
    return v;
}

static int bar0_write(struct bar0 *b, unsigned reg, uint32_t v)
{
    if (b->map) {
        b->map[reg / 4] = v;
        return 0;
    }
    return pwrite(b->fd, &v, 4, b->offset + reg) == 4 ? 0 : -errno;
}

static int ring(struct bar0 *b, unsigned peer, unsigned vector)
{
    return bar0_write(b, REG_DOORBELL, peer << 16 | vector);
}

static int match_magic(volatile char *mem, const char *what, uint32_t nonce)
{
    char magic[MAGIC_LEN];
    int i;

    memset(magic, 0, sizeof(magic));
    snprintf(magic, sizeof(magic), "ivshmem-linux-check %s %08" PRIx32,
             what, nonce);
    for (i = 0; i < MAGIC_LEN; i++) {
        if (mem[i] != magic[i]) {
            return 0;
        }
    }
    return 1;
}

/* ---- the checks ---- */

static int run(uint32_t nonce, uint64_t shm_size, unsigned vectors,
               unsigned wait_s, int hostpeer)
{
    char bdf[256], dir[320], drv[64], grp[64], path[512], buf[256];
    struct vfio_group_status gstatus = { .argsz = sizeof(gstatus) };
    struct vfio_device_info dinfo = { .argsz = sizeof(dinfo) };
    struct vfio_region_info r0 = { .argsz = sizeof(r0) };
    struct vfio_region_info r2 = { .argsz = sizeof(r2) };
    struct vfio_region_info rc = { .argsz = sizeof(rc) };
    struct vfio_irq_info irq = { .argsz = sizeof(irq) };
    struct vfio_irq_set *set;
    uint64_t counts[MAX_VECTORS];
    int efd[MAX_VECTORS];
    struct bar0 bar0 = { .fd = -1 };
    volatile char *shm = MAP_FAILED;
    int container = -1, group = -1, dev = -1, noiommu, iommu_type;
    int32_t ivpos;
    uint32_t id = 0;
    unsigned v, i;
    int n, ok, r;

    for (i = 0; i < MAX_VECTORS; i++) {
        efd[i] = -1;
    }
    n = find_doorbell(bdf, sizeof(bdf));
    result(n == 1, "one ivshmem-doorbell function in sysfs (found %d)", n);
    if (n < 1) {
        return -1;
    }
    snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", bdf);
    r = bind_vfio(bdf, dir, drv, sizeof(drv));
    result(r == 0, "%s bound to vfio-pci through driver_override (driver %s)",
           bdf, drv[0] ? drv : "none");
    if (r) {
        return -1;
    }

    link_name(dir, "iommu_group", grp, sizeof(grp));
    snprintf(path, sizeof(path), "/dev/vfio/noiommu-%s", grp);
    noiommu = access(path, F_OK) == 0;
    if (!noiommu) {
        snprintf(path, sizeof(path), "/dev/vfio/%s", grp);
    }
    iommu_type = noiommu ? VFIO_NOIOMMU_IOMMU : VFIO_TYPE1v2_IOMMU;
    info("%s: IOMMU group %s, %s", bdf, grp[0] ? grp : "none",
         noiommu ? "no-IOMMU mode" : "behind the machine's IOMMU");
    group = open(path, O_RDWR);
    result(group >= 0, "opened the VFIO group %s", path);
    if (group < 0) {
        info("open %s: %s", path, strerror(errno));
        goto out;
    }
    container = open("/dev/vfio/vfio", O_RDWR);
    r = container < 0 ? -1 : ioctl(container, VFIO_GET_API_VERSION);
    result(r == VFIO_API_VERSION, "container /dev/vfio/vfio speaks VFIO API "
           "version %d (got %d)", VFIO_API_VERSION, r);
    if (container < 0) {
        goto out;
    }
    r = ioctl(container, VFIO_CHECK_EXTENSION, iommu_type);
    result(r > 0, "the container offers IOMMU model %s",
           noiommu ? "VFIO_NOIOMMU_IOMMU" : "VFIO_TYPE1v2_IOMMU");
    r = ioctl(group, VFIO_GROUP_GET_STATUS, &gstatus);
    result(r == 0 && (gstatus.flags & VFIO_GROUP_FLAGS_VIABLE),
           "the group is viable (flags 0x%x)", gstatus.flags);
    r = ioctl(group, VFIO_GROUP_SET_CONTAINER, &container);
    result(r == 0, "VFIO_GROUP_SET_CONTAINER (%s)", r ? strerror(errno) : "ok");
    if (r) {
        goto out;
    }
    r = ioctl(container, VFIO_SET_IOMMU, iommu_type);
    result(r == 0, "VFIO_SET_IOMMU (%s)", r ? strerror(errno) : "ok");
    if (r) {
        goto out;
    }
    dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
    result(dev >= 0, "VFIO_GROUP_GET_DEVICE_FD %s (%s)", bdf,
           dev < 0 ? strerror(errno) : "ok");
    if (dev < 0) {
        goto out;
    }

    r = ioctl(dev, VFIO_DEVICE_GET_INFO, &dinfo);
    result(r == 0 && (dinfo.flags & VFIO_DEVICE_FLAGS_PCI) &&
           dinfo.num_regions > VFIO_PCI_CONFIG_REGION_INDEX &&
           dinfo.num_irqs > VFIO_PCI_MSIX_IRQ_INDEX,
           "a vfio PCI device (flags 0x%x, %u regions, %u interrupt types)",
           dinfo.flags, dinfo.num_regions, dinfo.num_irqs);

    rc.index = VFIO_PCI_CONFIG_REGION_INDEX;
    r = ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &rc);
    if (r == 0 && pread(dev, &id, 4, rc.offset) == 4) {
        result(id == (IVSHMEM_DEVICE << 16 | IVSHMEM_VENDOR),
               "config region reads vendor:device 1af4:1110 (0x%08" PRIx32
               ")", id);
    } else {
        result(0, "config region readable (%s)", strerror(errno));
    }
    /*
     * An MSI-X message is a memory write by the device: without bus
     * mastering the platform never sees it.  vfio-pci leaves enabling it
     * to userspace, through the config region, as drivers built on vfio
     * do it.
     */
    {
        uint16_t cmd = 0, cmd2 = 0;

        ok = pread(dev, &cmd, 2, rc.offset + 0x04) == 2;
        cmd |= 0x0006;                          /* memory space, bus master */
        ok = ok && pwrite(dev, &cmd, 2, rc.offset + 0x04) == 2;
        ok = ok && pread(dev, &cmd2, 2, rc.offset + 0x04) == 2;
        result(ok && (cmd2 & 0x0006) == 0x0006, "memory decoding and bus "
               "mastering on through the config region (command 0x%04x)",
               cmd2);
    }

    r0.index = VFIO_PCI_BAR0_REGION_INDEX;
    r = ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &r0);
    result(r == 0 && r0.size == 256 && (r0.flags & VFIO_REGION_INFO_FLAG_READ) &&
           (r0.flags & VFIO_REGION_INFO_FLAG_WRITE),
           "BAR0 region: 256 bytes, read/write (size 0x%llx, flags 0x%x)",
           (unsigned long long)r0.size, r0.flags);
    if (r) {
        goto out;
    }
    bar0.fd = dev;
    bar0.offset = r0.offset;
    if (r0.flags & VFIO_REGION_INFO_FLAG_MMAP) {
        void *p = mmap(NULL, r0.size, PROT_READ | PROT_WRITE, MAP_SHARED,
                       dev, r0.offset);

        result(p != MAP_FAILED, "BAR0 maps through the vfio region");
        bar0.map = p == MAP_FAILED ? NULL : p;
    } else {
        /* vfio-pci offers no mmap of a BAR smaller than a page it cannot
         * have alone; the region's read/write path is the way then. */
        info("BAR0 region has no mmap: registers through pread/pwrite");
    }
    ivpos = (int32_t)bar0_read(&bar0, REG_IVPOSITION);
    result(ivpos >= 0 && ivpos <= 0xffff, "IVPOSITION through the vfio "
           "region is a peer ID (%" PRId32 ")", ivpos);

    r2.index = VFIO_PCI_BAR2_REGION_INDEX;
    r = ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &r2);
    result(r == 0 && r2.size == shm_size &&
           (r2.flags & VFIO_REGION_INFO_FLAG_MMAP),
           "BAR2 region: 0x%" PRIx64 " bytes, mmap-able (size 0x%llx, "
           "flags 0x%x)", shm_size, (unsigned long long)r2.size, r2.flags);
    if (r == 0 && (r2.flags & VFIO_REGION_INFO_FLAG_MMAP)) {
        shm = mmap(NULL, r2.size, PROT_READ | PROT_WRITE, MAP_SHARED, dev,
                   r2.offset);
    }
    result(shm != MAP_FAILED && match_magic(shm + A_HELLO_OFF, "doorbell",
                                            nonce),
           "BAR2 through the vfio region holds what ivshmem-probe wrote "
           "through sysfs");

    irq.index = VFIO_PCI_MSIX_IRQ_INDEX;
    r = ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &irq);
    result(r == 0 && irq.count == vectors &&
           (irq.flags & VFIO_IRQ_INFO_EVENTFD),
           "MSI-X: %u interrupts, signalled through eventfds (count %u, "
           "flags 0x%x)", vectors, irq.count, irq.flags);
    if (r || vectors == 0 || vectors > MAX_VECTORS) {
        result(vectors > 0 && vectors <= MAX_VECTORS, "at most %d vectors "
               "to test (ivt.vectors=%u)", MAX_VECTORS, vectors);
        goto out;
    }

    set = calloc(1, sizeof(*set) + vectors * sizeof(int));
    if (!set) {
        result(0, "memory for VFIO_DEVICE_SET_IRQS");
        goto out;
    }
    set->argsz = sizeof(*set) + vectors * sizeof(int);
    set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    set->index = VFIO_PCI_MSIX_IRQ_INDEX;
    set->start = 0;
    set->count = vectors;
    for (v = 0; v < vectors; v++) {
        efd[v] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        ((int *)set->data)[v] = efd[v];
    }
    r = ioctl(dev, VFIO_DEVICE_SET_IRQS, set);
    free(set);
    result(r == 0, "VFIO_DEVICE_SET_IRQS: an eventfd for each of the %u "
           "MSI-X vectors (%s)", vectors, r ? strerror(errno) : "ok");
    if (r) {
        goto out;
    }

    for (v = 0; v < vectors; v++) {
        drain(efd, vectors, counts);
        r = ring(&bar0, ivpos, v);
        ok = wait_vector(efd, vectors, v, 5, counts);
        for (i = 0; i < vectors; i++) {
            if (counts[i] != (i == v)) {
                ok = 0;
            }
        }
        fmt_counts(counts, vectors, buf, sizeof(buf));
        result(r == 0 && ok, "ringing itself (peer %" PRId32 ") on vector %u "
               "fires eventfd %u once, no other (counts %s)", ivpos, v, v,
               buf);
        if (!ok) {
            show_interrupts();
        }
    }

    check_irq_chip(bdf, vectors);

    drain(efd, vectors, counts);
    ring(&bar0, 0xfffe, 0);
    ring(&bar0, ivpos, vectors);               /* no such vector */
    wait_vector(efd, vectors, vectors, 1, counts);
    ok = 1;
    for (i = 0; i < vectors; i++) {
        ok &= counts[i] == 0;
    }
    fmt_counts(counts, vectors, buf, sizeof(buf));
    result(ok, "ringing an absent peer or vector fires nothing (counts %s)",
           buf);

    if (hostpeer && shm != MAP_FAILED) {
        double t0 = now();
        unsigned host;

        /* The host peer writes its ID after its marker, marker first. */
        while (!match_magic(shm + HOST_PEER_OFF, "host-peer", nonce) &&
               now() - t0 < wait_s) {
            usleep(20000);
        }
        ok = match_magic(shm + HOST_PEER_OFF, "host-peer", nonce);
        host = *(volatile uint32_t *)(shm + HOST_PEER_OFF + MAGIC_LEN);
        result(ok && host <= 0xffff, "the host peer's ID appears in BAR2 "
               "(peer %u, after %.1f s)", host, now() - t0);
        if (ok && host <= 0xffff) {
            v = vectors > 1 ? 1 : 0;
            drain(efd, vectors, counts);
            r = ring(&bar0, host, 0);
            result(r == 0, "rang the host peer %u on vector 0", host);
            ok = wait_vector(efd, vectors, v, wait_s, counts);
            fmt_counts(counts, vectors, buf, sizeof(buf));
            result(ok, "the host peer's doorbell fires eventfd %u (counts "
                   "%s)", v, buf);
        }
    }

    /* Give the vectors back: no trigger on any. */
    {
        struct vfio_irq_set off = {
            .argsz = sizeof(off),
            .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
            .index = VFIO_PCI_MSIX_IRQ_INDEX,
            .start = 0,
            .count = 0,
        };

        r = ioctl(dev, VFIO_DEVICE_SET_IRQS, &off);
        result(r == 0, "MSI-X vectors released (%s)",
               r ? strerror(errno) : "ok");
    }

out:
    for (v = 0; v < MAX_VECTORS; v++) {
        if (efd[v] >= 0) {
            close(efd[v]);
        }
    }
    if (shm != MAP_FAILED) {
        munmap((void *)shm, r2.size);
    }
    if (bar0.map) {
        munmap((void *)bar0.map, r0.size);
    }
    if (dev >= 0) {
        close(dev);
    }
    if (group >= 0) {
        close(group);
    }
    if (container >= 0) {
        close(container);
    }
    return 0;
}

int main(void)
{
    read_cmdline();
    run((uint32_t)strtoul(param("ivt.nonce", "1"), NULL, 16), param_u64("ivt.doorbell", 0),
        param_u64("ivt.vectors", 1), param_u64("ivt.wait", 90),
        param_u64("ivt.vfio.hostpeer", 0));
    printf("IVT done ivshmem-vfio passed=%u failed=%u\n", passed, failed);
    fflush(stdout);
    return failed ? 1 : 0;
}
