/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtest for ivshmem-plain: the guest-visible ABI (IDs, BARs, registers,
 * no interrupts), memory shared between two QEMUs and the host, every
 * error realize reports (at startup and through device_add), the master
 * rules (one master per memory, auto makes the second device a peer,
 * peers block migration with a message that says what to do) and reset.
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include "ivshmem-utils.h"
#include "qemu/bswap.h"
#include "qobject/qdict.h"

#define SHM_SIZE    (1 * MiB)
#define SLOT        4

typedef struct PlainVM {
    QTestState *qts;
    QPCIBus *bus;
    IvsDev *dev;
} PlainVM;

/*
 * A VM of the default machine with one ivshmem-plain in SLOT on @path;
 * @extra after -device.
 */
static PlainVM *plain_vm_start(const char *path, uint64_t size,
                               const char *dev_extra)
{
    PlainVM *vm = g_new0(PlainVM, 1);

    vm->qts = qtest_initf("%s -nodefaults "
                          "-object memory-backend-file,id=m0,mem-path=%s,"
                          "size=%" PRIu64 ",share=on "
                          "-device ivshmem-plain,id=iv0,memdev=m0,"
                          "addr=%d%s",
                          ivs_machine(), path, size, SLOT, dev_extra);
    vm->bus = ivs_pci_bus(vm->qts);
    vm->dev = ivs_dev_open(vm->qts, vm->bus, SLOT);
    return vm;
}

static void plain_vm_stop(PlainVM *vm)
{
    ivs_dev_close(vm->dev);
    ivs_pci_bus_free(vm->bus);
    qtest_quit(vm->qts);
    g_free(vm);
}

/*
 * Whether outgoing migration of @qts is blocked, as the migrate command
 * reports synchronously; the blocker's message is returned in @why.
 * Migration that is not blocked is aimed at a socket nobody listens on,
 * so it fails later, harmlessly.
 */
static bool migration_blocked(QTestState *qts, char **why)
{
    g_autofree char *path = ivs_socket_path("nobody.sock");
    g_autofree char *uri = g_strdup_printf("unix:%s", path);
    QDict *resp, *error;
    bool blocked;

    resp = qtest_qmp(qts, "{'execute': 'migrate', 'arguments': "
                     "{'uri': %s}}", uri);
    error = qdict_get_qdict(resp, "error");
    blocked = error != NULL;
    if (why) {
        *why = blocked ? g_strdup(qdict_get_str(error, "desc")) : NULL;
    }
    qobject_unref(resp);
    if (!blocked) {
        /* Let the doomed attempt finish so QEMU is idle again. */
        int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;

        for (;;) {
            QDict *r = qtest_qmp(qts, "{'execute': 'query-migrate'}");
            const char *st = qdict_get_try_str(qdict_get_qdict(r, "return"),
                                               "status");
            bool done = st && (!strcmp(st, "failed") ||
                               !strcmp(st, "completed") ||
                               !strcmp(st, "cancelled"));

            qobject_unref(r);
            if (done) {
                break;
            }
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            g_usleep(2000);
        }
    }
    ivs_remove_path(path);
    return blocked;
}

static void assert_is_peer(QTestState *qts, const char *id)
{
    g_autofree char *why = NULL;

    g_assert_true(migration_blocked(qts, &why));
    g_test_message("blocker: %s", why);
    g_assert_nonnull(strstr(why, "master=off"));
    g_assert_nonnull(strstr(why, id));
    /* It says how to get out of it. */
    g_assert_nonnull(strstr(why, "master=on"));
    g_assert_nonnull(strstr(why, "unplug"));
}

static void assert_is_master(QTestState *qts)
{
    g_assert_false(migration_blocked(qts, NULL));
}

static void test_identity(void)
{
    g_autofree char *path = ivs_shm_path("identity");
    PlainVM *vm = plain_vm_start(path, 4 * MiB, "");

    ivs_assert_identity(vm->dev, 4 * MiB, 0);
    g_assert_cmphex(vm->dev->regs_size, ==, IVSHMEM_REG_BAR_SIZE);
    g_assert_cmphex(vm->dev->shm_size, ==, 4 * MiB);
    plain_vm_stop(vm);
    ivs_remove_path(path);
}

