/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtests for hot plug and unplug of the ivshmem devices through QMP: on pc
 * (ACPI, root bus) and q35 (ACPI, below a PCIe root port and below a
 * PCIe-to-PCI bridge), many cycles each with the same memdev or chardev,
 * with no file descriptor growth in QEMU; and hot plug of a doorbell whose
 * server never answers, which fails with the timeout error while the
 * monitor stays responsive.
 *
 * There is no guest to acknowledge an unplug, so the test does what the
 * guest's ACPI code would: select the bus and write the slot's eject bit.
 */

#include "qemu/osdep.h"
#include "ivshmem-utils.h"
#include "libqos/pci-pc.h"
#include "qobject/qdict.h"

#define CYCLES              50
#define SHM_SIZE            (1 * MiB)

/* ACPI PCI hot plug registers (hw/acpi/pcihp.c). */
#define PIIX4_PCIHP_BASE    0xae00
#define ICH9_PCIHP_BASE     0x0cc0
#define PCIHP_EJ            0x08
#define PCIHP_SEL           0x10

typedef struct HotplugCase {
    const char *name;
    const char *machine;
    const char *extra;          /* bridges etc. */
    const char *bus;            /* QOM path of the bus, NULL: root bus */
    const char *bus_opt;        /* device_add's bus property, or "" */
    int slot;
    uint16_t pcihp_base;
    bool doorbell;
} HotplugCase;

static const HotplugCase cases[] = {
    {
        .name = "pc/plain", .machine = "pc", .extra = "",
        .bus_opt = "", .slot = 5, .pcihp_base = PIIX4_PCIHP_BASE,
    }, {
        .name = "pc/doorbell", .machine = "pc", .extra = "",
        .bus_opt = "", .slot = 5, .pcihp_base = PIIX4_PCIHP_BASE,
        .doorbell = true,
    }, {
        .name = "q35-root-port/plain", .machine = "q35",
        .extra = "-device pcie-root-port,id=rp0,chassis=1,addr=4",
        .bus = "/machine/peripheral/rp0/rp0", .bus_opt = "rp0",
        .slot = 0, .pcihp_base = ICH9_PCIHP_BASE,
    }, {
        .name = "q35-root-port/doorbell", .machine = "q35",
        .extra = "-device pcie-root-port,id=rp0,chassis=1,addr=4",
        .bus = "/machine/peripheral/rp0/rp0", .bus_opt = "rp0",
        .slot = 0, .pcihp_base = ICH9_PCIHP_BASE, .doorbell = true,
    }, {
        .name = "q35-pci-bridge/plain", .machine = "q35",
        .extra = "-device pcie-root-port,id=rp0,chassis=1,addr=4 "
                 "-device pcie-pci-bridge,id=br0,bus=rp0",
        .bus = "/machine/peripheral/br0/br0", .bus_opt = "br0",
        .slot = 3, .pcihp_base = ICH9_PCIHP_BASE,
    }, {
        .name = "q35-pci-bridge/doorbell", .machine = "q35",
        .extra = "-device pcie-root-port,id=rp0,chassis=1,addr=4 "
                 "-device pcie-pci-bridge,id=br0,bus=rp0",
        .bus = "/machine/peripheral/br0/br0", .bus_opt = "br0",
        .slot = 3, .pcihp_base = ICH9_PCIHP_BASE, .doorbell = true,
    },
};

/* The hot plug bus selector ACPI gave @bus (0: pc's root bus). */
static uint32_t pcihp_bsel(QTestState *qts, const char *bus)
{
    QDict *resp;
    uint32_t bsel;

    if (!bus) {
        return 0;
    }
    resp = qtest_qmp(qts, "{'execute': 'qom-get', 'arguments': "
                     "{'path': %s, 'property': 'acpi-pcihp-bsel'}}", bus);
    g_assert(qdict_haskey(resp, "return"));
    bsel = qdict_get_int(resp, "return");
    qobject_unref(resp);
    return bsel;
}

/* device_del, then eject the slot as the guest's ACPI code would. */
static void unplug(QTestState *qts, const HotplugCase *c, uint32_t bsel)
{
    qtest_qmp_device_del_send(qts, "hp0");
    qtest_outl(qts, c->pcihp_base + PCIHP_SEL, bsel);
    qtest_outl(qts, c->pcihp_base + PCIHP_EJ, 1u << c->slot);
    qtest_qmp_eventwait(qts, "DEVICE_DELETED");
}

static char *device_json(const HotplugCase *c)
{
    g_autofree char *bus = c->bus_opt[0] ?
        g_strdup_printf(", 'bus': '%s'", c->bus_opt) : g_strdup("");

    if (c->doorbell) {
        return g_strdup_printf("{'driver': 'ivshmem-doorbell', 'id': 'hp0', "
                               "'chardev': 'c0', 'addr': '%d'%s}",
                               c->slot, bus);
    }
    return g_strdup_printf("{'driver': 'ivshmem-plain', 'id': 'hp0', "
                           "'memdev': 'm0', 'addr': '%d'%s}", c->slot, bus);
}

