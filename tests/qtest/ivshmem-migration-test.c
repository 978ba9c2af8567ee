/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtests for migrating the ivshmem devices: what a master carries to the
 * destination (shared memory, INTRSTATUS/INTRMASK, MSI-X table and mask
 * state, IVPOSITION), that doorbells work after the move, that a peer's
 * migration is refused with the documented message, that a destination
 * whose server assigned another peer ID fails the migration while the
 * source keeps running, and that doorbells rung during migration do no
 * harm.
 */

#include "qemu/osdep.h"
#include "ivshmem-utils.h"
#include "libqos/pci-pc.h"
#include "qobject/qdict.h"

#define SLOT        4
#define SHM_SIZE    (1 * MiB)

static QTestState *vm_start(const char *devices, bool incoming)
{
    return qtest_initf("-machine pc -nodefaults -m 64 %s %s", devices,
                       incoming ? "-incoming defer" : "");
}

static char *plain_args(const char *path, const char *master)
{
    return g_strdup_printf("-object memory-backend-file,id=m0,mem-path=%s,"
                           "size=%d,share=on "
                           "-device ivshmem-plain,id=iv0,memdev=m0,"
                           "addr=%d,master=%s", path, (int)SHM_SIZE, SLOT,
                           master);
}

static char *doorbell_args(const char *socket, int vectors,
                           const char *master)
{
    return g_strdup_printf("-chardev socket,id=c0,path=%s "
                           "-device ivshmem-doorbell,id=iv0,chardev=c0,"
                           "vectors=%d,addr=%d,master=%s", socket, vectors,
                           SLOT, master);
}

/* Memory contents, INTRSTATUS and INTRMASK of a master ivshmem-plain. */
static void test_plain_master(void)
{
    g_autofree char *src_path = ivs_shm_path("mig-src");
    g_autofree char *dst_path = ivs_shm_path("mig-dst");
    g_autofree char *src_args = plain_args(src_path, "on");
    g_autofree char *dst_args = plain_args(dst_path, "on");
    QTestState *src = vm_start(src_args, false);
    QTestState *dst = vm_start(dst_args, true);
    QPCIBus *sbus = ivs_pci_bus(src), *dbus = ivs_pci_bus(dst);
    IvsDev *s = ivs_dev_open(src, sbus, SLOT);
    IvsDev *d;
    uint32_t i;

    for (i = 0; i < SHM_SIZE; i += 64 * KiB) {
        qpci_io_writel(s->pdev, s->shm, i, 0xc0de0000 | (i >> 16));
    }
    ivs_reg_write(s, IVSHMEM_REG_INTRMASK, 0x12345678);
    ivs_reg_write(s, IVSHMEM_REG_INTRSTATUS, 0x9abcdef0);

    g_assert_true(ivs_migrate(src, dst, NULL));
    ivs_wait_status(dst, "running");

    d = ivs_dev_open(dst, dbus, SLOT);
    for (i = 0; i < SHM_SIZE; i += 64 * KiB) {
        g_assert_cmphex(qpci_io_readl(d->pdev, d->shm, i), ==,
                        0xc0de0000 | (i >> 16));
    }
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0x12345678);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRSTATUS), ==, 0x9abcdef0);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRSTATUS), ==, 0);
    g_assert_cmpuint(ivs_reg_read(d, IVSHMEM_REG_IVPOSITION), ==, 0);

    ivs_dev_close(s);
    ivs_dev_close(d);
    qpci_free_pc(sbus);
    qpci_free_pc(dbus);
    qtest_quit(src);
    qtest_quit(dst);
    ivs_remove_path(src_path);
    ivs_remove_path(dst_path);
}

/* A peer is not migrated: the documented refusal, and the VM runs on. */
static void test_peer_refused(void)
{
    g_autofree char *path = ivs_shm_path("mig-peer");
    g_autofree char *args = plain_args(path, "off");
    g_autofree char *uri = g_strdup_printf("unix:%s/unused.sock",
                                           g_get_tmp_dir());
    QTestState *src = vm_start(args, false);
    QDict *resp;

    resp = qtest_qmp(src, "{'execute': 'migrate', 'arguments': {'uri': %s}}",
                     uri);
    ivs_assert_error_contains(resp, "not master");
    ivs_assert_error_contains(resp, "master=on");
    ivs_assert_error_contains(resp, "unplug");
    qobject_unref(resp);
    ivs_wait_status(src, "running");

    qtest_quit(src);
    ivs_remove_path(path);
}