static void test_type_discovery(void)
{
    QTestState *qts = qtest_init("-machine none");
    QDict *resp = qtest_qmp(qts, "{'execute': 'qom-list-types', "
                            "'arguments': {'implements': 'pci-device'}}");
    QList *list = qdict_get_qlist(resp, "return");
    const QListEntry *e;
    bool plain = false, doorbell = false;

    g_assert(list);
    QLIST_FOREACH_ENTRY(list, e) {
        const char *name = qdict_get_str(qobject_to(QDict, e->value),
                                         "name");

        plain |= !strcmp(name, "ivshmem-plain");
        doorbell |= !strcmp(name, "ivshmem-doorbell");
    }
    g_assert_true(plain);
    g_assert_true(doorbell);
    qobject_unref(resp);
    qtest_quit(qts);
}

static void test_registers(void)
{
    g_autofree char *path = ivs_shm_path("regs");
    PlainVM *vm = plain_vm_start(path, SHM_SIZE, "");
    IvsDev *d = vm->dev;
    uint32_t off;

    /* Reset values. */
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRSTATUS), ==, 0);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_IVPOSITION), ==, 0);

    /* INTRMASK: plain storage, all 32 bits. */
    ivs_reg_write(d, IVSHMEM_REG_INTRMASK, 0xffffffff);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0xffffffff);
    ivs_reg_write(d, IVSHMEM_REG_INTRMASK, 0x12345678);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0x12345678);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0x12345678);

    /* INTRSTATUS: storage, and a read returns and clears it. */
    ivs_reg_write(d, IVSHMEM_REG_INTRSTATUS, 0xa5a55a5a);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0x12345678);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRSTATUS), ==, 0xa5a55a5a);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRSTATUS), ==, 0);

    /* IVPOSITION: read-only, 0 on ivshmem-plain. */
    ivs_reg_write(d, IVSHMEM_REG_IVPOSITION, 0x1234);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_IVPOSITION), ==, 0);
    ivs_reg_write(d, IVSHMEM_REG_IVPOSITION, 0xffffffff);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_IVPOSITION), ==, 0);

    /* DOORBELL: write-only, reads 0. */
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_DOORBELL), ==, 0);

    /* Reserved: reads 0, writes ignored, registers untouched. */
    for (off = 0x10; off < IVSHMEM_REG_BAR_SIZE; off += 4) {
        ivs_reg_write(d, off, 0xdeadbeef);
        g_assert_cmphex(ivs_reg_read(d, off), ==, 0);
    }
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0x12345678);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRSTATUS), ==, 0);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_IVPOSITION), ==, 0);

    plain_vm_stop(vm);
    ivs_remove_path(path);
}

/*
 * Other access sizes behave as on the original device, where the memory
 * core adapts them to the 32-bit registers: a narrower access is widened
 * (a write is zero-extended and reaches the register it falls in; a read
 * returns the low bytes of the register at that offset, none inside one,
 * and acknowledges INTRSTATUS like a full read), and a 64-bit access is
 * two 32-bit ones.
 */
