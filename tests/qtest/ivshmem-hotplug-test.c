/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtest for hot plug and unplug of ivshmem-plain and ivshmem-doorbell:
 * on bus 0 where the machine has hot plug there (pc: ACPI PCI hot plug;
 * pseries: sPAPR DRCs, the test doing the guest's RTAS calls), below a
 * pcie-root-port (q35, aarch64 virt) and below a pcie-pci-bridge there,
 * 50 cycles each, plugging again with the same memdev,
 * or with a chardev added again as management tools do.  A cycle must
 * leave no file descriptor behind, release the memdev (object-del works)
 * and leave the server.  A doorbell does not reconnect a chardev behind
 * anyone's back: plugging it on the chardev an unplug disconnected fails
 * at once, saying so.  Hot plug of a doorbell whose server never answers
 * fails with the timeout error and the monitor stays responsive.
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include "ivshmem-utils.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qapi/error.h"

#define SLOT        4
#define RP_SLOT     0x1e        /* rp0 on bus 0 */
#define CYCLES      50
#define SHM_SIZE    (1 * MiB)

typedef enum Bus {
    BUS_0,                      /* slot 4 of bus 0: pc, pseries */
    BUS_ROOT_PORT,              /* below pcie-root-port rp0: q35, virt */
    BUS_PCI_BRIDGE,             /* below rp0's pcie-pci-bridge br0 */
} Bus;

/* The machine, with what @bus needs; free it. */
static char *bus_machine(Bus bus)
{
    switch (bus) {
    case BUS_0:
        return g_strdup_printf("%s -nodefaults", ivs_machine());
    case BUS_ROOT_PORT:
        return g_strdup_printf("%s -nodefaults "
                               "-device pcie-root-port,id=rp0,chassis=1,"
                               "slot=1,addr=%x", ivs_pcie_machine(),
                               RP_SLOT);
    case BUS_PCI_BRIDGE:
        return g_strdup_printf("%s -nodefaults "
                               "-device pcie-root-port,id=rp0,chassis=1,"
                               "slot=1,addr=%x "
                               "-device pcie-pci-bridge,id=br0,bus=rp0",
                               ivs_pcie_machine(), RP_SLOT);
    }
    g_assert_not_reached();
}

/* The JSON members that place the device on @bus. */
static const char *bus_json(Bus bus)
{
    switch (bus) {
    case BUS_0:
        return "'addr': '4'";
    case BUS_ROOT_PORT:
        return "'bus': 'rp0'";
    case BUS_PCI_BRIDGE:
        return "'bus': 'br0', 'addr': '4'";
    }
    g_assert_not_reached();
}

/*
 * Plug the device @json describes, and do the guest's part for it: on
 * pseries take it through its DRC, below the root port power its slot.
 * (No guest under qtest enables the SHPC slots of the pcie-pci-bridge.)
 */
static void plug(QTestState *qts, QPCIBus *pbus, Bus bus, const char *json)
{
    ivs_device_add_ok(qts, json);
    if (bus == BUS_0) {
        ivs_hotplug_ack(qts, pbus, SLOT);
    } else if (bus == BUS_ROOT_PORT) {
        ivs_port_slot_power(pbus, RP_SLOT, true);
    }
}

/*
 * Unplug @id, the test doing the guest's part: ACPI eject on pc, DRC
 * isolation on pseries, powering the root port's slot off.  A device in
 * an SHPC slot the guest never enabled goes without asking the guest.
 */
static void unplug(QTestState *qts, QPCIBus *pbus, Bus bus, const char *id)
{
    switch (bus) {
    case BUS_0:
        ivs_unplug_bus0(qts, pbus, id, SLOT);
        break;
    case BUS_ROOT_PORT:
        ivs_unplug_root_port(qts, pbus, id, RP_SLOT);
        break;
    case BUS_PCI_BRIDGE:
        ivs_unplug_unclaimed(qts, id);
        break;
    }
}

/*
 * The device is there (and, on bus 0, works, with IVPOSITION
 * @ivposition, or any ID for IVS_ANY_ID).
 */
#define IVS_ANY_ID UINT32_MAX
static void check_plugged(QTestState *qts, QPCIBus *pbus, Bus bus,
                          uint32_t ivposition)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'qom-get', 'arguments': "
                            "{'path': '/machine/peripheral/dev0', "
                            "'property': 'realized'}}");

    g_assert_true(qdict_get_bool(resp, "return"));
    qobject_unref(resp);
    if (bus == BUS_0) {
        IvsDev *d = ivs_dev_open(qts, pbus, SLOT);

        g_assert_cmphex(d->shm_size, ==, SHM_SIZE);
        if (ivposition == IVS_ANY_ID) {
            ivposition = ivs_reg_read(d, IVSHMEM_REG_IVPOSITION);
        }
        g_assert_cmpuint(ivs_reg_read(d, IVSHMEM_REG_IVPOSITION), ==,
                         ivposition);
        qpci_io_writel(d->pdev, d->shm, 0x100, 0xc0ffee00 | ivposition);
        g_assert_cmphex(qpci_io_readl(d->pdev, d->shm, 0x100), ==,
                        0xc0ffee00 | ivposition);
        ivs_dev_close(d);
    }
}