/* Read MSI-X table entry @v's address and data and its mask bit. */
static void msix_entry(IvsDev *d, int v, uint64_t *addr, uint32_t *data,
                       bool *masked)
{
    uint64_t e = (uint64_t)v * PCI_MSIX_ENTRY_SIZE + d->pdev->msix_table_off;
    QPCIBar bar = d->pdev->msix_table_bar;

    *addr = qpci_io_readl(d->pdev, bar, e + PCI_MSIX_ENTRY_LOWER_ADDR) |
        (uint64_t)qpci_io_readl(d->pdev, bar,
                                e + PCI_MSIX_ENTRY_UPPER_ADDR) << 32;
    *data = qpci_io_readl(d->pdev, bar, e + PCI_MSIX_ENTRY_DATA);
    *masked = qpci_io_readl(d->pdev, bar, e + PCI_MSIX_ENTRY_VECTOR_CTRL) &
        PCI_MSIX_ENTRY_CTRL_MASKBIT;
}

/*
 * A master ivshmem-doorbell: registers, IVPOSITION, MSI-X table and mask
 * state arrive intact, and doorbells work both ways with a peer that
 * stayed on the destination's server.
 */
static void test_doorbell_master(void)
{
    IvsServer *ssrv = ivs_server_start("-l 1M -n 2");
    IvsServer *dsrv;
    g_autofree char *src_args = NULL;
    g_autofree char *dst_args = NULL;
    g_autofree char *peer_args = NULL;
    QTestState *src, *dst, *peer;
    QPCIBus *sbus, *dbus, *pbus;
    IvsDev *s, *d, *p;
    int v;

    if (!ssrv) {
        return;
    }
    dsrv = ivs_server_start("-l 1M -n 2");
    src_args = doorbell_args(ssrv->socket, 2, "on");
    dst_args = doorbell_args(dsrv->socket, 2, "on");

    src = vm_start(src_args, false);
    /* The destination connects first: it gets ID 0 on its server. */
    dst = vm_start(dst_args, true);
    peer_args = doorbell_args(dsrv->socket, 2, "off");
    peer = vm_start(peer_args, false);

    sbus = ivs_pci_bus(src);
    s = ivs_dev_open(src, sbus, SLOT);
    g_assert_cmpuint(ivs_reg_read(s, IVSHMEM_REG_IVPOSITION), ==, 0);
    ivs_msix_setup(s);
    ivs_msix_mask(s, 1, true);
    ivs_reg_write(s, IVSHMEM_REG_INTRMASK, 0xffff0000);
    ivs_reg_write(s, IVSHMEM_REG_INTRSTATUS, 0x0000ffff);

    g_assert_true(ivs_migrate(src, dst, NULL));
    ivs_wait_status(dst, "running");

    dbus = ivs_pci_bus(dst);
    d = ivs_dev_open(dst, dbus, SLOT);
    g_assert_cmpuint(ivs_reg_read(d, IVSHMEM_REG_IVPOSITION), ==, 0);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRMASK), ==, 0xffff0000);
    g_assert_cmphex(ivs_reg_read(d, IVSHMEM_REG_INTRSTATUS), ==, 0x0000ffff);

    /* MSI-X arrived enabled, with the source's messages and masks. */
    g_assert_true(qpci_config_readw(d->pdev,
                                    qpci_find_capability(d->pdev,
                                                         PCI_CAP_ID_MSIX, 0) +
                                    PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_ENABLE);
    qpci_msix_enable(d->pdev);
    for (v = 0; v < 2; v++) {
        uint64_t addr;
        uint32_t data;
        bool masked;

        msix_entry(d, v, &addr, &data, &masked);
        g_assert_cmphex(addr, ==, ivs_msix_addr(d, v));
        g_assert_cmphex(data, ==, IVS_MSIX_DATA(SLOT, v));
        g_assert_cmpint(masked, ==, v == 1);
    }
    d->msix_ready = true;

    pbus = ivs_pci_bus(peer);
    p = ivs_dev_open(peer, pbus, SLOT);
    g_assert_cmpuint(ivs_reg_read(p, IVSHMEM_REG_IVPOSITION), ==, 1);
    ivs_msix_setup(p);

    /* Peer -> migrated guest: vector 0 fires, masked vector 1 pends. */
    ivs_msix_clear(d);
    ivs_doorbell(p, 0, 0);
    ivs_msix_wait(d, 0);
    ivs_doorbell(p, 0, 1);
    ivs_msix_wait_pending(d, 1);
    g_assert_false(ivs_msix_fired(d, 1));
    ivs_msix_mask(d, 1, false);
    ivs_msix_wait(d, 1);

    /* Migrated guest -> peer, on both vectors. */
    for (v = 0; v < 2; v++) {
        ivs_doorbell(d, 1, v);
        ivs_msix_wait(p, v);
    }

    ivs_dev_close(s);
    ivs_dev_close(d);
    ivs_dev_close(p);
    qpci_free_pc(sbus);
    qpci_free_pc(dbus);
    qpci_free_pc(pbus);
    qtest_quit(src);
    qtest_quit(dst);
    qtest_quit(peer);
    ivs_server_stop(ssrv);
    ivs_server_stop(dsrv);
}

