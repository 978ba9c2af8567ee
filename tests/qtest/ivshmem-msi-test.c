/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtest for ivshmem-doorbell's MSI-X messages as the target's interrupt
 * path receives them (ivshmem-msi.h): x86_64 pc, aarch64 virt through the
 * GICv3 ITS, ppc64 pseries through RTAS and XIVE.
 *
 * Two devices, each on a fake server of its own, ring their own vectors
 * through DOORBELL: every vector must be delivered once, to itself, and
 * nothing else anywhere; a masked vector must only set its PBA bit until
 * it is unmasked; and swapping two vectors' MSI-X entries must swap where
 * their messages arrive, which shows that the sink tells vectors apart.
 * Where the sink cannot see messages, it must say so.
 * On aarch64 both devices' vectors have the same address and data (the
 * ITS's doorbell, event ID = vector), so there the requester ID alone
 * keeps the devices apart.
 */

#include "qemu/osdep.h"
#include "ivshmem-utils.h"
#include "ivshmem-msi.h"

#define SHM_SIZE    (1 * MiB)
#define NDEVS       2

/* More than 32 vectors on one device: its PBA spans two words. */
static const struct {
    int slot;
    int own_id;
    int vectors;
} devs[NDEVS] = {
    { 4, 3, 4 },
    { 5, 7, 40 },
};

typedef struct Rig {
    QTestState *qts;
    QPCIBus *bus;
    IvsMsi *msi;
    IvsFake *fake[NDEVS];
    IvsDev *dev[NDEVS];
} Rig;

static void rig_stop(Rig *r)
{
    int i;

    ivs_msi_free(r->msi);
    for (i = 0; i < NDEVS; i++) {
        ivs_dev_close(r->dev[i]);
    }
    ivs_pci_bus_free(r->bus);
    if (r->qts) {
        qtest_quit(r->qts);
    }
    for (i = 0; i < NDEVS; i++) {
        ivs_fake_free(r->fake[i]);
    }
    g_free(r);
}

/*
 * A VM of @machine (-machine and more) with both devices, their vectors
 * routed to the MSI sink; NULL (after g_test_skip()) where the sink
 * cannot observe messages.
 */
static Rig *rig_start(const char *machine)
{
    Rig *r = g_new0(Rig, 1);
    g_autoptr(GString) args = g_string_new(machine);
    const char *why;
    int i;

    g_string_append(args, " -nodefaults");
    for (i = 0; i < NDEVS; i++) {
        r->fake[i] = ivs_fake_new(SHM_SIZE);
        ivs_fake_push_handshake(r->fake[i], devs[i].own_id, NULL, 0,
                                devs[i].vectors);
        ivs_fake_start(r->fake[i]);
        g_string_append_printf(args, " -chardev socket,id=c%d,path=%s "
                               "-device ivshmem-doorbell,id=db%d,"
                               "chardev=c%d,vectors=%d,addr=%d",
                               i, ivs_fake_socket(r->fake[i]), i, i,
                               devs[i].vectors, devs[i].slot);
    }
    r->qts = qtest_init(args->str);

    /* ivs_msi_machine() is chosen to be observable: anything else is a bug. */
    why = ivs_msi_unobservable(r->qts);
    if (why) {
        g_test_message("%s", why);
    }
    g_assert_null(why);

    r->bus = ivs_pci_bus(r->qts);
    r->msi = ivs_msi_new(r->qts, r->bus);
    for (i = 0; i < NDEVS; i++) {
        r->dev[i] = ivs_dev_open(r->qts, r->bus, devs[i].slot);
        g_assert_cmpint(r->dev[i]->vectors, ==, devs[i].vectors);
        g_assert_cmpuint(ivs_reg_read(r->dev[i], IVSHMEM_REG_IVPOSITION), ==,
                         devs[i].own_id);
        ivs_msi_route(r->msi, r->dev[i]->pdev, devs[i].vectors);
    }
    /* Routing alone delivers nothing. */
    ivs_msi_assert_quiet(r->msi);
    return r;
}

/* Ring vector @v of device @i through its own DOORBELL. */
static void ring_own(Rig *r, int i, int v)
{
    ivs_doorbell(r->dev[i], ivs_reg_read(r->dev[i], IVSHMEM_REG_IVPOSITION),
                 v);
}

static void test_each_vector(const void *machine)
{
    Rig *r = rig_start(machine);
    int i, v;

    for (i = 0; i < NDEVS; i++) {
        for (v = 0; v < devs[i].vectors; v++) {
            ring_own(r, i, v);
            ivs_msi_wait(r->msi, r->dev[i]->pdev, v);
            /* Once: taken, it is gone; and no other vector fired. */
            g_assert_false(ivs_msi_take(r->msi, r->dev[i]->pdev, v));
            ivs_msi_assert_quiet(r->msi);
            g_assert_false(ivs_msix_pending(r->dev[i], v));
        }
    }
    /* Every vector again, now the other way round. */
    for (i = NDEVS - 1; i >= 0; i--) {
        for (v = devs[i].vectors - 1; v >= 0; v--) {
            ring_own(r, i, v);
            ivs_msi_wait(r->msi, r->dev[i]->pdev, v);
            ivs_msi_assert_quiet(r->msi);
        }
    }
    rig_stop(r);
}