static void test_access_size(void)
{
    g_autofree char *path = ivs_shm_path("access");
    PlainVM *vm = plain_vm_start(path, SHM_SIZE, "");
    IvsDev *d = vm->dev;

    qpci_io_writeb(d->pdev, d->regs, IVSHMEM_REG_INTRMASK, 0xab);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0xab);
    qpci_io_writew(d->pdev, d->regs, IVSHMEM_REG_INTRMASK, 0xcdef);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0xcdef);
    qpci_io_writeb(d->pdev, d->regs, IVSHMEM_REG_INTRMASK + 1, 0x12);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0x12);
    qpci_io_writew(d->pdev, d->regs, IVSHMEM_REG_INTRMASK + 2, 0x3456);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0x3456);
    /* IVPOSITION stays read-only for every width and offset. */
    qpci_io_writeb(d->pdev, d->regs, IVSHMEM_REG_IVPOSITION + 1, 0x77);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_IVPOSITION), ==, 0);

    ivs_reg_write(d, IVSHMEM_REG_INTRMASK, 0x11223344);
    g_assert_cmphex(qpci_io_readb(d->pdev, d->regs, IVSHMEM_REG_INTRMASK),
                    ==, 0x44);
    g_assert_cmphex(qpci_io_readw(d->pdev, d->regs, IVSHMEM_REG_INTRMASK),
                    ==, 0x3344);
    g_assert_cmphex(qpci_io_readb(d->pdev, d->regs,
                                  IVSHMEM_REG_INTRMASK + 1), ==, 0);
    g_assert_cmphex(qpci_io_readw(d->pdev, d->regs,
                                  IVSHMEM_REG_INTRMASK + 2), ==, 0);

    ivs_reg_write(d, IVSHMEM_REG_INTRSTATUS, 0x55667788);
    g_assert_cmphex(qpci_io_readb(d->pdev, d->regs, IVSHMEM_REG_INTRSTATUS),
                    ==, 0x88);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRSTATUS), ==, 0);

    qpci_io_writeq(d->pdev, d->regs, IVSHMEM_REG_INTRMASK,
                   0x0000000a0000000bULL);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0xb);
    g_assert_cmphex(qpci_io_readq(d->pdev, d->regs, IVSHMEM_REG_INTRMASK),
                    ==, 0x0000000a0000000bULL);
    /* That read acknowledged INTRSTATUS. */
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRSTATUS), ==, 0);

    ivs_assert_alive(vm->qts);
    plain_vm_stop(vm);
    ivs_remove_path(path);
}

static void test_doorbell_ignored(void)
{
    g_autofree char *path = ivs_shm_path("doorbell");
    PlainVM *vm = plain_vm_start(path, SHM_SIZE, "");
    IvsDev *d = vm->dev;
    static const uint32_t values[] = {
        0, IVS_DOORBELL(0, 1), IVS_DOORBELL(1, 0),
        IVS_DOORBELL(0xffff, 0xffff), 0x00000100,
    };
    int i;

    qpci_io_writel(d->pdev, d->shm, 0, 0xcafef00d);
    for (i = 0; i < ARRAY_SIZE(values); i++) {
        ivs_reg_write(d, IVSHMEM_REG_DOORBELL, values[i]);
        g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRSTATUS), ==, 0);
        g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0);
        g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_IVPOSITION), ==, 0);
    }
    g_assert_cmphex(qpci_io_readl(d->pdev, d->shm, 0), ==, 0xcafef00d);
    ivs_assert_alive(vm->qts);
    plain_vm_stop(vm);
    ivs_remove_path(path);
}