static void check_unplugged(QTestState *qts, QPCIBus *pbus, Bus bus)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'qom-get', 'arguments': "
                            "{'path': '/machine/peripheral/dev0', "
                            "'property': 'realized'}}");

    g_assert_true(qdict_haskey(resp, "error"));
    qobject_unref(resp);
    if (bus == BUS_0) {
        QPCIDevice *pdev = qpci_device_find(pbus, QPCI_DEVFN(SLOT, 0));

        g_assert_null(pdev);
    }
}

static void test_plain(const void *opaque)
{
    Bus bus = GPOINTER_TO_INT(opaque);
    g_autofree char *path = ivs_shm_path("hotplug");
    g_autofree char *json = NULL;
    g_autofree char *machine = NULL;
    g_autoptr(GHashTable) fds = NULL;
    QTestState *qts, *other;
    QPCIBus *pbus;
    int i;

    machine = bus_machine(bus);
    qts = qtest_initf("%s -object memory-backend-file,id=m0,mem-path=%s,"
                      "size=1M,share=on", machine, path);
    pbus = ivs_pci_bus(qts);
    json = g_strdup_printf("{'driver': 'ivshmem-plain', 'id': 'dev0', "
                           "'memdev': 'm0', 'master': 'on', %s}",
                           bus_json(bus));
    fds = ivs_fd_snapshot(qts);

    for (i = 0; i < CYCLES; i++) {
        plug(qts, pbus, bus, json);
        if (i == 0 && bus == BUS_0) {
            QPCIDevice *pdev = qpci_device_find(pbus, QPCI_DEVFN(SLOT, 0));

            /* As the original device leaves it, until the guest resets it. */
            g_assert_cmphex(qpci_config_readw(pdev, PCI_COMMAND) &
                            (PCI_COMMAND_IO | PCI_COMMAND_MEMORY), ==,
                            PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
            g_free(pdev);
        }
        if (i == 0 || i == CYCLES - 1) {
            check_plugged(qts, pbus, bus, 0);
        }
        unplug(qts, pbus, bus, "dev0");
        /* Nothing of the device stays: no fd, no device. */
        ivs_wait_no_new_fds(qts, fds);
        if (i == 0 || i == CYCLES - 1) {
            check_unplugged(qts, pbus, bus);
        }
    }

    /* Another QEMU's master on the same file does not stand in the way. */
    other = qtest_initf("%s -nodefaults "
                        "-object memory-backend-file,id=m0,mem-path=%s,"
                        "size=1M,share=on "
                        "-device ivshmem-plain,memdev=m0,master=on",
                        ivs_machine(), path);
    plug(qts, pbus, bus, json);
    unplug(qts, pbus, bus, "dev0");
    qtest_quit(other);

    /* The memdev is free again: it can be deleted. */
    qtest_qmp_assert_success(qts, "{'execute': 'object-del', 'arguments': "
                             "{'id': 'm0'}}");
    ivs_assert_alive(qts);
    ivs_pci_bus_free(pbus);
    qtest_quit(qts);
    ivs_remove_path(path);
}

static void chardev_readd(QTestState *qts, const char *chardev_add)
{
    qtest_qmp_assert_success(qts, "{'execute': 'chardev-remove', "
                             "'arguments': {'id': 'c0'}}");
    qtest_qmp_assert_success(qts, "{'execute': 'chardev-add', "
                             "'arguments': %p}",
                             qobject_from_json(chardev_add, &error_abort));
}

/*
 * Doorbell: each cycle adds the chardev again and plugs the device on it;
 * unplug leaves the server, and the other VM on the server reaches it
 * every time it is checked.  The ID the server assigns is the server's
 * business (a new one each time, or the lowest free), so the test reads it.
 */
static void test_doorbell(const void *opaque)
{
    Bus bus = GPOINTER_TO_INT(opaque);
    IvsServer *srv = ivs_server_start("-l 1M -n 2");
    g_autofree char *json = NULL;
    g_autofree char *chardev_add = NULL;
    g_autofree char *machine = NULL;
    QTestState *qts, *peer_qts;
    QPCIBus *pbus, *peer_bus;
    IvsDev *peer;
    uint32_t peer_id;
    int i, base;

    if (!srv) {
        return;
    }
    machine = bus_machine(bus);
    qts = qtest_initf("%s -chardev socket,id=c0,path=%s", machine,
                      srv->socket);
    pbus = ivs_pci_bus(qts);
    json = g_strdup_printf("{'driver': 'ivshmem-doorbell', 'id': 'dev0', "
                           "'chardev': 'c0', 'vectors': 2, %s}",
                           bus_json(bus));
    chardev_add = g_strdup_printf("{'id': 'c0', 'backend': {'type': "
                                  "'socket', 'data': {'server': false, "
                                  "'addr': {'type': 'unix', 'data': "
                                  "{'path': '%s'}}}}}", srv->socket);

    peer_qts = qtest_initf("%s -nodefaults "
                           "-chardev socket,id=c0,path=%s "
                           "-device ivshmem-doorbell,chardev=c0,vectors=2,"
                           "addr=%d", ivs_machine(), srv->socket, SLOT);
    peer_bus = ivs_pci_bus(peer_qts);
    peer = ivs_dev_open(peer_qts, peer_bus, SLOT);
    peer_id = ivs_reg_read(peer, IVSHMEM_REG_IVPOSITION);
    ivs_msix_setup(peer);

    /* Plug once on the chardev from the command line. */
    plug(qts, pbus, bus, json);
    unplug(qts, pbus, bus, "dev0");
    /* The chardev stays disconnected: plugging on it fails at once. */
    ivs_device_add_fails(qts, json, "chardev 'c0' is not connected to an "
                         "ivshmem server");
    chardev_readd(qts, chardev_add);
    base = ivs_count_fds(qts);

    for (i = 0; i < CYCLES; i++) {
        bool check = i == 0 || i == CYCLES - 1;

        plug(qts, pbus, bus, json);
        if (check) {
            check_plugged(qts, pbus, bus, IVS_ANY_ID);
        }
        if (check && bus == BUS_0) {
            IvsDev *d = ivs_dev_open(qts, pbus, SLOT);
            uint32_t id = ivs_reg_read(d, IVSHMEM_REG_IVPOSITION);
            int64_t deadline = g_get_monotonic_time() +
                IVS_TIMEOUT_MS * 1000LL;

            g_assert_cmpuint(id, !=, peer_id);
            /*
             * The peer hears of us, and we know the peer: seen as the
             * messages, or where the target does not let the test see
             * them, as the pending bits of masked vectors.
             */
            ivs_msix_setup(d);
            if (!ivs_msix_messages_seen()) {
                ivs_msix_mask(d, 1, true);
                ivs_msix_mask(peer, 0, true);
            }
            do {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                ivs_doorbell(peer, id, 1);
                g_usleep(1000);
            } while (ivs_msix_messages_seen() ? !ivs_msix_fired(d, 1) :
                     !ivs_msix_pending(d, 1));
            ivs_doorbell(d, peer_id, 0);
            if (ivs_msix_messages_seen()) {
                ivs_msix_wait(peer, 0);
            } else {
                ivs_msix_wait_pending(peer, 0);
                ivs_msix_mask(peer, 0, false);
            }
            ivs_dev_close(d);
        }
        unplug(qts, pbus, bus, "dev0");
        chardev_readd(qts, chardev_add);
        /*
         * The memory, eventfds and connection went with the device; the
         * chardev that was just added is connected.
         */
        ivs_wait_fd_count(qts, base);
        if (check) {
            check_unplugged(qts, pbus, bus);
        }
    }

    /* The peer saw us come and go, and is fine. */
    ivs_assert_alive(peer_qts);
    ivs_dev_close(peer);
    ivs_pci_bus_free(peer_bus);
    qtest_quit(peer_qts);
    ivs_pci_bus_free(pbus);
    qtest_quit(qts);
    ivs_server_stop(srv);
}

/*
 * A server that never answers: device_add fails after the timeout, the
 * monitor answers at once afterwards, and the failed attempt left the
 * server, so the chardev is not used again.
 */
static void test_doorbell_silent_server(void)
{
    IvsFake *f = ivs_fake_new(SHM_SIZE);
    g_autoptr(GHashTable) fds = NULL;
    QTestState *qts;
    QDict *resp;
    int64_t t0, ms;

    ivs_fake_start(f);
    qts = qtest_initf("%s -nodefaults -chardev socket,id=c0,path=%s",
                      ivs_machine(), ivs_fake_socket(f));
    fds = ivs_fd_snapshot(qts);
    t0 = g_get_monotonic_time();
    resp = ivs_device_add(qts, "{'driver': 'ivshmem-doorbell', "
                          "'id': 'dev0', 'chardev': 'c0', "
                          "'setup-timeout-ms': 300}");
    ms = (g_get_monotonic_time() - t0) / 1000;
    ivs_assert_error_contains(resp, "did not complete the handshake "
                              "within 300 ms");
    qobject_unref(resp);
    g_assert_cmpint(ms, >=, 250);
    g_assert_cmpint(ms, <, 5000);
    t0 = g_get_monotonic_time();
    ivs_assert_alive(qts);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, G_USEC_PER_SEC);
    g_assert_true(ivs_fake_client_closed(f, IVS_TIMEOUT_MS));
    ivs_device_add_fails(qts, "{'driver': 'ivshmem-doorbell', "
                         "'id': 'dev0', 'chardev': 'c0'}",
                         "chardev 'c0' is not connected");
    ivs_wait_no_new_fds(qts, fds);
    qtest_quit(qts);
    ivs_fake_free(f);
}

