/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtest: ivshmem devices migrate between an unmodified QEMU and this one.
 *
 * QTEST_QEMU_BINARY is the QEMU under test (the series', on any base), and
 * QTEST_QEMU_BINARY_BASE an unmodified QEMU 10.0, the release in service;
 * without the latter every case skips, saying so.  Each case runs, on one
 * of 10.0's versioned machine types (pc-i440fx-10.0 and pc-q35-10.0), a
 * master device on one binary, migrates it to the other and
 * checks on the destination what the guest had set up on the source:
 * the shared memory written through BAR2, INTRMASK and INTRSTATUS, the
 * BAR addresses, for ivshmem-doorbell the MSI-X table (address, data,
 * per-vector mask) and that it still delivers, and IVPOSITION (0, as
 * both ends are master).
 *
 * ivshmem-plain runs on a memory-backend-file with share=on, on two
 * files or on one file both QEMUs map (a same-host migration).  Each
 * ivshmem-doorbell gets its own ivshmem-server, so that both ends are the
 * first client of their server, peer 0.
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include "ivshmem-utils.h"
#include "libqos/pci-pc.h"
#include "qemu/bswap.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"

#define BASE_ENV        "QTEST_QEMU_BINARY_BASE"
#define SERIES_ENV      "QTEST_QEMU_BINARY"

#define SLOT            4
#define MEM_SIZE        (1 * MiB)
#define NR_VECTORS      2

/* What the guest on the source leaves in the registers. */
#define SRC_INTRMASK    0xc0ffee11u
#define SRC_INTRSTATUS  0x00beef22u

typedef enum Side {
    SIDE_SERIES,
    SIDE_BASE,
} Side;

typedef struct Case {
    const char *machine;
    bool doorbell;
    bool one_file;              /* plain: source and destination share it */
    Side src, dst;
} Case;

typedef struct Guest {
    QTestState *qts;
    QPCIBus *bus;
    IvsDev *dev;
} Guest;

static const char *side_env(Side side)
{
    return side == SIDE_BASE ? BASE_ENV : SERIES_ENV;
}

static const char *side_name(Side side)
{
    return side == SIDE_BASE ? "base" : "series";
}

/*
 * Check that @qts really is the side it is meant to be: the series'
 * ivshmem-doorbell has setup-timeout-ms, QEMU 10.0's has not.  Migrating
 * the series to itself, or the base to itself, would prove nothing.
 */
static void assert_side(QTestState *qts, Side side)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'device-list-properties', "
                            "'arguments': {'typename': 'ivshmem-doorbell'}}");
    QList *props = qdict_get_qlist(resp, "return");
    const QListEntry *e;
    bool found = false;

    g_assert_nonnull(props);
    QLIST_FOREACH_ENTRY(props, e) {
        QDict *prop = qobject_to(QDict, qlist_entry_obj(e));

        if (g_str_equal(qdict_get_str(prop, "name"), "setup-timeout-ms")) {
            found = true;
        }
    }
    qobject_unref(resp);
    if (found != (side == SIDE_SERIES)) {
        g_test_message("%s QEMU %s setup-timeout-ms: not the %s",
                       side_name(side), found ? "has" : "lacks",
                       side_name(side));
    }
    g_assert_true(found == (side == SIDE_SERIES));
}