/* Two QEMUs on one file, and the host, all see the same bytes. */
static void test_shared_memory(void)
{
    g_autofree char *path = ivs_shm_path("shared");
    PlainVM *a = plain_vm_start(path, SHM_SIZE, "");
    PlainVM *b = plain_vm_start(path, SHM_SIZE, "");
    static const uint64_t offsets[] = {
        0, 4, 0x1000, SHM_SIZE / 2, SHM_SIZE - 4,
    };
    uint8_t *host;
    int fd, i;

    fd = open(path, O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    /* Both QEMUs have it open; the name is no longer needed. */
    ivs_remove_path(path);
    host = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    g_assert(host != MAP_FAILED);
    close(fd);

    for (i = 0; i < ARRAY_SIZE(offsets); i++) {
        uint64_t off = offsets[i];
        uint32_t va = 0xa0000000 | i, vb = 0xb0000000 | i;
        uint32_t vh = 0xc0000000 | i, got;

        qpci_io_writel(a->dev->pdev, a->dev->shm, off, va);
        g_assert_cmphex(qpci_io_readl(b->dev->pdev, b->dev->shm, off), ==,
                        va);
        memcpy(&got, host + off, 4);
        g_assert_cmphex(le32_to_cpu(got), ==, va);

        qpci_io_writel(b->dev->pdev, b->dev->shm, off, vb);
        g_assert_cmphex(qpci_io_readl(a->dev->pdev, a->dev->shm, off), ==,
                        vb);

        got = cpu_to_le32(vh);
        memcpy(host + off, &got, 4);
        g_assert_cmphex(qpci_io_readl(a->dev->pdev, a->dev->shm, off), ==,
                        vh);
        g_assert_cmphex(qpci_io_readl(b->dev->pdev, b->dev->shm, off), ==,
                        vh);
    }

    /* A larger block, written by the host, read back by a guest. */
    for (i = 0; i < 4096; i++) {
        host[0x8000 + i] = i * 7 + 3;
    }
    {
        g_autofree uint8_t *buf = g_malloc(4096);

        qpci_memread(b->dev->pdev, b->dev->shm, 0x8000, buf, 4096);
        g_assert_cmpmem(buf, 4096, host + 0x8000, 4096);
    }

    munmap(host, SHM_SIZE);
    plain_vm_stop(b);
    plain_vm_stop(a);
}

/*
 * Shapes management tools send: keyval with a trailing comma, JSON with
 * single quotes, share=yes/true.
 */
static void test_command_line_shapes(void)
{
    g_autofree char *path = ivs_shm_path("shapes");
    const char *shapes[] = {
        "-object memory-backend-file,id=m0,mem-path=%s,size=1M,share=yes "
        "-device ivshmem-plain,memdev=m0,addr=4,",
        "-object memory-backend-file,id=m0,mem-path=%s,size=1M,share=true "
        "-device \"{'driver': 'ivshmem-plain', 'memdev': 'm0', "
        "'addr': '4', 'master': 'on'}\"",
        "-object \"{'qom-type': 'memory-backend-file', 'id': 'm0', "
        "'mem-path': '%s', 'size': 1048576, 'share': true}\" "
        "-device '{\"driver\": \"ivshmem-plain\", \"memdev\": \"m0\", "
        "\"addr\": \"4\", \"master\": \"off\"}'",
    };
    int i;

    for (i = 0; i < ARRAY_SIZE(shapes); i++) {
        g_autofree char *args = NULL;
        QTestState *qts;
        QPCIBus *bus;
        IvsDev *d;

        args = g_strdup_printf(shapes[i], path);
        qts = qtest_initf("%s -nodefaults %s", ivs_machine(), args);
        bus = ivs_pci_bus(qts);
        d = ivs_dev_open(qts, bus, SLOT);
        g_assert_cmphex(d->shm_size, ==, 1 * MiB);
        ivs_dev_close(d);
        ivs_pci_bus_free(bus);
        qtest_quit(qts);
    }
    ivs_remove_path(path);
}

/* ---- realize errors ---- */

typedef struct RealizeError {
    const char *objects;        /* -object arguments, %s = a file */
    const char *device;         /* -device keyval */
    const char *json;           /* the same for device_add */
    const char *error;
} RealizeError;

static const RealizeError realize_errors[] = {
    {
        .objects = "",
        .device = "ivshmem-plain",
        .json = "{'driver': 'ivshmem-plain', 'id': 'bad'}",
        .error = "property 'memdev' is required",
    }, {
        .objects = "-object memory-backend-file,id=mx,mem-path=%s,"
                   "size=1M,share=off",
        .device = "ivshmem-plain,memdev=mx",
        .json = "{'driver': 'ivshmem-plain', 'id': 'bad', 'memdev': 'mx'}",
        .error = "memdev 'mx' is not shared",
    }, {
        .objects = "-object memory-backend-ram,id=mx,size=1M",
        .device = "ivshmem-plain,memdev=mx",
        .json = "{'driver': 'ivshmem-plain', 'id': 'bad', 'memdev': 'mx'}",
        .error = "memdev 'mx' is not shared",
    }, {
        .objects = "-object memory-backend-file,id=mx,mem-path=%s,"
                   "size=3M,share=on",
        .device = "ivshmem-plain,memdev=mx",
        .json = "{'driver': 'ivshmem-plain', 'id': 'bad', 'memdev': 'mx'}",
        .error = "memdev 'mx' has size 3145728, which is not a power of two",
    }, {
        .objects = "-object memory-backend-file,id=mx,mem-path=%s,"
                   "size=12288,share=on",
        .device = "ivshmem-plain,memdev=mx",
        .json = "{'driver': 'ivshmem-plain', 'id': 'bad', 'memdev': 'mx'}",
        .error = "memdev 'mx' has size 12288, which is not a power of two",
    },
};

static void test_realize_error_startup(const void *opaque)
{
    const RealizeError *e = opaque;
    g_autofree char *path = ivs_shm_path("bad");
    g_autofree char *objects = g_strdup_printf(e->objects, path);
    g_autofree char *args = g_strdup_printf("%s %s -device %s",
                                            ivs_machine(), objects,
                                            e->device);

    ivs_assert_startup_fails(args, e->error, NULL);
    ivs_remove_path(path);
}

static void test_realize_error_hotplug(const void *opaque)
{
    const RealizeError *e = opaque;
    g_autofree char *path = ivs_shm_path("bad");
    g_autofree char *objects = g_strdup_printf(e->objects, path);
    QTestState *qts = qtest_initf("%s -nodefaults %s", ivs_machine(),
                                  objects);
    int i;

    /* Twice: a failed realize leaves nothing behind that gets in the way. */
    for (i = 0; i < 2; i++) {
        ivs_device_add_fails(qts, e->json, e->error);
        ivs_assert_alive(qts);
    }
    qtest_quit(qts);
    ivs_remove_path(path);
}

static void test_memdev_in_use(void)
{
    g_autofree char *path = ivs_shm_path("inuse");
    g_autofree char *args = NULL;
    QTestState *qts;

    args = g_strdup_printf("%s -object memory-backend-file,id=mx,"
                           "mem-path=%s,size=1M,share=on "
                           "-device ivshmem-plain,memdev=mx "
                           "-device ivshmem-plain,memdev=mx", ivs_machine(),
                           path);
    ivs_assert_startup_fails(args, "memdev 'mx' is already in use by "
                             "another device", NULL);

    qts = qtest_initf("%s -nodefaults -object memory-backend-file,"
                      "id=mx,mem-path=%s,size=1M,share=on "
                      "-device ivshmem-plain,id=iv0,memdev=mx", ivs_machine(),
                      path);
    ivs_device_add_fails(qts, "{'driver': 'ivshmem-plain', 'id': 'iv1', "
                         "'memdev': 'mx'}",
                         "memdev 'mx' is already in use by another device");
    ivs_assert_alive(qts);
    qtest_quit(qts);
    ivs_remove_path(path);
}

/* ---- master ---- */

/* The master property as qom-get answers it for device @id. */
static char *qom_master(QTestState *qts, const char *id)
{
    g_autofree char *qom = g_strdup_printf("/machine/peripheral/%s", id);
    QDict *resp = qtest_qmp(qts, "{'execute': 'qom-get', 'arguments': "
                            "{'path': %s, 'property': 'master'}}", qom);
    char *val = g_strdup(qdict_get_str(resp, "return"));

    qobject_unref(resp);
    return val;
}

/*
 * The default is upstream's: master=off, so migration is blocked, and
 * qom-get says "off".
 */
static void test_master_default_off(void)
{
    g_autofree char *path = ivs_shm_path("default");
    PlainVM *vm = plain_vm_start(path, SHM_SIZE, "");
    g_autofree char *val = qom_master(vm->qts, "iv0");

    g_assert_cmpstr(val, ==, "off");
    assert_is_peer(vm->qts, "iv0");
    plain_vm_stop(vm);
    ivs_remove_path(path);
}

/* auto on ivshmem-plain is master, and qom-get then says "on". */
static void test_master_auto(void)
{
    g_autofree char *path = ivs_shm_path("auto");
    PlainVM *vm = plain_vm_start(path, SHM_SIZE, ",master=auto");
    g_autofree char *val = qom_master(vm->qts, "iv0");

    g_assert_cmpstr(val, ==, "on");
    assert_is_master(vm->qts);
    plain_vm_stop(vm);
    ivs_remove_path(path);
}

/*
 * Nothing refuses a second master on the same memory, within one QEMU (two
 * backends on one file) or across QEMUs: a same-host migration has exactly
 * that, and the user decides which device migrates the memory.
 */
static void test_master_twice(void)
{
    g_autofree char *path = ivs_shm_path("master2");
    QTestState *qts;
    PlainVM *a, *b;

    qts = qtest_initf("%s -nodefaults "
                      "-object memory-backend-file,id=ma,mem-path=%s,"
                      "size=1M,share=on "
                      "-object memory-backend-file,id=mb,mem-path=%s,"
                      "size=1M,share=on "
                      "-device ivshmem-plain,id=iv0,memdev=ma,master=on",
                      ivs_machine(), path, path);
    ivs_device_add_ok(qts, "{'driver': 'ivshmem-plain', 'id': 'iv1', "
                      "'memdev': 'mb', 'master': 'on'}");
    qtest_quit(qts);

    a = plain_vm_start(path, SHM_SIZE, ",master=on");
    b = plain_vm_start(path, SHM_SIZE, ",master=on");
    assert_is_master(a->qts);
    assert_is_master(b->qts);
    plain_vm_stop(b);
    plain_vm_stop(a);
    ivs_remove_path(path);
}

/* master=off never becomes master. */
static void test_master_off(void)
{
    g_autofree char *path = ivs_shm_path("off");
    PlainVM *a = plain_vm_start(path, SHM_SIZE, ",master=off");
    g_autofree char *val = qom_master(a->qts, "iv0");

    g_assert_cmpstr(val, ==, "off");
    assert_is_peer(a->qts, "iv0");
    plain_vm_stop(a);
    ivs_remove_path(path);
}

/* ---- use64=off ---- */

/*
 * use64=off makes BAR2 a 32-bit prefetchable BAR (and BAR3 no BAR at all),
 * which the guest can map below 4 GiB; memory that cannot fit there is
 * refused, saying what would.
 */
typedef struct Use64Case {
    const char *machine;        /* -machine ..., NULL: the default */
    const char *ram;            /* -m ..., NULL: the target's small RAM */
    const char *too_big;        /* a size that does not fit, or NULL */
    const char *largest;        /* the error's "largest that fits" */
} Use64Case;

static void test_use64_off(const void *opaque)
{
    const Use64Case *c = opaque;
    const char *machine = c->machine ?: ivs_machine();
    const char *ram = c->ram ?: ivs_arch()->small_ram;
    g_autofree char *path = ivs_shm_path("use64");
    g_autofree char *big = NULL;
    QTestState *qts;
    QPCIBus *bus;
    IvsDev *d;
    uint32_t bar2;
    uint8_t *host;
    int fd;

    qts = qtest_initf("%s -nodefaults %s "
                      "-object memory-backend-file,id=m0,mem-path=%s,"
                      "size=1M,share=on "
                      "-device ivshmem-plain,id=iv0,memdev=m0,addr=%d,"
                      "use64=off", machine, ram, path, SLOT);
    bus = ivs_pci_bus(qts);
    d = ivs_dev_open(qts, bus, SLOT);
    g_assert_cmphex(d->shm_size, ==, 1 * MiB);
    bar2 = qpci_config_readl(d->pdev, PCI_BASE_ADDRESS_2);
    g_assert_cmphex(bar2 & 0xf, ==, PCI_BASE_ADDRESS_SPACE_MEMORY |
                    PCI_BASE_ADDRESS_MEM_TYPE_32 |
                    PCI_BASE_ADDRESS_MEM_PREFETCH);
    g_assert_cmphex(bar2 & PCI_BASE_ADDRESS_MEM_MASK, !=, 0);
    g_assert_cmphex(qpci_config_readl(d->pdev, PCI_BASE_ADDRESS_3), ==, 0);

    /* The guest's writes land in the shared file, and the host's show. */
    qpci_io_writel(d->pdev, d->shm, 0x1000, 0x32b175ed);
    fd = open(path, O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    host = mmap(NULL, 1 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    g_assert(host != MAP_FAILED);
    close(fd);
    g_assert_cmphex(ldl_le_p(host + 0x1000), ==, 0x32b175ed);
    stl_le_p(host + 0x2000, 0xfeedf00d);
    g_assert_cmphex(qpci_io_readl(d->pdev, d->shm, 0x2000), ==, 0xfeedf00d);
    munmap(host, 1 * MiB);
    ivs_dev_close(d);
    ivs_pci_bus_free(bus);
    qtest_quit(qts);

    /*
     * Memory that cannot be a naturally aligned BAR in the 32-bit window:
     * on pc the window ends at 0xfec00000; on q35 it is known only once
     * firmware has set up MMCONFIG, so QEMU takes all above the RAM.
     * (Other machines tell the device nothing about their window, so it
     * can refuse only what exceeds 32 bits: nothing to test there.)
     */
    ivs_remove_path(path);
    if (!c->too_big) {
        return;
    }
    big = g_strdup_printf("%s %s -object memory-backend-file,"
                          "id=m0,mem-path=%s,size=%s,share=on -device "
                          "ivshmem-plain,memdev=m0,use64=off", machine, ram,
                          path, c->too_big);
    ivs_assert_startup_fails(big, "use64=off: a 32-bit BAR2 of",
                             "does not fit below 4 GiB", c->largest, NULL);
    ivs_remove_path(path);
}

static const Use64Case use64_cases[] = {
    { "-machine pc", "-m 32M", "2G",
      "The largest that fits is 1073741824 bytes" },
    { "-machine q35", "-m 32M", "4G",
      "The largest that fits is 2147483648 bytes" },
    { NULL, NULL, NULL, NULL },
};

/* ---- reset ---- */

static void test_reset(void)
{
    g_autofree char *path = ivs_shm_path("reset");
    PlainVM *vm = plain_vm_start(path, SHM_SIZE, ",master=on");
    IvsDev *d = vm->dev;

    ivs_reg_write(d, IVSHMEM_REG_INTRMASK, 0xffff0000);
    ivs_reg_write(d, IVSHMEM_REG_INTRSTATUS, 0x0000ffff);
    qpci_io_writel(d->pdev, d->shm, 0x100, 0x600dcafe);

    qtest_system_reset(vm->qts);

    /* Reset also cleared the BARs: map them again. */
    ivs_dev_close(d);
    d = vm->dev = ivs_dev_open(vm->qts, vm->bus, SLOT);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRSTATUS), ==, 0);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_IVPOSITION), ==, 0);
    /* The shared memory is not the device's to clear. */
    g_assert_cmphex(qpci_io_readl(d->pdev, d->shm, 0x100), ==, 0x600dcafe);
    /* Still a master. */
    assert_is_master(vm->qts);
    plain_vm_stop(vm);
    ivs_remove_path(path);
}