/*
 * The destination's server hands out ID 1 (someone else has 0): the
 * guest would see IVPOSITION change, so the migration fails, and the
 * source, which has not stopped yet, keeps running.
 */
static void test_id_mismatch(void)
{
    IvsServer *ssrv = ivs_server_start("-l 1M -n 1");
    IvsServer *dsrv;
    g_autofree char *src_args = NULL;
    g_autofree char *dst_args = NULL;
    g_autofree char *other_args = NULL;
    g_autofree char *path = NULL;
    g_autofree char *uri = NULL;
    QTestState *src, *dst, *other;
    QDict *resp, *ret;
    const char *status;
    int64_t deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    if (!ssrv) {
        return;
    }
    dsrv = ivs_server_start("-l 1M -n 1");
    src_args = doorbell_args(ssrv->socket, 1, "on");
    dst_args = doorbell_args(dsrv->socket, 1, "auto");
    other_args = doorbell_args(dsrv->socket, 1, "off");

    src = vm_start(src_args, false);
    other = vm_start(other_args, false);    /* takes ID 0 */
    dst = vm_start(dst_args, true);         /* gets ID 1 */

    path = ivs_socket_path("mig-mismatch.sock");
    uri = g_strdup_printf("unix:%s", path);
    qtest_qmp_assert_success(dst, "{'execute': 'migrate-incoming', "
                             "'arguments': {'uri': %s, "
                             "'exit-on-error': false}}", uri);
    qtest_qmp_assert_success(src, "{'execute': 'migrate', "
                             "'arguments': {'uri': %s}}", uri);
    for (;;) {
        resp = qtest_qmp(src, "{'execute': 'query-migrate'}");
        ret = qdict_get_qdict(resp, "return");
        status = qdict_get_try_str(ret, "status");
        if (status && (!strcmp(status, "failed") ||
                       !strcmp(status, "completed"))) {
            break;
        }
        qobject_unref(resp);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(5000);
    }
    g_assert_cmpstr(status, ==, "failed");
    qobject_unref(resp);
    ivs_wait_status(src, "running");

    /*
     * The destination refused the stream.  (QEMU 10.0 reports only "load
     * of migration failed" here; the device's own message, naming both
     * IDs, goes to the destination's stderr.)
     */
    for (;;) {
        resp = qtest_qmp(dst, "{'execute': 'query-migrate'}");
        ret = qdict_get_qdict(resp, "return");
        status = qdict_get_try_str(ret, "status");
        if (status && !strcmp(status, "failed")) {
            break;
        }
        qobject_unref(resp);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(5000);
    }
    g_test_message("destination: %s", qdict_get_try_str(ret, "error-desc"));
    qobject_unref(resp);
    ivs_assert_alive(src);
    ivs_assert_alive(dst);

    qtest_quit(src);
    qtest_quit(dst);
    qtest_quit(other);
    ivs_remove_path(path);
    ivs_server_stop(ssrv);
    ivs_server_stop(dsrv);
}