/*
 * A chardev that reconnects, with no server: device_add is refused at
 * once instead of waiting for a connection with the monitor blocked.
 */
static void test_doorbell_reconnect_refused(void)
{
    g_autofree char *sock = ivs_socket_path("nobody");
    QTestState *qts;

    qts = qtest_initf("%s -nodefaults "
                      "-chardev socket,id=c0,path=%s,reconnect-ms=1000",
                      ivs_machine(), sock);
    ivs_device_add_fails(qts, "{'driver': 'ivshmem-doorbell', "
                         "'id': 'dev0', 'chardev': 'c0', "
                         "'setup-timeout-ms': 1000}",
                         "chardev 'c0' is not a plain unix socket client");
    ivs_assert_alive(qts);
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        Bus bus;
    } buses[] = {
        { "bus0", BUS_0 },
        { "root-port", BUS_ROOT_PORT },
        { "pcie-pci-bridge", BUS_PCI_BRIDGE },
    };
    int i;

    g_test_init(&argc, &argv, NULL);

    for (i = 0; i < ARRAY_SIZE(buses); i++) {
        /*
         * Where the machine can: aarch64 virt's bus 0 takes no hot plug;
         * pseries has no PCIe root ports.
         */
        if (buses[i].bus == BUS_0 ? !ivs_arch()->bus0_hotplug :
            !ivs_pcie_machine()) {
            continue;
        }
        g_autofree char *p1 = g_strdup_printf("/ivshmem-hotplug/plain/%s",
                                              buses[i].name);
        g_autofree char *p2 = g_strdup_printf("/ivshmem-hotplug/doorbell/%s",
                                              buses[i].name);

        qtest_add_data_func(p1, GINT_TO_POINTER(buses[i].bus), test_plain);
        qtest_add_data_func(p2, GINT_TO_POINTER(buses[i].bus),
                            test_doorbell);
    }
    qtest_add_func("/ivshmem-hotplug/doorbell/silent-server",
                   test_doorbell_silent_server);
    qtest_add_func("/ivshmem-hotplug/doorbell/reconnect-refused",
                   test_doorbell_reconnect_refused);

    return g_test_run();
}