static Guest *guest_start(Side side, const char *machine,
                          const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static Guest *guest_start(Side side, const char *machine,
                          const char *fmt, ...)
{
    Guest *g = g_new0(Guest, 1);
    g_autofree char *dev_args = NULL;
    g_autofree char *args = NULL;
    va_list ap;

    va_start(ap, fmt);
    dev_args = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    args = g_strdup_printf("-machine %s -nodefaults -m 32M %s", machine,
                           dev_args);
    g_test_message("%s QEMU (%s): %s", side_name(side),
                   g_getenv(side_env(side)), args);
    g->qts = qtest_init_ext(side_env(side), args, NULL, true);
    assert_side(g->qts, side);
    g->bus = ivs_pci_bus(g->qts);
    return g;
}

static void guest_stop(Guest *g)
{
    if (g) {
        ivs_dev_close(g->dev);
        qpci_free_pc(g->bus);
        qtest_quit(g->qts);
        g_free(g);
    }
}

/* A word of the test pattern, for offset @off of the memory. */
static uint32_t pattern(uint64_t off, uint32_t seed)
{
    return (uint32_t)(off * 0x9e3779b1u) ^ seed;
}

/* Every 64 KiB, the first and the last word, and the memory's last word. */
static bool pattern_next(uint64_t *off)
{
    if (*off == MEM_SIZE - 4) {
        return false;
    }
    if (*off % 0x10000 == 0) {
        *off += 0xfffc;
    } else {
        *off += 4;
    }
    return true;
}

static void pattern_write(IvsDev *d, uint32_t seed)
{
    uint64_t off = 0;

    do {
        qpci_io_writel(d->pdev, d->shm, off, pattern(off, seed));
    } while (pattern_next(&off));
}

static void pattern_check_bar(IvsDev *d, uint32_t seed)
{
    uint64_t off = 0;

    do {
        g_assert_cmphex(qpci_io_readl(d->pdev, d->shm, off), ==,
                        pattern(off, seed));
    } while (pattern_next(&off));
}

/* The memory as the backing file has it, outside of any QEMU. */
static void pattern_check_file(const char *path, uint32_t seed)
{
    int fd = open(path, O_RDONLY);
    uint64_t off = 0;
    uint8_t *mem;

    g_assert_cmpint(fd, >=, 0);
    mem = mmap(NULL, MEM_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    g_assert(mem != MAP_FAILED);
    close(fd);
    do {
        g_assert_cmphex((uint32_t)ldl_le_p(mem + off), ==, pattern(off, seed));
    } while (pattern_next(&off));
    munmap(mem, MEM_SIZE);
}

static uint32_t file_word(const char *path, uint64_t off)
{
    int fd = open(path, O_RDONLY);
    uint32_t le;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, &le, sizeof(le), off), ==, sizeof(le));
    close(fd);
    return le32_to_cpu(le);
}