/*
 * A peer on the source's server rings the migrating guest all the time:
 * nothing crashes, the migration completes, the destination runs and
 * takes doorbells from its own server's peers.
 */
static void test_ringing_during_migration(void)
{
    IvsServer *ssrv = ivs_server_start("-l 1M -n 1");
    IvsServer *dsrv;
    g_autofree char *src_args = NULL;
    g_autofree char *dst_args = NULL;
    g_autofree char *ringer_args = NULL;
    g_autofree char *peer_args = NULL;
    g_autofree char *path = NULL;
    g_autofree char *uri = NULL;
    QTestState *src, *dst, *ringer, *peer;
    QPCIBus *sbus, *rbus, *dbus, *pbus;
    IvsDev *s, *r, *d, *p;
    int64_t deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    int rings = 0;

    if (!ssrv) {
        return;
    }
    dsrv = ivs_server_start("-l 1M -n 1");
    src_args = doorbell_args(ssrv->socket, 1, "on");
    ringer_args = doorbell_args(ssrv->socket, 1, "off");
    dst_args = doorbell_args(dsrv->socket, 1, "on");
    peer_args = doorbell_args(dsrv->socket, 1, "off");

    src = vm_start(src_args, false);
    ringer = vm_start(ringer_args, false);
    dst = vm_start(dst_args, true);
    peer = vm_start(peer_args, false);

    sbus = ivs_pci_bus(src);
    s = ivs_dev_open(src, sbus, SLOT);
    ivs_msix_setup(s);
    rbus = ivs_pci_bus(ringer);
    r = ivs_dev_open(ringer, rbus, SLOT);

    /* The source takes doorbells before migration... */
    ivs_doorbell(r, 0, 0);
    ivs_msix_wait(s, 0);

    path = ivs_socket_path("mig-ringing.sock");
    uri = g_strdup_printf("unix:%s", path);
    qtest_qmp_assert_success(dst, "{'execute': 'migrate-incoming', "
                             "'arguments': {'uri': %s}}", uri);
    qtest_qmp_assert_success(src, "{'execute': 'migrate', "
                             "'arguments': {'uri': %s}}", uri);
    /* ...and is rung all through the migration. */
    for (;;) {
        QDict *resp = qtest_qmp(src, "{'execute': 'query-migrate'}");
        const char *status = qdict_get_try_str(qdict_get_qdict(resp,
                                                               "return"),
                                               "status");

        if (status && !strcmp(status, "completed")) {
            qobject_unref(resp);
            break;
        }
        g_assert_cmpstr(status, !=, "failed");
        qobject_unref(resp);
        ivs_doorbell(r, 0, 0);
        rings++;
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
    }
    g_test_message("rang %d times during the migration", rings);
    g_assert_cmpint(rings, >, 0);
    ivs_wait_status(dst, "running");
    ivs_assert_alive(src);
    ivs_assert_alive(ringer);

    /* The destination works with its own server's peers. */
    dbus = ivs_pci_bus(dst);
    d = ivs_dev_open(dst, dbus, SLOT);
    qpci_msix_enable(d->pdev);
    d->msix_ready = true;
    pbus = ivs_pci_bus(peer);
    p = ivs_dev_open(peer, pbus, SLOT);
    ivs_msix_clear(d);
    ivs_doorbell(p, 0, 0);
    ivs_msix_wait(d, 0);

    ivs_dev_close(s);
    ivs_dev_close(r);
    ivs_dev_close(d);
    ivs_dev_close(p);
    qpci_free_pc(sbus);
    qpci_free_pc(rbus);
    qpci_free_pc(dbus);
    qpci_free_pc(pbus);
    qtest_quit(src);
    qtest_quit(ringer);
    qtest_quit(dst);
    qtest_quit(peer);
    ivs_remove_path(path);
    ivs_server_stop(ssrv);
    ivs_server_stop(dsrv);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/ivshmem/migration/plain-master", test_plain_master);
    qtest_add_func("/ivshmem/migration/peer-refused", test_peer_refused);
    qtest_add_func("/ivshmem/migration/doorbell-master",
                   test_doorbell_master);
    qtest_add_func("/ivshmem/migration/id-mismatch", test_id_mismatch);
    qtest_add_func("/ivshmem/migration/ringing", test_ringing_during_migration);
    return g_test_run();
}