static void test_masked(const void *machine)
{
    Rig *r = rig_start(machine);
    int i;

    for (i = 0; i < NDEVS; i++) {
        /* The last vector: on the second device in the PBA's 2nd word. */
        int v = devs[i].vectors - 1;

        ivs_msix_mask(r->dev[i], v, true);
        ring_own(r, i, v);
        ivs_msix_wait_pending(r->dev[i], v);
        ivs_msi_assert_quiet(r->msi);

        /* Another vector of the same device still gets through. */
        ring_own(r, i, 0);
        ivs_msi_wait(r->msi, r->dev[i]->pdev, 0);
        g_assert_true(ivs_msix_pending(r->dev[i], v));
        ivs_msi_assert_quiet(r->msi);

        /* Unmasking delivers the pending message, once. */
        ivs_msix_mask(r->dev[i], v, false);
        ivs_msi_wait(r->msi, r->dev[i]->pdev, v);
        g_assert_false(ivs_msix_pending(r->dev[i], v));
        ivs_msi_assert_quiet(r->msi);
    }
    rig_stop(r);
}

/* Swap the address and data of MSI-X entries @a and @b of @d. */
static void swap_entries(IvsDev *d, int a, int b)
{
    QPCIDevice *pdev = d->pdev;
    uint64_t ea = pdev->msix_table_off + a * PCI_MSIX_ENTRY_SIZE;
    uint64_t eb = pdev->msix_table_off + b * PCI_MSIX_ENTRY_SIZE;
    int off;

    for (off = 0; off < PCI_MSIX_ENTRY_VECTOR_CTRL; off += 4) {
        uint32_t va = qpci_io_readl(pdev, pdev->msix_table_bar, ea + off);
        uint32_t vb = qpci_io_readl(pdev, pdev->msix_table_bar, eb + off);

        qpci_io_writel(pdev, pdev->msix_table_bar, ea + off, vb);
        qpci_io_writel(pdev, pdev->msix_table_bar, eb + off, va);
    }
}

static void test_swapped_entries(const void *machine)
{
    Rig *r = rig_start(machine);
    QPCIDevice *pdev;

    pdev = r->dev[1]->pdev;
    swap_entries(r->dev[1], 1, 33);
    ring_own(r, 1, 1);
    ivs_msi_wait(r->msi, pdev, 33);
    ivs_msi_assert_quiet(r->msi);
    ring_own(r, 1, 33);
    ivs_msi_wait(r->msi, pdev, 1);
    ivs_msi_assert_quiet(r->msi);

    /* Swapped back, each vector arrives as itself again. */
    swap_entries(r->dev[1], 1, 33);
    ring_own(r, 1, 1);
    ivs_msi_wait(r->msi, pdev, 1);
    ivs_msi_assert_quiet(r->msi);
    rig_stop(r);
}

/* The sink names a reason where it cannot see messages, @what in it. */
static void assert_unobservable(const char *args, const char *what)
{
    QTestState *qts = qtest_initf("%s -nodefaults", args);
    const char *why = ivs_msi_unobservable(qts);

    g_assert_nonnull(why);
    g_test_message("%s: %s", args, why);
    g_assert_nonnull(strstr(why, what));
    qtest_quit(qts);
}

static void test_unobservable(void)
{
    if (!strcmp(qtest_get_arch(), "aarch64")) {
        /* GICv2 has no ITS (the virt machine's MSIs go to GICv2m). */
        assert_unobservable("-machine virt,gic-version=2 -cpu max", "ITS");
    } else if (!strcmp(qtest_get_arch(), "ppc64")) {
        assert_unobservable("-machine pseries", "ic-mode=dual");
        assert_unobservable("-machine pseries,ic-mode=xive", "ic-mode=xive");
    } else if (ivs_require_kvm()) {
        /* Paused: the vCPU would run the firmware. */
        assert_unobservable("-machine pc -accel kvm -S", "KVM");
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_data_func("/ivshmem-msi/each-vector", ivs_msi_machine(),
                        test_each_vector);
    qtest_add_data_func("/ivshmem-msi/masked", ivs_msi_machine(),
                        test_masked);
    qtest_add_data_func("/ivshmem-msi/swapped-entries", ivs_msi_machine(),
                        test_swapped_entries);
    if (!strcmp(qtest_get_arch(), "x86_64")) {
        /* The sink does not depend on the x86 machine: q35 too. */
        qtest_add_data_func("/ivshmem-msi/q35/each-vector", "-machine q35",
                            test_each_vector);
    }
    qtest_add_func("/ivshmem-msi/unobservable", test_unobservable);
    return g_test_run();
}