static uint64_t bar_addr(QPCIDevice *pdev, int bar)
{
    uint8_t reg = PCI_BASE_ADDRESS_0 + bar * 4;
    uint32_t lo = qpci_config_readl(pdev, reg);
    uint64_t addr = lo & PCI_BASE_ADDRESS_MEM_MASK;

    g_assert_cmphex(lo & PCI_BASE_ADDRESS_SPACE, ==,
                    PCI_BASE_ADDRESS_SPACE_MEMORY);
    if ((lo & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64) {
        addr |= (uint64_t)qpci_config_readl(pdev, reg + 4) << 32;
    }
    return addr;
}

/*
 * The device on a destination, as the migrated config space has it: no
 * BAR is assigned and nothing is enabled again, so what the test reads
 * is only what migration brought.
 */
static IvsDev *dev_adopt(Guest *g)
{
    IvsDev *d = g_new0(IvsDev, 1);
    uint8_t cap;

    d->qts = g->qts;
    d->bus = g->bus;
    d->slot = SLOT;
    d->pdev = qpci_device_find(g->bus, QPCI_DEVFN(SLOT, 0));
    g_assert(d->pdev);
    g_assert_cmphex(qpci_config_readw(d->pdev, PCI_COMMAND) &
                    PCI_COMMAND_MEMORY, ==, PCI_COMMAND_MEMORY);
    d->regs = (QPCIBar) { .addr = bar_addr(d->pdev, IVSHMEM_REG_BAR) };
    d->shm = (QPCIBar) { .addr = bar_addr(d->pdev, IVSHMEM_SHM_BAR) };
    cap = qpci_find_capability(d->pdev, PCI_CAP_ID_MSIX, 0);
    if (cap) {
        uint16_t flags = qpci_config_readw(d->pdev, cap + PCI_MSIX_FLAGS);
        uint32_t table = qpci_config_readl(d->pdev, cap + PCI_MSIX_TABLE);
        uint32_t pba = qpci_config_readl(d->pdev, cap + PCI_MSIX_PBA);

        /* The source enabled MSI-X; the flag is in config space. */
        g_assert_cmphex(flags & PCI_MSIX_FLAGS_ENABLE, ==,
                        PCI_MSIX_FLAGS_ENABLE);
        d->vectors = (flags & PCI_MSIX_FLAGS_QSIZE) + 1;
        d->pdev->msix_enabled = true;
        d->pdev->msix_table_bar = (QPCIBar) {
            .addr = bar_addr(d->pdev, table & PCI_MSIX_FLAGS_BIRMASK),
        };
        d->pdev->msix_table_off = table & ~PCI_MSIX_FLAGS_BIRMASK;
        d->pdev->msix_pba_bar = (QPCIBar) {
            .addr = bar_addr(d->pdev, pba & PCI_MSIX_FLAGS_BIRMASK),
        };
        d->pdev->msix_pba_off = pba & ~PCI_MSIX_FLAGS_BIRMASK;
        d->msix_ready = true;
    }
    return d;
}

static uint32_t msix_read(IvsDev *d, int vector, int field)
{
    return qpci_io_readl(d->pdev, d->pdev->msix_table_bar,
                         d->pdev->msix_table_off +
                         vector * PCI_MSIX_ENTRY_SIZE + field);
}

/*
 * MSI-X as the source's guest programs it: every vector to its own word
 * of guest RAM (ivs_msix_setup()), then vector 1 masked.
 */
static void msix_program(IvsDev *d)
{
    ivs_msix_setup(d);
    ivs_msix_mask(d, 1, true);
}

static void msix_check_table(IvsDev *d)
{
    int v;

    g_assert_cmpint(d->vectors, ==, NR_VECTORS);
    for (v = 0; v < NR_VECTORS; v++) {
        uint64_t addr = ivs_msix_addr(d, v);

        g_assert_cmphex(msix_read(d, v, PCI_MSIX_ENTRY_LOWER_ADDR), ==,
                        (uint32_t)addr);
        g_assert_cmphex(msix_read(d, v, PCI_MSIX_ENTRY_UPPER_ADDR), ==,
                        addr >> 32);
        g_assert_cmphex(msix_read(d, v, PCI_MSIX_ENTRY_DATA), ==,
                        IVS_MSIX_DATA(SLOT, v));
        g_assert_cmphex(msix_read(d, v, PCI_MSIX_ENTRY_VECTOR_CTRL) &
                        PCI_MSIX_ENTRY_CTRL_MASKBIT, ==,
                        v == 1 ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
    }
}

/* The base is given. */
static bool have_base(void)
{
    const char *base = g_getenv(BASE_ENV);

    if (!base || !*base) {
        g_test_skip(BASE_ENV " is not set: no unmodified QEMU to migrate "
                    "with (make check-compat builds one and sets it)");
        return false;
    }
    /* guest_start() checks that each side is what it claims to be. */
    return true;
}

/*
 * Migrate; the destination must come up running.  The source completes
 * once it has sent everything, so a destination that rejects the stream
 * shows only on its side: it exits, and its error is in the log.
 */
static void migrate(const Case *c, Guest *src, Guest *dst)
{
    int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;
    g_autofree char *err = NULL;

    g_test_message("migrating %s -> %s", side_name(c->src), side_name(c->dst));
    if (!ivs_migrate(src->qts, dst->qts, &err)) {
        g_test_message("migration %s -> %s failed: %s", side_name(c->src),
                       side_name(c->dst), err);
        g_assert_not_reached();
    }
    for (;;) {
        QDict *resp, *ret;
        bool running;

        if (!qtest_probe_child(dst->qts)) {
            g_test_message("the %s destination exited after the migration "
                           "(its stderr says why)", side_name(c->dst));
            g_assert_not_reached();
        }
        resp = qtest_qmp(dst->qts, "{'execute': 'query-status'}");
        ret = qdict_get_qdict(resp, "return");
        g_assert(ret);
        running = !strcmp(qdict_get_str(ret, "status"), "running");
        qobject_unref(resp);
        if (running) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(2000);
    }
}

/* What every destination must show, both devices alike. */
static void check_common(IvsDev *src, IvsDev *dst, uint32_t seed)
{
    g_assert_cmphex(dst->regs.addr, ==, src->regs.addr);
    g_assert_cmphex(dst->shm.addr, ==, src->shm.addr);
    pattern_check_bar(dst, seed);
    g_assert_cmphex(ivs_reg_read(dst, IVSHMEM_REG_INTRMASK), ==,
                    SRC_INTRMASK);
    /* A read clears INTRSTATUS: read it once. */
    g_assert_cmphex(ivs_reg_read(dst, IVSHMEM_REG_INTRSTATUS), ==,
                    SRC_INTRSTATUS);
    g_assert_cmpuint(ivs_reg_read(dst, IVSHMEM_REG_IVPOSITION), ==, 0);
}

static void guest_setup(IvsDev *d, uint32_t seed)
{
    g_assert_cmpuint(ivs_reg_read(d, IVSHMEM_REG_IVPOSITION), ==, 0);
    pattern_write(d, seed);
    ivs_reg_write(d, IVSHMEM_REG_INTRMASK, SRC_INTRMASK);
    ivs_reg_write(d, IVSHMEM_REG_INTRSTATUS, SRC_INTRSTATUS);
}

static void test_plain(const void *opaque)
{
    const Case *c = opaque;
    const uint32_t seed = 0x91a10000u | (c->src << 4) | c->one_file;
    g_autofree char *src_file = ivs_shm_path("compat-src");
    g_autofree char *dst_file = c->one_file ? g_strdup(src_file) :
                                ivs_shm_path("compat-dst");
    const char *dev = "-device ivshmem-plain,id=iv0,memdev=m0,master=on";
    Guest *src, *dst;

    if (!have_base()) {
        return;
    }
    ivs_watchdog(120);
    src = guest_start(c->src, c->machine,
                      "-object memory-backend-file,id=m0,size=1M,"
                      "mem-path=%s,share=on %s,addr=%d", src_file, dev, SLOT);
    dst = guest_start(c->dst, c->machine,
                      "-object memory-backend-file,id=m0,size=1M,"
                      "mem-path=%s,share=on %s,addr=%d -incoming defer",
                      dst_file, dev, SLOT);
    src->dev = ivs_dev_open(src->qts, src->bus, SLOT);
    g_assert_cmpint(src->dev->vectors, ==, 0);
    guest_setup(src->dev, seed);
    if (!c->one_file) {
        /* The destination's memory is its own until migration fills it. */
        g_assert_cmphex(file_word(dst_file, 0), ==, 0);
    }

    migrate(c, src, dst);
    dst->dev = dev_adopt(dst);
    g_assert_cmpint(dst->dev->vectors, ==, 0);
    check_common(src->dev, dst->dev, seed);
    /* The data is in the destination's backing file, not a private copy. */
    pattern_check_file(dst_file, seed);

    guest_stop(src);
    guest_stop(dst);
    ivs_remove_path(src_file);
    if (!c->one_file) {
        ivs_remove_path(dst_file);
    }
    ivs_watchdog(0);
}

static void test_doorbell(const void *opaque)
{
    const Case *c = opaque;
    const uint32_t seed = 0xd00b0000u | (c->src << 4);
    g_autofree char *server_args = g_strdup_printf("-l 1M -n %d", NR_VECTORS);
    g_autofree char *dev = g_strdup_printf("-device ivshmem-doorbell,id=db0,"
                                           "chardev=c0,vectors=%d,master=on,"
                                           "addr=%d", NR_VECTORS, SLOT);
    IvsServer *src_server, *dst_server;
    Guest *src, *dst, *peer;

    if (!have_base()) {
        return;
    }
    src_server = ivs_server_start(server_args);
    if (!src_server) {
        return;
    }
    ivs_watchdog(120);
    dst_server = ivs_server_start(server_args);
    src = guest_start(c->src, c->machine, "-chardev socket,id=c0,path=%s %s",
                      src_server->socket, dev);
    dst = guest_start(c->dst, c->machine, "-chardev socket,id=c0,path=%s %s "
                      "-incoming defer", dst_server->socket, dev);

    src->dev = ivs_dev_open(src->qts, src->bus, SLOT);
    g_assert_cmpint(src->dev->vectors, ==, NR_VECTORS);
    guest_setup(src->dev, seed);
    msix_program(src->dev);

    migrate(c, src, dst);
    dst->dev = dev_adopt(dst);
    check_common(src->dev, dst->dev, seed);
    g_assert_cmphex(dst->dev->pdev->msix_table_bar.addr, ==,
                    src->dev->pdev->msix_table_bar.addr);
    msix_check_table(dst->dev);

    /*
     * The migrated MSI-X state is live: a peer joining the destination's
     * server (peer 1; its realize has the destination's eventfds) rings
     * vector 0, which arrives, and masked vector 1, which stays pending
     * until the guest unmasks it.
     */
    ivs_msix_clear(dst->dev);
    peer = guest_start(SIDE_SERIES, c->machine, "-chardev socket,id=c0,path=%s "
                       "-device ivshmem-doorbell,id=db0,chardev=c0,"
                       "vectors=%d,addr=%d", dst_server->socket, NR_VECTORS,
                       SLOT);
    peer->dev = ivs_dev_open(peer->qts, peer->bus, SLOT);
    g_assert_cmpuint(ivs_reg_read(peer->dev, IVSHMEM_REG_IVPOSITION), ==, 1);
    ivs_doorbell(peer->dev, 0, 0);
    ivs_msix_wait(dst->dev, 0);
    ivs_doorbell(peer->dev, 0, 1);
    ivs_msix_wait_pending(dst->dev, 1);
    g_assert_false(ivs_msix_fired(dst->dev, 1));
    ivs_msix_mask(dst->dev, 1, false);
    ivs_msix_wait(dst->dev, 1);

    guest_stop(peer);
    guest_stop(dst);
    guest_stop(src);
    ivs_server_stop(dst_server);
    ivs_server_stop(src_server);
    ivs_watchdog(0);
}

static void add_case(const char *machine, const char *what, bool doorbell,
                     bool one_file, Side src, Side dst)
{
    Case *c = g_new0(Case, 1);
    g_autofree char *path = g_strdup_printf("/ivshmem-compat/%s/%s/%s-to-%s",
                                            machine, what, side_name(src),
                                            side_name(dst));

    c->machine = machine;
    c->doorbell = doorbell;
    c->one_file = one_file;
    c->src = src;
    c->dst = dst;
    qtest_add_data_func(path, c, doorbell ? test_doorbell : test_plain);
}

int main(int argc, char **argv)
{
    /*
     * The versioned machine types of the base: a VM started on QEMU 10.0
     * keeps its machine type when it migrates to a newer QEMU and back.
     */
    static const char *const machines[] = { "pc-i440fx-10.0", "pc-q35-10.0" };
    int i;

    g_test_init(&argc, &argv, NULL);

    for (i = 0; i < ARRAY_SIZE(machines); i++) {
        add_case(machines[i], "plain", false, false, SIDE_BASE, SIDE_SERIES);
        add_case(machines[i], "plain", false, false, SIDE_SERIES, SIDE_BASE);
        add_case(machines[i], "plain-one-file", false, true,
                 SIDE_BASE, SIDE_SERIES);
        add_case(machines[i], "plain-one-file", false, true,
                 SIDE_SERIES, SIDE_BASE);
        add_case(machines[i], "doorbell", true, false, SIDE_BASE, SIDE_SERIES);
        add_case(machines[i], "doorbell", true, false, SIDE_SERIES, SIDE_BASE);
    }

    return g_test_run();
}