int main(int argc, char **argv)
{
    int i;

    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/ivshmem-plain/identity", test_identity);
    qtest_add_func("/ivshmem-plain/type-discovery", test_type_discovery);
    qtest_add_func("/ivshmem-plain/registers", test_registers);
    qtest_add_func("/ivshmem-plain/access-size", test_access_size);
    qtest_add_func("/ivshmem-plain/doorbell-ignored", test_doorbell_ignored);
    qtest_add_func("/ivshmem-plain/shared-memory", test_shared_memory);
    qtest_add_func("/ivshmem-plain/command-line-shapes",
                   test_command_line_shapes);
    for (i = 0; i < ARRAY_SIZE(realize_errors); i++) {
        g_autofree char *p1 =
            g_strdup_printf("/ivshmem-plain/realize-error/startup/%d", i);
        g_autofree char *p2 =
            g_strdup_printf("/ivshmem-plain/realize-error/device-add/%d", i);

        qtest_add_data_func(p1, &realize_errors[i],
                            test_realize_error_startup);
        qtest_add_data_func(p2, &realize_errors[i],
                            test_realize_error_hotplug);
    }
    qtest_add_func("/ivshmem-plain/realize-error/memdev-in-use",
                   test_memdev_in_use);
    qtest_add_func("/ivshmem-plain/master/default-off",
                   test_master_default_off);
    qtest_add_func("/ivshmem-plain/master/twice", test_master_twice);
    qtest_add_func("/ivshmem-plain/master/auto", test_master_auto);
    qtest_add_func("/ivshmem-plain/master/off", test_master_off);
    qtest_add_func("/ivshmem-plain/reset", test_reset);
    if (ivs_arch_is("x86_64")) {
        /*
         * How large a 32-bit BAR2 may be depends on what pc and q35 tell
         * about their 32-bit PCI window: x86 only.
         */
        qtest_add_data_func("/ivshmem-plain/use64-off/pc", &use64_cases[0],
                            test_use64_off);
        qtest_add_data_func("/ivshmem-plain/use64-off/q35", &use64_cases[1],
                            test_use64_off);
    } else {
        /* A 32-bit BAR2 works on the target's own machine too. */
        qtest_add_data_func("/ivshmem-plain/use64-off/default",
                            &use64_cases[2], test_use64_off);
    }

    return g_test_run();
}