/*
 * For the root bus, the device's identity and what it holds: BAR2 of the
 * right size; IVPOSITION 0 for a doorbell, which proves that unplugging
 * the previous one released ID 0 at the server.
 */
static void check_device(QTestState *qts, QPCIBus *pbus,
                         const HotplugCase *c)
{
    IvsDev *d;

    if (c->bus) {
        return;     /* libqos enumerates bus 0 only */
    }
    d = ivs_dev_open(qts, pbus, c->slot);
    g_assert_cmpuint(d->shm_size, ==, SHM_SIZE);
    g_assert_cmpuint(ivs_reg_read(d, IVSHMEM_REG_IVPOSITION), ==, 0);
    ivs_dev_close(d);
}

static void test_cycles(const void *opaque)
{
    const HotplugCase *c = opaque;
    IvsServer *srv = NULL;
    g_autofree char *path = NULL;
    g_autofree char *backend = NULL;
    g_autofree char *json = device_json(c);
    QTestState *qts;
    QPCIBus *pbus;
    uint32_t bsel;
    int fds, i;

    if (c->doorbell) {
        srv = ivs_server_start("-l 1M -n 2");
        if (!srv) {
            return;
        }
        backend = g_strdup_printf("-chardev socket,id=c0,path=%s",
                                  srv->socket);
    } else {
        path = ivs_shm_path("hotplug");
        backend = g_strdup_printf("-object memory-backend-file,id=m0,"
                                  "mem-path=%s,size=%d,share=on", path,
                                  (int)SHM_SIZE);
    }
    qts = qtest_initf("-machine %s -nodefaults %s %s", c->machine, c->extra,
                      backend);
    pbus = ivs_pci_bus(qts);
    bsel = pcihp_bsel(qts, c->bus);

    /* One cycle first: it allocates what QEMU keeps for later ones. */
    ivs_device_add_ok(qts, json);
    check_device(qts, pbus, c);
    unplug(qts, c, bsel);
    fds = ivs_count_fds(qts);

    for (i = 0; i < CYCLES; i++) {
        ivs_device_add_ok(qts, json);
        unplug(qts, c, bsel);
    }
    /* Unplugged RAM is released after an RCU grace period. */
    ivs_wait_fd_count(qts, fds);

    /* Plugged again with the same memdev or chardev, it works. */
    ivs_device_add_ok(qts, json);
    check_device(qts, pbus, c);
    unplug(qts, c, bsel);
    ivs_wait_fd_count(qts, fds);

    /* Nothing holds the backend any more. */
    if (c->doorbell) {
        qtest_qmp_assert_success(qts, "{'execute': 'chardev-remove', "
                                 "'arguments': {'id': 'c0'}}");
    } else {
        qtest_qmp_assert_success(qts, "{'execute': 'object-del', "
                                 "'arguments': {'id': 'm0'}}");
    }

    qpci_free_pc(pbus);
    qtest_quit(qts);
    if (srv) {
        ivs_server_stop(srv);
    }
    if (path) {
        ivs_remove_path(path);
    }
}

/*
 * A doorbell hot plugged onto a server that never answers: device_add
 * fails with the timeout error after setup-timeout-ms, the monitor
 * answers afterwards, and no file descriptor is left behind.
 */
static void test_silent_server(void)
{
    IvsFake *fake = ivs_fake_new(SHM_SIZE);
    QTestState *qts;
    int fds;

    ivs_fake_start(fake);
    qts = qtest_initf("-machine pc -nodefaults "
                      "-chardev socket,id=c0,path=%s", ivs_fake_socket(fake));
    fds = ivs_count_fds(qts);
    ivs_device_add_fails(qts, "{'driver': 'ivshmem-doorbell', 'id': 'hp0', "
                         "'chardev': 'c0', 'setup-timeout-ms': 300}",
                         "did not complete the handshake within 300 ms");
    ivs_assert_alive(qts);
    /* The failed device let go of the connection. */
    g_assert_true(ivs_fake_client_closed(fake, IVS_TIMEOUT_MS));
    ivs_wait_fd_count(qts, fds - 1);

    qtest_quit(qts);
    ivs_fake_free(fake);
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autofree char *name = g_strdup_printf("/ivshmem/hotplug/%s",
                                                cases[i].name);

        qtest_add_data_func(name, &cases[i], test_cycles);
    }
    qtest_add_func("/ivshmem/hotplug/silent-server", test_silent_server);
    return g_test_run();
}
