/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtest for migrating ivshmem devices.
 *
 * A master takes its shared memory along: the destination's memory ends
 * up with the source's contents, and the registers (INTRMASK,
 * INTRSTATUS), the MSI-X table and mask state and IVPOSITION arrive with
 * the VM.  Source and destination may be masters of one memory file on
 * one host.  A device that is not master (the default, as upstream)
 * blocks migration, and says how to get out of it; a destination that is
 * not master refuses the memory before any of it is written.  An
 * ivshmem-doorbell master must be peer 0 on both ends: a destination that
 * gets another ID fails to start.
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include "ivshmem-utils.h"
#include "qemu/bswap.h"
#include "qobject/qdict.h"

#define SLOT        4
#define SHM_SIZE    (1 * MiB)

typedef struct VM {
    QTestState *qts;
    QPCIBus *bus;
    IvsDev *dev;
} VM;

static VM *vm_new(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static VM *vm_new(const char *fmt, ...)
{
    VM *vm = g_new0(VM, 1);
    g_autofree char *args = NULL;
    va_list ap;

    va_start(ap, fmt);
    args = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    vm->qts = qtest_initf("%s -nodefaults %s %s", ivs_machine(),
                          ivs_arch()->small_ram, args);
    vm->bus = ivs_pci_bus(vm->qts);
    return vm;
}

/* Find the device; on a migrated VM this keeps the source's BARs. */
static void vm_open(VM *vm)
{
    vm->dev = ivs_dev_open(vm->qts, vm->bus, SLOT);
}

static void vm_free(VM *vm)
{
    if (vm) {
        ivs_dev_close(vm->dev);
        ivs_pci_bus_free(vm->bus);
        qtest_quit(vm->qts);
        g_free(vm);
    }
}

static void fill_pattern(IvsDev *d, uint32_t seed)
{
    uint64_t off;

    for (off = 0; off < SHM_SIZE; off += 0x10000) {
        qpci_io_writel(d->pdev, d->shm, off, seed ^ off);
        qpci_io_writel(d->pdev, d->shm, off + 0xfffc, ~seed ^ off);
    }
}

static void check_pattern(IvsDev *d, uint32_t seed)
{
    uint64_t off;

    for (off = 0; off < SHM_SIZE; off += 0x10000) {
        g_assert_cmphex(qpci_io_readl(d->pdev, d->shm, off), ==, seed ^ off);
        g_assert_cmphex(qpci_io_readl(d->pdev, d->shm, off + 0xfffc), ==,
                        ~seed ^ off);
    }
}

static void check_file_pattern(const char *path, uint32_t seed)
{
    int fd = open(path, O_RDONLY);
    uint8_t *p;
    uint64_t off;

    g_assert_cmpint(fd, >=, 0);
    p = mmap(NULL, SHM_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    g_assert(p != MAP_FAILED);
    close(fd);
    for (off = 0; off < SHM_SIZE; off += 0x10000) {
        g_assert_cmphex(ldl_le_p(p + off), ==, seed ^ off);
    }
    munmap(p, SHM_SIZE);
}

/* A plain master: its memory goes to the destination's, registers follow. */
static void test_plain_master(void)
{
    g_autofree char *src_path = ivs_shm_path("mig-src");
    g_autofree char *dst_path = ivs_shm_path("mig-dst");
    VM *src, *dst;

    src = vm_new("-object memory-backend-file,id=m0,mem-path=%s,size=1M,"
                 "share=on -device ivshmem-plain,id=iv0,memdev=m0,addr=%d,"
                 "master=on", src_path, SLOT);
    dst = vm_new("-object memory-backend-file,id=m0,mem-path=%s,size=1M,"
                 "share=on -device ivshmem-plain,id=iv0,memdev=m0,addr=%d,"
                 "master=on -incoming defer", dst_path, SLOT);
    vm_open(src);
    fill_pattern(src->dev, 0x5eed0001);
    ivs_reg_write(src->dev, IVSHMEM_REG_INTRMASK, 0x13572468);
    ivs_reg_write(src->dev, IVSHMEM_REG_INTRSTATUS, 0x0badf00d);

    g_assert_true(ivs_migrate(src->qts, dst->qts, NULL));
    ivs_wait_status(dst->qts, "running");

    vm_open(dst);
    check_pattern(dst->dev, 0x5eed0001);
    check_file_pattern(dst_path, 0x5eed0001);
    g_assert_cmphex(ivs_reg_read(dst->dev, IVSHMEM_REG_INTRMASK), ==,
                    0x13572468);
    g_assert_cmphex(ivs_reg_read(dst->dev, IVSHMEM_REG_INTRSTATUS), ==,
                    0x0badf00d);
    g_assert_cmphex(ivs_reg_read(dst->dev, IVSHMEM_REG_IVPOSITION), ==, 0);

    vm_free(src);
    vm_free(dst);
    ivs_remove_path(src_path);
    ivs_remove_path(dst_path);
}

/*
 * Same host, same memory file, master=on at both ends (what a local
 * migration or a QEMU upgrade in place does): it completes, and the
 * memory keeps the contents the guest wrote.
 */
static void test_plain_same_file(void)
{
    g_autofree char *path = ivs_shm_path("mig-same");
    const char *dev = "-device ivshmem-plain,id=iv0,memdev=m0,master=on";
    VM *src, *dst;

    src = vm_new("-object memory-backend-file,id=m0,mem-path=%s,size=1M,"
                 "share=on %s,addr=%d", path, dev, SLOT);
    dst = vm_new("-object memory-backend-file,id=m0,mem-path=%s,size=1M,"
                 "share=on %s,addr=%d -incoming defer", path, dev, SLOT);
    vm_open(src);
    fill_pattern(src->dev, 0x5eed0002);
    ivs_reg_write(src->dev, IVSHMEM_REG_INTRMASK, 0x600d);

    g_assert_true(ivs_migrate(src->qts, dst->qts, NULL));
    ivs_wait_status(dst->qts, "running");
    vm_open(dst);
    check_pattern(dst->dev, 0x5eed0002);
    check_file_pattern(path, 0x5eed0002);
    g_assert_cmphex(ivs_reg_read(dst->dev, IVSHMEM_REG_INTRMASK), ==, 0x600d);
    vm_free(src);
    vm_free(dst);
    ivs_remove_path(path);
}

/*
 * A master source and a master=off destination: the destination has no
 * place for the memory and refuses the migration before writing any of
 * it, so its own shared memory keeps its contents.  The source runs on.
 */
static void test_plain_peer_destination(void)
{
    g_autofree char *src_path = ivs_shm_path("mig-src");
    g_autofree char *dst_path = ivs_shm_path("mig-dst");
    g_autofree char *err = NULL;
    VM *src, *dst;

    src = vm_new("-object memory-backend-file,id=m0,mem-path=%s,size=1M,"
                 "share=on -device ivshmem-plain,id=iv0,memdev=m0,addr=%d,"
                 "master=on", src_path, SLOT);
    dst = vm_new("-object memory-backend-file,id=m0,mem-path=%s,size=1M,"
                 "share=on -device ivshmem-plain,id=iv0,memdev=m0,addr=%d "
                 "-incoming defer", dst_path, SLOT);
    vm_open(src);
    vm_open(dst);
    fill_pattern(src->dev, 0x5eed0005);
    fill_pattern(dst->dev, 0x5eed0006);

    /* A destination whose incoming migration fails exits. */
    qtest_set_expected_status(dst->qts, EXIT_FAILURE);
    g_assert_false(ivs_migrate(src->qts, dst->qts, &err));
    g_test_message("source's error: %s", err);
    ivs_wait_status(src->qts, "running");
    check_pattern(src->dev, 0x5eed0005);
    check_file_pattern(dst_path, 0x5eed0006);
    vm_free(src);
    vm_free(dst);
    ivs_remove_path(src_path);
    ivs_remove_path(dst_path);
}

/*
 * use64=off migrates like the default when both ends have it.  When they
 * differ, BAR2's type in the migrated PCI configuration does not match the
 * destination's: the destination refuses the device state and exits.  The
 * source has sent everything by then and waits, paused, to be resumed.
 */
static void test_plain_use64(void)
{
    g_autofree char *src_path = ivs_shm_path("mig-src");
    g_autofree char *dst_path = ivs_shm_path("mig-dst");
    const char *dev = "-device ivshmem-plain,id=iv0,memdev=m0,master=on";
    int64_t deadline;
    VM *src, *dst;

    src = vm_new("-object memory-backend-file,id=m0,mem-path=%s,size=1M,"
                 "share=on %s,addr=%d,use64=off", src_path, dev, SLOT);
    dst = vm_new("-object memory-backend-file,id=m0,mem-path=%s,size=1M,"
                 "share=on %s,addr=%d,use64=off -incoming defer", dst_path,
                 dev, SLOT);
    vm_open(src);
    fill_pattern(src->dev, 0x5eed0007);
    g_assert_true(ivs_migrate(src->qts, dst->qts, NULL));
    ivs_wait_status(dst->qts, "running");
    vm_open(dst);
    check_pattern(dst->dev, 0x5eed0007);
    g_assert_cmphex(qpci_config_readl(dst->dev->pdev, PCI_BASE_ADDRESS_2) &
                    PCI_BASE_ADDRESS_MEM_TYPE_MASK, ==,
                    PCI_BASE_ADDRESS_MEM_TYPE_32);
    vm_free(dst);
    vm_free(src);

    src = vm_new("-object memory-backend-file,id=m0,mem-path=%s,size=1M,"
                 "share=on %s,addr=%d,use64=off", src_path, dev, SLOT);
    vm_open(src);
    fill_pattern(src->dev, 0x5eed0007);
    dst = vm_new("-object memory-backend-file,id=m0,mem-path=%s,size=1M,"
                 "share=on %s,addr=%d -incoming defer", dst_path, dev, SLOT);
    qtest_set_expected_status(dst->qts, EXIT_FAILURE);
    ivs_migrate(src->qts, dst->qts, NULL);
    qtest_wait_qemu(dst->qts);
    vm_free(dst);
    /*
     * The source finished sending before the destination refused, and is
     * paused (or saw the refusal first, failed, and runs on).
     */
    deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;
    for (;;) {
        QDict *r = qtest_qmp(src->qts, "{'execute': 'query-migrate'}");
        const char *st = qdict_get_try_str(qdict_get_qdict(r, "return"),
                                           "status");
        bool completed = st && !strcmp(st, "completed");
        bool failed = st && !strcmp(st, "failed");

        qobject_unref(r);
        if (completed) {
            ivs_wait_status(src->qts, "postmigrate");
            qtest_qmp_assert_success(src->qts, "{'execute': 'cont'}");
        }
        if (completed || failed) {
            break;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(2000);
    }
    ivs_wait_status(src->qts, "running");
    check_pattern(src->dev, 0x5eed0007);
    vm_free(src);
    ivs_remove_path(src_path);
    ivs_remove_path(dst_path);
}

/*
 * A peer blocks migration; the source keeps running.  The peer sits where
 * the machine can unplug it: bus 0, or where bus 0 takes no hot plug,
 * the default machine's root port.
 */
static void test_plain_peer_blocks(void)
{
    g_autofree char *path = ivs_shm_path("mig-peer");
    g_autofree char *sock = ivs_socket_path("mig.sock");
    g_autofree char *uri = g_strdup_printf("unix:%s", sock);
    g_autofree char *where = ivs_arch()->bus0_hotplug ?
        g_strdup_printf("addr=%d", SLOT) :
        g_strdup("bus=" IVS_HOTPLUG_PORT);
    VM *master, *peer;
    QDict *resp;

    master = vm_new("-object memory-backend-file,id=m0,mem-path=%s,size=1M,"
                    "share=on -device ivshmem-plain,id=iv0,memdev=m0,"
                    "addr=%d,master=on", path, SLOT);
    peer = vm_new("-object memory-backend-file,id=m0,mem-path=%s,size=1M,"
                  "share=on -device ivshmem-plain,id=ivpeer,memdev=m0,%s",
                  path, where);
    resp = qtest_qmp(peer->qts, "{'execute': 'migrate', 'arguments': "
                     "{'uri': %s}}", uri);
    ivs_assert_error_contains(resp, "'ivpeer' has master=off");
    ivs_assert_error_contains(resp, "master=on");
    ivs_assert_error_contains(resp, "unplug");
    qobject_unref(resp);
    ivs_wait_status(peer->qts, "running");

    /* Once unplugged, the VM migrates (the peer's advice works). */
    if (ivs_arch()->bus0_hotplug) {
        vm_open(peer);
        qpci_io_writel(peer->dev->pdev, peer->dev->shm, 0, 0xabad1dea);
        ivs_unplug_bus0(peer->qts, peer->bus, "ivpeer", SLOT);
    } else {
        ivs_unplug_root_port(peer->qts, peer->bus, "ivpeer",
                             IVS_HOTPLUG_PORT_SLOT);
    }
    {
        VM *dst = vm_new("-incoming defer");

        g_assert_true(ivs_migrate(peer->qts, dst->qts, NULL));
        vm_free(dst);
    }

    vm_free(peer);
    vm_free(master);
    ivs_remove_path(path);
}

/* ---- ivshmem-doorbell ---- */

/* One MSI-X entry's address and data, as the source had them. */
typedef struct MsixEntry {
    uint32_t lo, hi, data;
} MsixEntry;

static void msix_entry_read(IvsDev *d, int v, MsixEntry *m)
{
    uint64_t e = d->pdev->msix_table_off + v * PCI_MSIX_ENTRY_SIZE;
    QPCIBar bar = d->pdev->msix_table_bar;

    m->lo = qpci_io_readl(d->pdev, bar, e + PCI_MSIX_ENTRY_LOWER_ADDR);
    m->hi = qpci_io_readl(d->pdev, bar, e + PCI_MSIX_ENTRY_UPPER_ADDR);
    m->data = qpci_io_readl(d->pdev, bar, e + PCI_MSIX_ENTRY_DATA);
}

/*
 * Entry @v of @d holds @want (read from the source: where the MSI sink
 * routes the vectors, the machine chose the address and data) and is
 * masked or not.
 */
static void msix_entry_check(IvsDev *d, int v, const MsixEntry *want,
                             bool masked)
{
    uint64_t e = d->pdev->msix_table_off + v * PCI_MSIX_ENTRY_SIZE;
    QPCIBar bar = d->pdev->msix_table_bar;
    MsixEntry got;

    msix_entry_read(d, v, &got);
    g_assert_cmphex(got.lo, ==, want->lo);
    g_assert_cmphex(got.hi, ==, want->hi);
    g_assert_cmphex(got.data, ==, want->data);
    g_assert_cmphex(qpci_io_readl(d->pdev, bar,
                                  e + PCI_MSIX_ENTRY_VECTOR_CTRL) &
                    PCI_MSIX_ENTRY_CTRL_MASKBIT, ==,
                    masked ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
}

/*
 * test_doorbell()'s doorbells where MSI-X messages cannot be read back
 * from RAM (msix_in_ram is false): observed as the pending bits of masked
 * vectors, so what the message would carry (the migrated table's address
 * and data) is checked only in the table.  The MSI sink could see them
 * on the destination only if it learnt the interrupt sources the
 * source's RTAS calls allocated, which migrated with the machine.
 */
static void doorbell_pending_only(VM *dst, VM *other)
{
    int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;

    g_test_message("MSI-X messages go through the MSI sink on this "
                   "target, which does not know the destination's "
                   "routing: checking the pending bits only");
    /* A peer on the destination's server reaches it, vector 0 ... */
    ivs_msix_mask(dst->dev, 0, true);
    do {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        ivs_doorbell(other->dev, 0, 0);
        g_usleep(1000);
    } while (!ivs_msix_pending(dst->dev, 0));
    g_assert_false(ivs_msix_pending(dst->dev, 1));
    /* ... and vector 1, still masked since the source. */
    ivs_doorbell(other->dev, 0, 1);
    ivs_msix_wait_pending(dst->dev, 1);
    ivs_msix_mask(dst->dev, 1, false);
    g_assert_false(ivs_msix_pending(dst->dev, 1));
    /* And the destination rings its new peer. */
    ivs_msix_mask(other->dev, 1, true);
    ivs_doorbell(dst->dev, 1, 1);
    ivs_msix_wait_pending(other->dev, 1);
}

/*
 * Source and destination are each their server's first client, so both
 * are peer 0 and master.  Memory, registers and MSI-X state migrate; on
 * the destination, the migrated MSI-X table delivers a peer's doorbell.
 */
static void test_doorbell(void)
{
    IvsServer *s1 = ivs_server_start("-l 1M -n 2");
    IvsServer *s2;
    VM *src, *dst, *other;
    MsixEntry entry[2];
    const char *dev = "-device ivshmem-doorbell,id=db0,chardev=c0,"
                      "vectors=2,addr=4,master=on";

    if (!s1) {
        return;
    }
    s2 = ivs_server_start("-l 1M -n 2");
    src = vm_new("-chardev socket,id=c0,path=%s %s", s1->socket, dev);
    dst = vm_new("-chardev socket,id=c0,path=%s %s -incoming defer",
                 s2->socket, dev);
    other = vm_new("-chardev socket,id=c0,path=%s -device ivshmem-doorbell,"
                   "chardev=c0,vectors=2,addr=4", s2->socket);

    vm_open(src);
    g_assert_cmpuint(ivs_reg_read(src->dev, IVSHMEM_REG_IVPOSITION), ==, 0);
    fill_pattern(src->dev, 0x5eed0003);
    ivs_reg_write(src->dev, IVSHMEM_REG_INTRMASK, 0x2468);
    ivs_reg_write(src->dev, IVSHMEM_REG_INTRSTATUS, 0x1357);
    ivs_msix_setup(src->dev);
    ivs_msix_mask(src->dev, 1, true);
    msix_entry_read(src->dev, 0, &entry[0]);
    msix_entry_read(src->dev, 1, &entry[1]);
    if (ivs_arch()->msix_in_ram) {
        g_assert_cmphex(entry[0].lo, ==, (uint32_t)ivs_msix_addr(src->dev, 0));
        g_assert_cmphex(entry[0].data, ==, IVS_MSIX_DATA(SLOT, 0));
        g_assert_cmphex(entry[1].data, ==, IVS_MSIX_DATA(SLOT, 1));
    }
    /* The two vectors differ: a swap in the stream would show. */
    g_assert_cmphex(entry[0].data, !=, entry[1].data);

    g_assert_true(ivs_migrate(src->qts, dst->qts, NULL));
    ivs_wait_status(dst->qts, "running");

    /* The same BAR addresses as the source: the config space migrated. */
    dst->dev = g_memdup2(src->dev, sizeof(*src->dev));
    dst->dev->pdev = g_memdup2(src->dev->pdev, sizeof(*src->dev->pdev));
    dst->dev->pdev->bus = dst->bus;
    dst->dev->qts = dst->qts;
    dst->dev->bus = dst->bus;

    g_assert_cmpuint(ivs_reg_read(dst->dev, IVSHMEM_REG_IVPOSITION), ==, 0);
    g_assert_cmphex(ivs_reg_read(dst->dev, IVSHMEM_REG_INTRMASK), ==,
                    0x2468);
    g_assert_cmphex(ivs_reg_read(dst->dev, IVSHMEM_REG_INTRSTATUS), ==,
                    0x1357);
    check_pattern(dst->dev, 0x5eed0003);
    msix_entry_check(dst->dev, 0, &entry[0], false);
    msix_entry_check(dst->dev, 1, &entry[1], true);

    vm_open(other);
    ivs_msix_setup(other->dev);
    if (!ivs_arch()->msix_in_ram) {
        doorbell_pending_only(dst, other);
    } else {
        int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;

        /* A peer on the destination's server reaches it, vector 0 ... */
        do {
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            ivs_doorbell(other->dev, 0, 0);
            g_usleep(1000);
        } while (!ivs_msix_fired(dst->dev, 0));
        ivs_msix_clear(dst->dev);
        /* ... and vector 1, still masked: pending until unmasked. */
        ivs_doorbell(other->dev, 0, 1);
        ivs_msix_wait_pending(dst->dev, 1);
        g_assert_false(ivs_msix_fired(dst->dev, 1));
        ivs_msix_mask(dst->dev, 1, false);
        ivs_msix_wait(dst->dev, 1);
        /* And the destination rings its new peer. */
        ivs_doorbell(dst->dev, 1, 1);
        ivs_msix_wait(other->dev, 1);
    }

    vm_free(other);
    vm_free(dst);
    vm_free(src);
    ivs_server_stop(s2);
    ivs_server_stop(s1);
}

/*
 * IVPOSITION cannot change under the guest, so a master must be peer 0 on
 * the destination too: one that the destination's server gives another
 * ID fails to start, naming the ID, and never takes the migration.
 */
static void test_doorbell_id_mismatch(void)
{
    IvsServer *srv = ivs_server_start("-l 1M -n 1");
    g_autofree char *args = NULL;
    VM *taker;

    if (!srv) {
        return;
    }
    /* Someone else is peer 0 on the destination's server. */
    taker = vm_new("-chardev socket,id=c0,path=%s -device ivshmem-doorbell,"
                   "chardev=c0", srv->socket);
    args = g_strdup_printf("%s %s -chardev socket,id=c0,"
                           "path=%s -device ivshmem-doorbell,chardev=c0,"
                           "master=on -incoming defer", ivs_machine(),
                           ivs_arch()->small_ram, srv->socket);
    ivs_assert_startup_fails(args, "master=on needs peer ID 0", NULL);
    vm_free(taker);
    ivs_server_stop(srv);
}

/* A doorbell that is not peer 0 cannot be master: it blocks migration. */
static void test_doorbell_peer_blocks(void)
{
    IvsServer *s1 = ivs_server_start("-l 1M -n 1");
    const char *dev = "-device ivshmem-doorbell,id=db0,chardev=c0,addr=4";
    g_autofree char *sock = ivs_socket_path("mig.sock");
    g_autofree char *uri = g_strdup_printf("unix:%s", sock);
    g_autofree char *args = NULL;
    VM *first, *second;
    QDict *resp;

    if (!s1) {
        return;
    }
    first = vm_new("-chardev socket,id=c0,path=%s %s", s1->socket, dev);
    second = vm_new("-chardev socket,id=c0,path=%s %s", s1->socket, dev);
    resp = qtest_qmp(second->qts, "{'execute': 'migrate', 'arguments': "
                     "{'uri': %s}}", uri);
    ivs_assert_error_contains(resp, "'db0' has master=off");
    qobject_unref(resp);
    ivs_wait_status(second->qts, "running");

    /* And master=on is refused for it, saying why. */
    args = g_strdup_printf("%s -chardev socket,id=c0,path=%s "
                           "%s,master=on", ivs_machine(), s1->socket, dev);
    ivs_assert_startup_fails(args, "master=on needs peer ID 0", NULL);

    vm_free(second);
    vm_free(first);
    ivs_server_stop(s1);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/ivshmem-migration/plain/master", test_plain_master);
    qtest_add_func("/ivshmem-migration/plain/same-file",
                   test_plain_same_file);
    qtest_add_func("/ivshmem-migration/plain/peer-destination",
                   test_plain_peer_destination);
    qtest_add_func("/ivshmem-migration/plain/use64-off",
                   test_plain_use64);
    qtest_add_func("/ivshmem-migration/plain/peer-blocks",
                   test_plain_peer_blocks);
    qtest_add_func("/ivshmem-migration/doorbell/master", test_doorbell);
    qtest_add_func("/ivshmem-migration/doorbell/id-mismatch",
                   test_doorbell_id_mismatch);
    qtest_add_func("/ivshmem-migration/doorbell/peer-blocks",
                   test_doorbell_peer_blocks);

    return g_test_run();
}
