/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers shared by the ivshmem qtests (see ivshmem-utils.h): QEMU
 * processes, the device's BARs and MSI-X vectors, a scripted fake ivshmem
 * server, the real ivshmem-server, migration, and cleanup on abort.
 */

#include "qemu/osdep.h"
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include "ivshmem-utils.h"
#include "ivshmem-msi.h"
#include "qemu/atomic.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "libqos/pci-pc.h"
#include "libqos/generic-pcihost.h"
#include "libqos/pci-spapr.h"
#include "libqos/malloc-spapr.h"
#include "qobject/qdict.h"
#include "qobject/qstring.h"
#include "qobject/qjson.h"
#include "qapi/error.h"

/* ---- the target's machine ---- */

static const IvsArch ivs_arches[] = {
    {
        .arch = "x86_64",
        .machine = "-machine pc",
        .pcie_machine = "-machine q35",
        .small_ram = "-m 32M",
        .ram_base = 0,
        .msix_in_ram = true,
        .bus0_hotplug = true,
    }, {
        /*
         * GICv3 with its ITS, as a guest with MSI-X wants it.  libqos'
         * generic PCIe host assumes virt's default memory map (high ECAM
         * and the 32-bit MMIO window at 0x10000000).  "max" is the CPU
         * libqos' own aarch64/virt machine uses; under qtest no vCPU
         * runs, so any CPU that can have a GICv3 does.
         */
        .arch = "aarch64",
        /*
         * The root port is where ivs_device_add() puts a device that
         * names no bus (bus 0 takes no hot plug); at the last slot, out
         * of the tests' way.
         */
        .machine = "-machine virt,gic-version=3,its=on -cpu max "
                   "-device pcie-root-port,id=" IVS_HOTPLUG_PORT ","
                   "chassis=254,slot=0,addr=" stringify(IVS_HOTPLUG_PORT_SLOT),
        .pcie_machine = "-machine virt,gic-version=3,its=on -cpu max",
        .small_ram = "-m 32M",
        .ram_base = 0x40000000,
        .msix_in_ram = true,
        /* The root complex's bus takes no hot plug; root ports do. */
        .bus0_hotplug = false,
    }, {
        /*
         * RAM comes in 256 MiB blocks.  PCI DMA, MSI-X messages included,
         * goes through the PHB's TCE IOMMU, so a message aimed at RAM goes
         * nowhere: the MSI-X helpers route the vectors through RTAS to
         * XICS interrupt sources instead (ivshmem-msi.c).  That needs
         * ic-mode=xics: under qtest the default (dual) ends up with XIVE
         * active, where QEMU refuses the XICS RTAS calls the sink reads
         * the sources with, and xive alone crashes qtest's RTAS calls.
         */
        .arch = "ppc64",
        .machine = "-machine pseries,ic-mode=xics",
        .pcie_machine = NULL,
        .small_ram = "-m 256M",
        .ram_base = 0,
        .msix_in_ram = false,
        .bus0_hotplug = true,
    },
};

const IvsArch *ivs_arch(void)
{
    static const IvsArch *arch;
    const char *name;
    int i;

    if (arch) {
        return arch;
    }
    name = qtest_get_arch();
    for (i = 0; i < ARRAY_SIZE(ivs_arches); i++) {
        if (!strcmp(ivs_arches[i].arch, name)) {
            arch = &ivs_arches[i];
            return arch;
        }
    }
    g_test_message("the ivshmem qtests know no machine for target %s", name);
    g_assert_not_reached();
}

const char *ivs_machine(void)
{
    return ivs_arch()->machine;
}

const char *ivs_pcie_machine(void)
{
    return ivs_arch()->pcie_machine;
}

bool ivs_arch_is(const char *arch)
{
    return !strcmp(ivs_arch()->arch, arch);
}

/*
 * The architecture this test program runs on (the build's host), spelled
 * as qtest_get_arch() spells the target's.
 */
#if defined(HOST_X86_64)
#define IVS_HOST_ARCH "x86_64"
#elif defined(HOST_AARCH64)
#define IVS_HOST_ARCH "aarch64"
#elif defined(HOST_PPC64)
#define IVS_HOST_ARCH "ppc64"
#else
#define IVS_HOST_ARCH ""
#endif

bool ivs_kvm_target(void)
{
    return ivs_arch_is(IVS_HOST_ARCH);
}

/* ---- cleanup that survives a failed assertion ---- */

static GMutex cleanup_lock;
static GHashTable *cleanup_paths;
static GHashTable *cleanup_pids;
static bool cleanup_hooked;

static void ivs_cleanup_all(void *opaque)
{
    GHashTableIter iter;
    gpointer key;

    /* Called from the SIGABRT handler: no locking, best effort. */
    if (cleanup_pids) {
        g_hash_table_iter_init(&iter, cleanup_pids);
        while (g_hash_table_iter_next(&iter, &key, NULL)) {
            pid_t pid = GPOINTER_TO_INT(key);

            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
    if (cleanup_paths) {
        g_hash_table_iter_init(&iter, cleanup_paths);
        while (g_hash_table_iter_next(&iter, &key, NULL)) {
            unlink(key);
        }
    }
}

static void ivs_terminated(int sig)
{
    /* Killed, e.g. by meson's timeout: clean up like a failed assertion. */
    abort();
}

static void ivs_cleanup_init(void)
{
    if (!cleanup_hooked) {
        struct sigaction sa = { .sa_handler = ivs_terminated };

        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        cleanup_paths = g_hash_table_new_full(g_str_hash, g_str_equal,
                                              g_free, NULL);
        cleanup_pids = g_hash_table_new(g_direct_hash, g_direct_equal);
        qtest_add_abrt_handler(ivs_cleanup_all, NULL);
        cleanup_hooked = true;
    }
}

void ivs_cleanup_path(const char *path)
{
    g_mutex_lock(&cleanup_lock);
    ivs_cleanup_init();
    g_hash_table_add(cleanup_paths, g_strdup(path));
    g_mutex_unlock(&cleanup_lock);
}

void ivs_forget_path(const char *path)
{
    g_mutex_lock(&cleanup_lock);
    ivs_cleanup_init();
    g_hash_table_remove(cleanup_paths, path);
    g_mutex_unlock(&cleanup_lock);
}

void ivs_cleanup_pid(pid_t pid)
{
    g_mutex_lock(&cleanup_lock);
    ivs_cleanup_init();
    g_hash_table_add(cleanup_pids, GINT_TO_POINTER(pid));
    g_mutex_unlock(&cleanup_lock);
}

void ivs_forget_pid(pid_t pid)
{
    g_mutex_lock(&cleanup_lock);
    ivs_cleanup_init();
    g_hash_table_remove(cleanup_pids, GINT_TO_POINTER(pid));
    g_mutex_unlock(&cleanup_lock);
}

static char *ivs_unique_name(const char *dir, const char *tag)
{
    static int counter;

    return g_strdup_printf("%s/ivshmem-qtest-%d-%d-%s", dir, (int)getpid(),
                           qatomic_fetch_inc(&counter), tag);
}

char *ivs_shm_path(const char *tag)
{
    char *path = ivs_unique_name("/dev/shm", tag);

    unlink(path);
    ivs_cleanup_path(path);
    return path;
}

char *ivs_socket_path(const char *tag)
{
    char *path = ivs_unique_name(g_get_tmp_dir(), tag);

    g_assert_cmpuint(strlen(path), <,
                     sizeof(((struct sockaddr_un *)NULL)->sun_path));
    unlink(path);
    ivs_cleanup_path(path);
    return path;
}

void ivs_remove_path(const char *path)
{
    unlink(path);
    ivs_forget_path(path);
}

/* ---- QEMU ---- */

static void ivs_watchdog_fired(int sig)
{
    static const char msg[] = "ivshmem test watchdog: test case hung\n";

    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
        /* nothing left to do about it */
    }
    abort();    /* runs the abort hooks: QEMUs and servers are killed */
}

void ivs_watchdog(int seconds)
{
    struct sigaction sa = { .sa_handler = ivs_watchdog_fired };

    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds);
}

bool ivs_require_kvm(void)
{
    static int usable = -1;
    QTestState *qts;
    QDict *resp, *ret;

    if (usable < 0) {
        usable = 0;
        if (qtest_has_accel("kvm")) {
            qts = qtest_initf("%s -accel kvm", ivs_machine());
            resp = qtest_qmp(qts, "{'execute': 'query-kvm'}");
            ret = qdict_get_qdict(resp, "return");
            usable = ret && qdict_get_bool(ret, "enabled");
            qobject_unref(resp);
            qtest_quit(qts);
        }
    }
    if (!usable) {
        g_test_skip("KVM is not usable here (no /dev/kvm, or QEMU fell "
                    "back to qtest): this KVM variant did not run");
    }
    return usable;
}

void ivs_assert_kvm(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-kvm'}");
    QDict *ret = qdict_get_qdict(resp, "return");

    g_assert(ret);
    g_assert_true(qdict_get_bool(ret, "enabled"));
    qobject_unref(resp);
}

void ivs_log_fds(QTestState *qts)
{
    g_autofree char *dirname = g_strdup_printf("/proc/%d/fd",
                                               (int)qtest_pid(qts));
    GDir *dir = g_dir_open(dirname, 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *link = g_strdup_printf("%s/%s", dirname, name);
        g_autofree char *target = g_file_read_link(link, NULL);

        g_test_message("  fd %s -> %s", name, target ?: "?");
    }
    if (dir) {
        g_dir_close(dir);
    }
}

GHashTable *ivs_fd_snapshot(QTestState *qts)
{
    g_autofree char *dirname = g_strdup_printf("/proc/%d/fd",
                                               (int)qtest_pid(qts));
    GHashTable *set = g_hash_table_new_full(g_str_hash, g_str_equal,
                                            g_free, NULL);
    GDir *dir = g_dir_open(dirname, 0, NULL);
    const char *name;

    g_assert(dir);
    while ((name = g_dir_read_name(dir))) {
        g_autofree char *link = g_strdup_printf("%s/%s", dirname, name);
        g_autofree char *target = g_file_read_link(link, NULL);

        g_hash_table_add(set, g_strdup_printf("%s -> %s", name,
                                              target ?: "?"));
    }
    g_dir_close(dir);
    return set;
}

void ivs_wait_no_new_fds(QTestState *qts, GHashTable *before)
{
    int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;

    /* Some fds are closed from an RCU callback: poll. */
    for (;;) {
        g_autoptr(GHashTable) now = ivs_fd_snapshot(qts);
        GHashTableIter iter;
        gpointer key;
        const char *extra = NULL;

        g_hash_table_iter_init(&iter, now);
        while (g_hash_table_iter_next(&iter, &key, NULL)) {
            if (!g_hash_table_contains(before, key)) {
                extra = key;
                break;
            }
        }
        if (!extra) {
            return;
        }
        if (g_get_monotonic_time() > deadline) {
            g_test_message("QEMU has an fd it did not have before: %s",
                           extra);
            g_assert_null(extra);
        }
        g_usleep(2000);
    }
}

int ivs_count_fds(QTestState *qts)
{
    g_autofree char *dirname = g_strdup_printf("/proc/%d/fd",
                                               (int)qtest_pid(qts));
    GDir *dir = g_dir_open(dirname, 0, NULL);
    int n = 0;

    g_assert(dir);
    while (g_dir_read_name(dir)) {
        n++;
    }
    g_dir_close(dir);
    return n;
}

void ivs_assert_alive(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-status'}");
    QDict *ret = qdict_get_qdict(resp, "return");

    g_assert(ret);
    g_assert(qdict_haskey(ret, "status"));
    qobject_unref(resp);
}

static void ivs_child_setup(gpointer opaque)
{
    /* Never outlive the test, even when it is killed. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

static const char *ivs_qemu_binary(void)
{
    const char *bin = g_getenv("QTEST_QEMU_BINARY");

    g_assert(bin);
    return bin;
}

struct IvsQemu {
    GPid pid;
    int errfd;
};

IvsQemu *ivs_qemu_spawn(const char *args)
{
    g_autofree char *cmd = g_strdup_printf("%s -display none -nodefaults "
                                           "-accel qtest %s",
                                           ivs_qemu_binary(), args);
    g_auto(GStrv) argv = NULL;
    g_autoptr(GError) error = NULL;
    IvsQemu *q = g_new0(IvsQemu, 1);

    g_test_message("running QEMU: %s", cmd);
    g_assert_true(g_shell_parse_argv(cmd, NULL, &argv, &error));
    g_assert_true(g_spawn_async_with_pipes(NULL, argv, NULL,
                                           G_SPAWN_DO_NOT_REAP_CHILD |
                                           G_SPAWN_STDOUT_TO_DEV_NULL,
                                           ivs_child_setup, NULL, &q->pid,
                                           NULL, NULL, &q->errfd, &error));
    ivs_cleanup_pid(q->pid);
    return q;
}

int ivs_qemu_wait(IvsQemu *q, int timeout_ms, char **err)
{
    GString *out = g_string_new("");
    int64_t deadline = g_get_monotonic_time() + timeout_ms * 1000LL;
    int status = 0;
    pid_t ret;

    /* Collect stderr until QEMU closes it (exits) or time runs out. */
    for (;;) {
        struct pollfd pfd = { .fd = q->errfd, .events = POLLIN };
        int64_t left = (deadline - g_get_monotonic_time()) / 1000;
        char buf[4096];
        ssize_t n;

        if (left <= 0) {
            break;
        }
        if (poll(&pfd, 1, left) <= 0) {
            continue;
        }
        n = read(q->errfd, buf, sizeof(buf));
        if (n <= 0) {
            break;
        }
        g_string_append_len(out, buf, n);
    }
    close(q->errfd);

    do {
        ret = waitpid(q->pid, &status, WNOHANG);
        if (ret == 0) {
            g_usleep(10 * 1000);
        }
    } while (ret == 0 && g_get_monotonic_time() < deadline);
    if (ret == 0) {
        kill(q->pid, SIGKILL);
        waitpid(q->pid, &status, 0);
    }
    ivs_forget_pid(q->pid);
    g_free(q);
    g_test_message("QEMU stderr: %s", out->str);
    g_assert_cmpint(ret, !=, 0);            /* QEMU hung: the failure */
    g_assert_false(WIFSIGNALED(status));    /* no crash, no abort() */
    g_assert_true(WIFEXITED(status));
    if (err) {
        *err = g_string_free(out, false);
    } else {
        g_string_free(out, true);
    }
    return WEXITSTATUS(status);
}

int ivs_run_qemu(const char *args, int timeout_ms, char **err)
{
    return ivs_qemu_wait(ivs_qemu_spawn(args), timeout_ms, err);
}

void ivs_wait_listening(const char *path)
{
    int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;

    while (!ivs_socket_listening(path)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(2000);
    }
}

void ivs_assert_startup_fails(const char *args, ...)
{
    g_autofree char *err = NULL;
    const char *what;
    va_list ap;

    g_assert_cmpint(ivs_run_qemu(args, 60000, &err), ==, 1);
    va_start(ap, args);
    while ((what = va_arg(ap, const char *))) {
        if (!strstr(err, what)) {
            g_test_message("expected \"%s\" in QEMU's error output", what);
        }
        g_assert_nonnull(strstr(err, what));
    }
    va_end(ap);
}

void ivs_assert_error_contains(QDict *resp, const char *what)
{
    QDict *error = qdict_get_qdict(resp, "error");
    const char *desc;

    g_assert(error);
    desc = qdict_get_str(error, "desc");
    g_test_message("error: %s", desc);
    if (!strstr(desc, what)) {
        g_test_message("expected \"%s\" in the error", what);
    }
    g_assert_nonnull(strstr(desc, what));
}

QDict *ivs_device_add(QTestState *qts, const char *json)
{
    QDict *args = qobject_to(QDict, qobject_from_json(json, &error_abort));

    g_assert(args);
    if (!ivs_arch()->bus0_hotplug && !qdict_haskey(args, "bus")) {
        /* Below a PCIe port a device can only be device 0. */
        qdict_del(args, "addr");
        qdict_put_str(args, "bus", IVS_HOTPLUG_PORT);
    }
    return qtest_qmp(qts, "{'execute': 'device_add', 'arguments': %p}",
                     args);
}

void ivs_device_add_ok(QTestState *qts, const char *json)
{
    QDict *resp = ivs_device_add(qts, json);

    if (qdict_haskey(resp, "error")) {
        g_test_message("device_add failed: %s",
                       qdict_get_str(qdict_get_qdict(resp, "error"),
                                     "desc"));
    }
    g_assert_true(qdict_haskey(resp, "return"));
    qobject_unref(resp);
}

void ivs_device_add_fails(QTestState *qts, const char *json,
                          const char *what)
{
    QDict *resp = ivs_device_add(qts, json);

    ivs_assert_error_contains(resp, what);
    qobject_unref(resp);
}

/* ---- hot unplug ---- */

/* Whether device @id (of -device or device_add) exists in QOM. */
static bool ivs_device_exists(QTestState *qts, const char *id)
{
    g_autofree char *path = g_strdup_printf("/machine/peripheral/%s", id);
    QDict *resp = qtest_qmp(qts, "{'execute': 'qom-get', 'arguments': "
                            "{'path': %s, 'property': 'realized'}}", path);
    bool exists = qdict_haskey(resp, "return");

    qobject_unref(resp);
    return exists;
}

void ivs_wait_deleted(QTestState *qts, const char *id)
{
    int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;

    /*
     * qtest_qmp_eventwait_ref() would wait without a bound for an unplug
     * that never completes: poll the events each QMP round trip queues.
     */
    for (;;) {
        QDict *ev = qtest_qmp_event_ref(qts, "DEVICE_DELETED");
        QDict *data = ev ? qdict_get_qdict(ev, "data") : NULL;
        const char *dev = data ? qdict_get_try_str(data, "device") : NULL;
        bool done = dev && !strcmp(dev, id);

        qobject_unref(ev);
        if (done) {
            return;
        }
        if (!ev) {
            if (g_get_monotonic_time() > deadline) {
                g_test_message("no DEVICE_DELETED for %s within %d ms", id,
                               IVS_TIMEOUT_MS);
                g_assert_not_reached();
            }
            g_usleep(1000);
            ivs_assert_alive(qts);
        }
    }
}

/*
 * sPAPR dynamic reconfiguration (PAPR's DR, as QEMU's hw/ppc/spapr_drc.c
 * implements it): every slot of a PHB has a DRC whose index is the PCI
 * type (1 << 4) in bits 31..28, then the PHB's index, the bus's chassis
 * (0 for the PHB's own bus) and the devfn.  The default PHB has index 0.
 */
#define IVS_DRC_INDEX_PCI(slot) ((4u << 28) | (uint32_t)QPCI_DEVFN(slot, 0))
#define IVS_RTAS_ISOLATION_STATE    9001    /* set-indicator */
#define IVS_RTAS_DR_ENTITY_SENSE    9003    /* get-sensor-state */
#define IVS_DR_ISOLATED             0
#define IVS_DR_UNISOLATED           1
#define IVS_DR_ENTITY_PRESENT       1
#define IVS_DR_CC_SUCCESS           0       /* configure-connector */

/* Call RTAS @name with @args; its status (ret[0]) and more in @ret. */
static void ivs_rtas(QTestState *qts, QPCIBus *bus, const char *name,
                     int nargs, const uint32_t *args, int nret,
                     uint32_t *ret)
{
    QGuestAllocator *alloc = ivs_pci_bus_alloc(bus);
    uint64_t a = guest_alloc(alloc, nargs * 4);
    uint64_t r = guest_alloc(alloc, nret * 4);
    int i;

    for (i = 0; i < nargs; i++) {
        qtest_writel(qts, a + i * 4, args[i]);
    }
    qtest_rtas_call(qts, name, nargs, a, nret, r);
    for (i = 0; i < nret; i++) {
        ret[i] = qtest_readl(qts, r + i * 4);
    }
    guest_free(alloc, r);
    guest_free(alloc, a);
}

static void ivs_drc_set_isolation(QTestState *qts, QPCIBus *bus, int slot,
                                  uint32_t state)
{
    uint32_t args[3] = {
        IVS_RTAS_ISOLATION_STATE, IVS_DRC_INDEX_PCI(slot), state,
    };
    uint32_t ret[1];

    ivs_rtas(qts, bus, "set-indicator", 3, args, 1, ret);
    g_assert_cmpint((int32_t)ret[0], ==, 0);
}

/* Whether the DRC of @slot has a device (the DR entity sense). */
static bool ivs_drc_present(QTestState *qts, QPCIBus *bus, int slot)
{
    uint32_t args[2] = { IVS_RTAS_DR_ENTITY_SENSE, IVS_DRC_INDEX_PCI(slot) };
    uint32_t ret[2];

    ivs_rtas(qts, bus, "get-sensor-state", 2, args, 2, ret);
    g_assert_cmpint((int32_t)ret[0], ==, 0);
    return ret[1] == IVS_DR_ENTITY_PRESENT;
}

void ivs_hotplug_ack(QTestState *qts, QPCIBus *bus, int slot)
{
    QGuestAllocator *alloc;
    uint64_t wa;
    uint32_t args[2], ret[1];
    int i;

    if (!ivs_arch_is("ppc64")) {
        return;
    }
    alloc = ivs_pci_bus_alloc(bus);
    g_assert_true(ivs_drc_present(qts, bus, slot));
    ivs_drc_set_isolation(qts, bus, slot, IVS_DR_UNISOLATED);

    /*
     * configure-connector hands out the device's tree one node or
     * property per call, in a work area that starts with the DRC index,
     * until it says it is done; the device tree has a few dozen entries.
     */
    wa = guest_alloc(alloc, 4096);
    qtest_writel(qts, wa, IVS_DRC_INDEX_PCI(slot));
    args[0] = (uint32_t)wa;
    args[1] = wa >> 32;
    for (i = 0; i < 1000; i++) {
        ivs_rtas(qts, bus, "ibm,configure-connector", 2, args, 1, ret);
        g_assert_cmpint((int32_t)ret[0], >=, 0);
        if (ret[0] == IVS_DR_CC_SUCCESS) {
            break;
        }
    }
    g_assert_cmpint(ret[0], ==, IVS_DR_CC_SUCCESS);
    guest_free(alloc, wa);
}

/* IVS_HOTPLUG_PORT on aarch64: the bus and window behind it. */
#define IVS_PORT_SECONDARY      1
#define IVS_PORT_MMIO_BASE      0x20000000u
#define IVS_PORT_MMIO_LIMIT     0x2f000000u     /* virt's window: 0x2eff0000 */

QPCIBus *ivs_hotplug_bus(QTestState *qts, int *slot)
{
    QPCIBus *bus0 = ivs_pci_bus(qts);
    QGenericPCIBus *gbus;
    QPCIDevice *port;

    if (ivs_arch()->bus0_hotplug) {
        return bus0;
    }
    g_assert(ivs_arch_is("aarch64"));
    port = qpci_device_find(bus0, QPCI_DEVFN(IVS_HOTPLUG_PORT_SLOT, 0));
    g_assert(port);
    qpci_config_writeb(port, PCI_PRIMARY_BUS, 0);
    qpci_config_writeb(port, PCI_SECONDARY_BUS, IVS_PORT_SECONDARY);
    qpci_config_writeb(port, PCI_SUBORDINATE_BUS, IVS_PORT_SECONDARY);
    /* Bits 15..4 are address bits 31..20; the limit is inclusive. */
    qpci_config_writew(port, PCI_MEMORY_BASE, IVS_PORT_MMIO_BASE >> 16);
    qpci_config_writew(port, PCI_MEMORY_LIMIT,
                       (IVS_PORT_MMIO_LIMIT - 1) >> 16);
    /* No prefetchable window: the memory window takes every BAR. */
    qpci_config_writew(port, PCI_PREF_MEMORY_BASE, 0xfff0);
    qpci_config_writew(port, PCI_PREF_MEMORY_LIMIT, 0);
    qpci_config_writew(port, PCI_COMMAND,
                       qpci_config_readw(port, PCI_COMMAND) |
                       PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    g_free(port);
    ivs_port_slot_power(bus0, IVS_HOTPLUG_PORT_SLOT, true);

    /* ECAM: the bus number is address bits 27..20. */
    gbus = g_new0(QGenericPCIBus, 1);
    *gbus = *container_of(bus0, QGenericPCIBus, bus);
    gbus->ecam_alloc_ptr += (uint64_t)IVS_PORT_SECONDARY << 20;
    gbus->bus.mmio_alloc_ptr = IVS_PORT_MMIO_BASE;
    gbus->bus.mmio_limit = IVS_PORT_MMIO_LIMIT;
    ivs_pci_bus_free(bus0);
    /* Below a PCIe port there is only device 0. */
    *slot = 0;
    return &gbus->bus;
}

void ivs_unplug_bus0(QTestState *qts, QPCIBus *bus, const char *id,
                     int slot)
{
    g_assert_true(ivs_arch()->bus0_hotplug);
    if (ivs_arch_is("x86_64")) {
        /* device_del, then the guest's write to the PIIX4 eject register */
        qpci_unplug_acpi_device_test(qts, id, slot);
        return;
    }
    g_assert(ivs_arch_is("ppc64"));
    /*
     * The device is "configured" (plugged at startup, or hot plugged and
     * ivs_hotplug_ack()ed): device_del asks the guest and waits.  The
     * guest isolates the DRC, which completes the unplug.
     */
    qtest_qmp_device_del_send(qts, id);
    /* The DRC waits for the guest: the device is still there. */
    g_assert_true(ivs_drc_present(qts, bus, slot));
    g_assert_true(ivs_device_exists(qts, id));
    ivs_drc_set_isolation(qts, bus, slot, IVS_DR_ISOLATED);
    ivs_wait_deleted(qts, id);
    g_assert_false(ivs_drc_present(qts, bus, slot));
}

void ivs_port_slot_power(QPCIBus *bus, int port_slot, bool on)
{
    QPCIDevice *port = qpci_device_find(bus, QPCI_DEVFN(port_slot, 0));
    uint8_t exp;
    uint16_t ctl;

    g_assert(port);
    exp = qpci_find_capability(port, PCI_CAP_ID_EXP, 0);
    g_assert_cmpint(exp, !=, 0);
    ctl = qpci_config_readw(port, exp + PCI_EXP_SLTCTL);
    ctl &= ~(PCI_EXP_SLTCTL_PCC | PCI_EXP_SLTCTL_PIC);
    ctl |= on ? PCI_EXP_SLTCTL_PWR_ON | PCI_EXP_SLTCTL_PWR_IND_ON :
        PCI_EXP_SLTCTL_PWR_OFF | PCI_EXP_SLTCTL_PWR_IND_OFF;
    qpci_config_writew(port, exp + PCI_EXP_SLTCTL, ctl);
    g_free(port);
}

void ivs_unplug_root_port(QTestState *qts, QPCIBus *bus, const char *id,
                          int port_slot)
{
    g_assert_nonnull(ivs_pcie_machine());
    qtest_qmp_device_del_send(qts, id);
    if (ivs_arch_is("x86_64")) {
        /*
         * q35 hot plugs below its root ports through ACPI by default
         * (acpi-pci-hotplug-with-bridge-support), which ignores the slot
         * power; it completes an unplug in progress on reset.
         */
        qtest_system_reset_nowait(qts);
    } else {
        /* The port waits for the guest: the device is still there. */
        g_assert_true(ivs_device_exists(qts, id));
        ivs_port_slot_power(bus, port_slot, false);
    }
    ivs_wait_deleted(qts, id);
}

void ivs_unplug_unclaimed(QTestState *qts, const char *id)
{
    qtest_qmp_device_del_send(qts, id);
    if (ivs_arch_is("x86_64")) {
        /* q35's ACPI hot plug (see ivs_unplug_root_port()) */
        qtest_system_reset_nowait(qts);
    }
    ivs_wait_deleted(qts, id);
}

/* ---- the device ---- */

/*
 * Where messages cannot be read back from RAM, the MSI sink observes
 * them, one per bus object (each test has one per QEMU): a sink needs the
 * bus's PHB and allocator for its RTAS calls, so it lives as long as the
 * bus and no longer.
 */
typedef struct IvsSink {
    IvsMsi *msi;
    /*
     * libqos devfn -> bool[vectors]: taken from the sink but not yet
     * cleared, since the sink's take consumes and ivs_msix_fired() must
     * not.
     */
    GHashTable *seen;
} IvsSink;

static GHashTable *ivs_sinks;           /* QPCIBus * -> IvsSink * */

static bool ivs_msix_use_sink(void)
{
    return !ivs_arch()->msix_in_ram;
}

static void ivs_sink_free(gpointer p)
{
    IvsSink *sink = p;

    ivs_msi_free(sink->msi);
    g_hash_table_destroy(sink->seen);
    g_free(sink);
}

static IvsSink *ivs_sink_lookup(QPCIBus *bus)
{
    return ivs_sinks ? g_hash_table_lookup(ivs_sinks, bus) : NULL;
}

/* Called by ivs_pci_bus_free(): the sink uses the bus. */
static void ivs_sink_drop_bus(QPCIBus *bus)
{
    if (ivs_sinks) {
        g_hash_table_remove(ivs_sinks, bus);
    }
}

static void ivs_sink_forget(IvsDev *d)
{
    IvsSink *sink = ivs_sink_lookup(d->bus);

    if (sink) {
        ivs_msi_forget(sink->msi, d->pdev);
        g_hash_table_remove(sink->seen, GINT_TO_POINTER(d->pdev->devfn));
    }
}

/* The seen flags of @d, which must be routed to its bus's sink. */
static bool *ivs_sink_seen(IvsDev *d, IvsSink **sinkp)
{
    IvsSink *sink = ivs_sink_lookup(d->bus);
    bool *seen;

    g_assert(sink);
    seen = g_hash_table_lookup(sink->seen, GINT_TO_POINTER(d->pdev->devfn));
    /* A test that did not ivs_msix_setup() the device first. */
    g_assert(seen);
    *sinkp = sink;
    return seen;
}

static void ivs_sink_route(IvsDev *d)
{
    IvsSink *sink;
    const char *why;

    why = ivs_msi_unobservable(d->qts);
    if (why) {
        g_test_message("MSI-X messages cannot be observed: %s", why);
        g_assert_not_reached();
    }
    if (!ivs_sinks) {
        ivs_sinks = g_hash_table_new_full(NULL, NULL, NULL, ivs_sink_free);
    }
    sink = ivs_sink_lookup(d->bus);
    if (!sink) {
        sink = g_new0(IvsSink, 1);
        sink->msi = ivs_msi_new(d->qts, d->bus);
        sink->seen = g_hash_table_new_full(NULL, NULL, NULL, g_free);
        g_hash_table_insert(ivs_sinks, d->bus, sink);
    }
    /* Set up again (as after a reset): route it anew. */
    ivs_sink_forget(d);
    ivs_msi_route(sink->msi, d->pdev, d->vectors);
    g_hash_table_insert(sink->seen, GINT_TO_POINTER(d->pdev->devfn),
                        g_new0(bool, d->vectors));
}

/* The sPAPR bus makes RTAS calls with arguments in guest memory. */
typedef struct IvsSpaprBus {
    QPCIBusSPAPR spapr;
    QGuestAllocator alloc;
} IvsSpaprBus;

QPCIBus *ivs_pci_bus(QTestState *qts)
{
    if (ivs_arch_is("aarch64")) {
        QGenericPCIBus *gbus = g_new0(QGenericPCIBus, 1);

        qpci_init_generic(gbus, qts, NULL, true);
        return &gbus->bus;
    }
    if (ivs_arch_is("ppc64")) {
        IvsSpaprBus *sbus = g_new0(IvsSpaprBus, 1);

        spapr_alloc_init(&sbus->alloc, qts, ALLOC_NO_FLAGS);
        qpci_init_spapr(&sbus->spapr, qts, &sbus->alloc);
        return &sbus->spapr.bus;
    }
    g_assert(ivs_arch_is("x86_64"));
    return qpci_new_pc(qts, NULL);
}

QGuestAllocator *ivs_pci_bus_alloc(QPCIBus *bus)
{
    if (ivs_arch_is("ppc64")) {
        QPCIBusSPAPR *spapr = container_of(bus, QPCIBusSPAPR, bus);

        return &container_of(spapr, IvsSpaprBus, spapr)->alloc;
    }
    return NULL;
}

void ivs_pci_bus_free(QPCIBus *bus)
{
    if (!bus) {
        return;
    }
    ivs_sink_drop_bus(bus);
    if (ivs_arch_is("aarch64")) {
        g_free(container_of(bus, QGenericPCIBus, bus));
    } else if (ivs_arch_is("ppc64")) {
        QPCIBusSPAPR *spapr = container_of(bus, QPCIBusSPAPR, bus);
        IvsSpaprBus *sbus = container_of(spapr, IvsSpaprBus, spapr);

        alloc_destroy(&sbus->alloc);
        g_free(sbus);
    } else {
        qpci_free_pc(bus);
    }
}

IvsDev *ivs_dev_open(QTestState *qts, QPCIBus *bus, int slot)
{
    IvsDev *d = g_new0(IvsDev, 1);
    uint8_t cap;

    d->qts = qts;
    d->bus = bus;
    d->slot = slot;
    d->pdev = qpci_device_find(bus, QPCI_DEVFN(slot, 0));
    g_assert(d->pdev);
    g_assert_cmphex(qpci_config_readw(d->pdev, PCI_VENDOR_ID), ==,
                    IVSHMEM_PCI_VENDOR_ID);
    g_assert_cmphex(qpci_config_readw(d->pdev, PCI_DEVICE_ID), ==,
                    IVSHMEM_PCI_DEVICE_ID);
    qpci_device_enable(d->pdev);
    d->regs = qpci_iomap(d->pdev, IVSHMEM_REG_BAR, &d->regs_size);
    d->shm = qpci_iomap(d->pdev, IVSHMEM_SHM_BAR, &d->shm_size);
    cap = qpci_find_capability(d->pdev, PCI_CAP_ID_MSIX, 0);
    d->vectors = cap ? qpci_msix_table_size(d->pdev) : 0;
    return d;
}

void ivs_dev_close(IvsDev *d)
{
    if (d) {
        ivs_sink_forget(d);
        g_free(d->pdev);
        g_free(d);
    }
}

/* Size a BAR the way firmware does; its old value is restored. */
static uint64_t ivs_bar_size(QPCIDevice *pdev, int bar, uint32_t *flags)
{
    uint8_t reg = PCI_BASE_ADDRESS_0 + bar * 4;
    uint32_t lo = qpci_config_readl(pdev, reg);
    uint32_t hi = 0, size_lo, size_hi = 0xffffffff;
    uint16_t cmd = qpci_config_readw(pdev, PCI_COMMAND);
    bool is64 = (lo & PCI_BASE_ADDRESS_SPACE) ==
        PCI_BASE_ADDRESS_SPACE_MEMORY &&
        (lo & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64;
    uint64_t mask;

    *flags = lo & ~PCI_BASE_ADDRESS_MEM_MASK;
    qpci_config_writew(pdev, PCI_COMMAND,
                       cmd & ~(PCI_COMMAND_MEMORY | PCI_COMMAND_IO));
    qpci_config_writel(pdev, reg, 0xffffffff);
    size_lo = qpci_config_readl(pdev, reg);
    qpci_config_writel(pdev, reg, lo);
    if (is64) {
        hi = qpci_config_readl(pdev, reg + 4);
        qpci_config_writel(pdev, reg + 4, 0xffffffff);
        size_hi = qpci_config_readl(pdev, reg + 4);
        qpci_config_writel(pdev, reg + 4, hi);
    }
    qpci_config_writew(pdev, PCI_COMMAND, cmd);

    if ((size_lo & ~0xfu) == 0 && (!is64 || size_hi == 0)) {
        return 0;               /* not implemented */
    }
    mask = ((uint64_t)size_hi << 32) | (size_lo & PCI_BASE_ADDRESS_MEM_MASK);
    return ~mask + 1;
}

void ivs_assert_identity(IvsDev *d, uint64_t shm_size, int vectors)
{
    QPCIDevice *pdev = d->pdev;
    uint32_t flags;
    uint8_t cap;

    g_assert_cmphex(qpci_config_readw(pdev, PCI_VENDOR_ID), ==, 0x1af4);
    g_assert_cmphex(qpci_config_readw(pdev, PCI_DEVICE_ID), ==, 0x1110);
    g_assert_cmphex(qpci_config_readb(pdev, PCI_REVISION_ID), ==, 1);
    g_assert_cmphex(qpci_config_readw(pdev, PCI_SUBSYSTEM_VENDOR_ID), ==,
                    IVS_SUBSYS_VENDOR_ID);
    g_assert_cmphex(qpci_config_readw(pdev, PCI_SUBSYSTEM_ID), ==,
                    IVS_SUBSYS_ID);
    g_assert_cmphex(qpci_config_readw(pdev, PCI_CLASS_DEVICE), ==, 0x0500);
    g_assert_cmphex(qpci_config_readb(pdev, PCI_CLASS_PROG), ==, 0);
    g_assert_cmphex(qpci_config_readb(pdev, PCI_HEADER_TYPE) & 0x7f, ==,
                    PCI_HEADER_TYPE_NORMAL);

    /* BAR0: 256 bytes of 32-bit, non-prefetchable MMIO. */
    g_assert_cmphex(ivs_bar_size(pdev, 0, &flags), ==, 0x100);
    g_assert_cmphex(flags & PCI_BASE_ADDRESS_SPACE, ==,
                    PCI_BASE_ADDRESS_SPACE_MEMORY);
    g_assert_cmphex(flags & PCI_BASE_ADDRESS_MEM_TYPE_MASK, ==,
                    PCI_BASE_ADDRESS_MEM_TYPE_32);
    g_assert_cmphex(flags & PCI_BASE_ADDRESS_MEM_PREFETCH, ==, 0);

    /* BAR2: the shared memory, 64-bit prefetchable. */
    g_assert_cmphex(ivs_bar_size(pdev, 2, &flags), ==, shm_size);
    g_assert_cmphex(flags & PCI_BASE_ADDRESS_SPACE, ==,
                    PCI_BASE_ADDRESS_SPACE_MEMORY);
    g_assert_cmphex(flags & PCI_BASE_ADDRESS_MEM_TYPE_MASK, ==,
                    PCI_BASE_ADDRESS_MEM_TYPE_64);
    g_assert_cmphex(flags & PCI_BASE_ADDRESS_MEM_PREFETCH, ==,
                    PCI_BASE_ADDRESS_MEM_PREFETCH);

    /* Nothing else: BAR4/BAR5 unused. */
    g_assert_cmphex(ivs_bar_size(pdev, 4, &flags), ==, 0);
    g_assert_cmphex(ivs_bar_size(pdev, 5, &flags), ==, 0);

    cap = qpci_find_capability(pdev, PCI_CAP_ID_MSIX, 0);
    if (vectors) {
        g_assert_cmphex(cap, !=, 0);
        g_assert_cmpint(qpci_msix_table_size(pdev), ==, vectors);
        /* Table and PBA both live in BAR1. */
        g_assert_cmphex(qpci_config_readl(pdev, cap + PCI_MSIX_TABLE) &
                        PCI_MSIX_FLAGS_BIRMASK, ==, IVSHMEM_MSIX_BAR);
        g_assert_cmphex(qpci_config_readl(pdev, cap + PCI_MSIX_PBA) &
                        PCI_MSIX_FLAGS_BIRMASK, ==, IVSHMEM_MSIX_BAR);
        g_assert_cmphex(ivs_bar_size(pdev, 1, &flags), !=, 0);
        g_assert_cmphex(flags & PCI_BASE_ADDRESS_SPACE, ==,
                        PCI_BASE_ADDRESS_SPACE_MEMORY);
        /* MSI-X only: no INTx. */
        g_assert_cmphex(qpci_config_readb(pdev, PCI_INTERRUPT_PIN), ==, 0);
    } else {
        g_assert_cmphex(cap, ==, 0);
        g_assert_cmphex(qpci_find_capability(pdev, PCI_CAP_ID_MSI, 0), ==, 0);
        g_assert_cmphex(qpci_config_readb(pdev, PCI_INTERRUPT_PIN), ==, 0);
        g_assert_cmphex(ivs_bar_size(pdev, 1, &flags), ==, 0);
    }
}

uint32_t ivs_reg_read(IvsDev *d, uint32_t offset)
{
    return qpci_io_readl(d->pdev, d->regs, offset);
}

void ivs_reg_write(IvsDev *d, uint32_t offset, uint32_t value)
{
    qpci_io_writel(d->pdev, d->regs, offset, value);
}

void ivs_doorbell(IvsDev *d, uint16_t peer, uint16_t vector)
{
    ivs_reg_write(d, IVSHMEM_REG_DOORBELL, IVS_DOORBELL(peer, vector));
}

uint64_t ivs_msix_addr(IvsDev *d, int vector)
{
    return IVS_MSIX_RAM + d->slot * 0x1000 + vector * 4;
}

static uint64_t ivs_msix_entry(IvsDev *d, int vector)
{
    return d->pdev->msix_table_off + vector * PCI_MSIX_ENTRY_SIZE;
}

void ivs_msix_mask(IvsDev *d, int vector, bool masked)
{
    uint64_t ctrl = ivs_msix_entry(d, vector) + PCI_MSIX_ENTRY_VECTOR_CTRL;
    uint32_t val = qpci_io_readl(d->pdev, d->pdev->msix_table_bar, ctrl);

    if (masked) {
        val |= PCI_MSIX_ENTRY_CTRL_MASKBIT;
    } else {
        val &= ~PCI_MSIX_ENTRY_CTRL_MASKBIT;
    }
    qpci_io_writel(d->pdev, d->pdev->msix_table_bar, ctrl, val);
}

bool ivs_msix_messages_seen(void)
{
    /* Read back from RAM, or through the sink, which covers the rest. */
    return ivs_arch()->msix_in_ram || ivs_msix_use_sink();
}

bool ivs_require_msix_messages(void)
{
    if (!ivs_msix_messages_seen()) {
        g_test_skip("this case observes MSI-X messages, which cannot be "
                    "seen on this target");
        return false;
    }
    return true;
}

void ivs_msix_clear(IvsDev *d)
{
    int i;

    if (ivs_msix_use_sink()) {
        IvsSink *sink;
        bool *seen;

        /* Nothing to clear before the device is routed. */
        if (!d->msix_ready) {
            return;
        }
        seen = ivs_sink_seen(d, &sink);
        for (i = 0; i < d->vectors; i++) {
            ivs_msi_take(sink->msi, d->pdev, i);
            seen[i] = false;
        }
        return;
    }
    for (i = 0; i < d->vectors; i++) {
        qtest_writel(d->qts, ivs_msix_addr(d, i), 0);
    }
}

void ivs_msix_setup(IvsDev *d)
{
    int i;

    g_assert_cmpint(d->vectors, >, 0);
    if (ivs_msix_use_sink()) {
        /* The sink enables MSI-X, programs and unmasks every entry. */
        ivs_sink_route(d);
        d->msix_ready = true;
        return;
    }
    if (!d->pdev->msix_enabled) {
        qpci_msix_enable(d->pdev);
    }
    ivs_msix_clear(d);
    for (i = 0; i < d->vectors; i++) {
        uint64_t e = ivs_msix_entry(d, i);
        uint64_t addr = ivs_msix_addr(d, i);

        qpci_io_writel(d->pdev, d->pdev->msix_table_bar,
                       e + PCI_MSIX_ENTRY_LOWER_ADDR, (uint32_t)addr);
        qpci_io_writel(d->pdev, d->pdev->msix_table_bar,
                       e + PCI_MSIX_ENTRY_UPPER_ADDR, addr >> 32);
        qpci_io_writel(d->pdev, d->pdev->msix_table_bar,
                       e + PCI_MSIX_ENTRY_DATA, IVS_MSIX_DATA(d->slot, i));
        ivs_msix_mask(d, i, false);
        g_assert_false(qpci_msix_masked(d->pdev, i));
    }
    d->msix_ready = true;
}

bool ivs_msix_pending(IvsDev *d, int vector)
{
    return qpci_msix_pending(d->pdev, vector);
}

bool ivs_msix_fired(IvsDev *d, int vector)
{
    uint32_t v;

    /* A test that did not ask ivs_require_msix_messages() first. */
    g_assert_true(ivs_msix_messages_seen());
    g_assert_cmpint(vector, >=, 0);
    g_assert_cmpint(vector, <, d->vectors);
    if (ivs_msix_use_sink()) {
        IvsSink *sink;
        bool *seen = ivs_sink_seen(d, &sink);

        if (!seen[vector]) {
            seen[vector] = ivs_msi_take(sink->msi, d->pdev, vector);
        }
        return seen[vector];
    }
    v = qtest_readl(d->qts, ivs_msix_addr(d, vector));

    if (v == 0) {
        return false;
    }
    /* Anything but our data is a message with the wrong data. */
    g_assert_cmphex(v, ==, IVS_MSIX_DATA(d->slot, vector));
    return true;
}

void ivs_msix_wait(IvsDev *d, int vector)
{
    int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;

    g_assert_true(d->msix_ready);
    while (!ivs_msix_fired(d, vector)) {
        if (g_get_monotonic_time() > deadline) {
            g_test_message("no MSI-X message on vector %d of slot %d "
                           "within %d ms", vector, d->slot, IVS_TIMEOUT_MS);
            g_assert_not_reached();
        }
        g_usleep(1000);
    }
    if (ivs_msix_use_sink()) {
        IvsSink *sink;

        /* ivs_msix_fired() took it from the sink already. */
        ivs_sink_seen(d, &sink)[vector] = false;
        return;
    }
    qtest_writel(d->qts, ivs_msix_addr(d, vector), 0);
}

void ivs_msix_assert_quiet(IvsDev *d)
{
    int i;

    for (i = 0; i < d->vectors; i++) {
        if (ivs_msix_fired(d, i)) {
            g_test_message("unexpected MSI-X message on vector %d of "
                           "slot %d", i, d->slot);
        }
        g_assert_false(ivs_msix_fired(d, i));
    }
}

void ivs_msix_wait_pending(IvsDev *d, int vector)
{
    int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;

    while (!ivs_msix_pending(d, vector)) {
        if (g_get_monotonic_time() > deadline) {
            g_test_message("PBA bit %d of slot %d not set within %d ms",
                           vector, d->slot, IVS_TIMEOUT_MS);
            g_assert_not_reached();
        }
        g_usleep(1000);
    }
}

/* ---- eventfds ---- */

uint64_t ivs_eventfd_take(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    uint64_t v = 0;
    ssize_t n;

    /*
     * Poll first: O_NONBLOCK belongs to the open file, which QEMU shares
     * and may have made blocking.
     */
    if (poll(&pfd, 1, 0) == 0) {
        return 0;
    }
    n = read(fd, &v, sizeof(v));
    if (n < 0) {
        g_assert_cmpint(errno, ==, EAGAIN);
        return 0;
    }
    g_assert_cmpint(n, ==, sizeof(v));
    return v;
}

uint64_t ivs_eventfd_wait(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int ret = poll(&pfd, 1, IVS_TIMEOUT_MS);

    g_assert_cmpint(ret, ==, 1);
    return ivs_eventfd_take(fd);
}

void ivs_eventfd_signal(int fd)
{
    uint64_t one = 1;

    g_assert_cmpint(write(fd, &one, sizeof(one)), ==, sizeof(one));
}

/* ---- the scripted fake server ---- */

typedef struct IvsFakeStep {
    bool close;
    int64_t value;
    int fd;                     /* -1: none; owned by the fake */
    GByteArray *raw;            /* raw bytes instead of a message */
} IvsFakeStep;

struct IvsFake {
    char *path;
    int listen_fd;
    int stop_fd;                /* eventfd: wakes the thread for free() */
    int conn_fd;
    int shm_fd;
    int null_fd;
    GArray *steps;
    GHashTable *eventfds;       /* ID -> GArray of int */
    GThread *thread;
    GMutex lock;
    GCond cond;
    bool played;
    char *failure;              /* set by the thread */
};

IvsFake *ivs_fake_new(uint64_t shm_size)
{
    IvsFake *f = g_new0(IvsFake, 1);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    f->path = ivs_socket_path("fake.sock");
    f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(f->listen_fd, >=, 0);
    pstrcpy(addr.sun_path, sizeof(addr.sun_path), f->path);
    g_assert_cmpint(bind(f->listen_fd, (struct sockaddr *)&addr,
                         sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(f->listen_fd, 4), ==, 0);
    f->stop_fd = eventfd(0, EFD_CLOEXEC);
    g_assert_cmpint(f->stop_fd, >=, 0);
    f->conn_fd = -1;
    f->shm_fd = memfd_create("ivshmem-qtest-fake", MFD_CLOEXEC);
    g_assert_cmpint(f->shm_fd, >=, 0);
    g_assert_cmpint(ftruncate(f->shm_fd, shm_size), ==, 0);
    f->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    g_assert_cmpint(f->null_fd, >=, 0);
    f->steps = g_array_new(false, true, sizeof(IvsFakeStep));
    f->eventfds = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_mutex_init(&f->lock);
    g_cond_init(&f->cond);
    return f;
}

const char *ivs_fake_socket(IvsFake *f)
{
    return f->path;
}

int ivs_fake_shm_fd(IvsFake *f)
{
    return f->shm_fd;
}

/* Remember eventfd @fd as the next vector of @value; the fake owns it. */
static int ivs_fake_keep_eventfd(IvsFake *f, int64_t value, int fd)
{
    GArray *fds = g_hash_table_lookup(f->eventfds,
                                      GINT_TO_POINTER((int)value));

    if (!fds) {
        fds = g_array_new(false, false, sizeof(int));
        g_hash_table_insert(f->eventfds, GINT_TO_POINTER((int)value), fds);
    }
    g_array_append_val(fds, fd);
    return fd;
}

/* The fd to send for @kind; eventfds are remembered under @value. */
static int ivs_fake_fd(IvsFake *f, int64_t value, IvsFdKind kind)
{
    int fd;

    switch (kind) {
    case IVS_FD_NONE:
        return -1;
    case IVS_FD_SHM:
        return f->shm_fd;
    case IVS_FD_OTHER:
        return f->null_fd;
    case IVS_FD_EVENTFD:
    case IVS_FD_EVENTFD_BLOCKING:
        fd = eventfd(0, EFD_CLOEXEC |
                     (kind == IVS_FD_EVENTFD ? EFD_NONBLOCK : 0));
        g_assert_cmpint(fd, >=, 0);
        return ivs_fake_keep_eventfd(f, value, fd);
    }
    g_assert_not_reached();
}

void ivs_fake_push(IvsFake *f, int64_t value, IvsFdKind kind)
{
    IvsFakeStep step = { .value = value };

    g_assert_null(f->thread);
    step.fd = ivs_fake_fd(f, value, kind);
    g_array_append_val(f->steps, step);
}

void ivs_fake_push_dup(IvsFake *f, int64_t value, int fd)
{
    IvsFakeStep step = { .value = value };

    g_assert_null(f->thread);
    step.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    g_assert_cmpint(step.fd, >=, 0);
    ivs_fake_keep_eventfd(f, value, step.fd);
    g_array_append_val(f->steps, step);
}

void ivs_fake_push_raw(IvsFake *f, const void *buf, size_t len)
{
    IvsFakeStep step = { .fd = -1, .raw = g_byte_array_new() };

    g_assert_null(f->thread);
    g_byte_array_append(step.raw, buf, len);
    g_array_append_val(f->steps, step);
}

void ivs_fake_push_close(IvsFake *f)
{
    IvsFakeStep step = { .fd = -1, .close = true };

    g_assert_null(f->thread);
    g_array_append_val(f->steps, step);
}

void ivs_fake_push_handshake(IvsFake *f, int own_id, const int *peers,
                             int npeers, int vectors)
{
    int i, v;

    ivs_fake_push(f, IVSHMEM_PROTOCOL_VERSION, IVS_FD_NONE);
    ivs_fake_push(f, own_id, IVS_FD_NONE);
    ivs_fake_push(f, IVSHMEM_MSG_SHM, IVS_FD_SHM);
    for (i = 0; i < npeers; i++) {
        for (v = 0; v < vectors; v++) {
            ivs_fake_push(f, peers[i], IVS_FD_EVENTFD);
        }
    }
    for (v = 0; v < vectors; v++) {
        ivs_fake_push(f, own_id, IVS_FD_EVENTFD);
    }
}

/* Send one message; returns false (errno set) if the client is gone. */
static bool ivs_fake_sendmsg(int sock, int64_t value, int fd)
{
    uint64_t le = cpu_to_le64((uint64_t)value);
    struct iovec iov = { .iov_base = &le, .iov_len = sizeof(le) };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n;

    if (fd >= 0) {
        struct cmsghdr *cmsg;

        memset(&control, 0, sizeof(control));
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof(control.buf);
        cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    }
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == sizeof(le);
}

static bool ivs_fake_sendraw(int sock, const void *buf, size_t len)
{
    ssize_t n;

    do {
        n = send(sock, buf, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == len;
}

static void ivs_fake_fail(IvsFake *f, const char *what)
{
    g_mutex_lock(&f->lock);
    if (!f->failure) {
        f->failure = g_strdup_printf("%s: %s", what, g_strerror(errno));
    }
    g_mutex_unlock(&f->lock);
}

static gpointer ivs_fake_thread(gpointer opaque)
{
    IvsFake *f = opaque;
    struct pollfd pfd[2] = {
        { .fd = f->listen_fd, .events = POLLIN },
        { .fd = f->stop_fd, .events = POLLIN },
    };
    guint i;
    int conn;

    /* Clients connect during QEMU's startup: allow for a slow host. */
    if (poll(pfd, 2, 60000) <= 0 || !(pfd[0].revents & POLLIN)) {
        ivs_fake_fail(f, "no client connected");
        goto out;
    }
    conn = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) {
        ivs_fake_fail(f, "accept");
        goto out;
    }
    g_mutex_lock(&f->lock);
    f->conn_fd = conn;
    g_mutex_unlock(&f->lock);

    for (i = 0; i < f->steps->len; i++) {
        IvsFakeStep *step = &g_array_index(f->steps, IvsFakeStep, i);
        bool ok;

        if (step->close) {
            /*
             * Close only once the client has read everything: an ivshmem
             * client reads the handshake in realize, so this closes the
             * connection under a realize in progress, not before it.
             */
            int64_t deadline = g_get_monotonic_time() +
                IVS_TIMEOUT_MS * 1000LL;
            int queued = 0;

            while (ioctl(conn, SIOCOUTQ, &queued) == 0 && queued > 0 &&
                   g_get_monotonic_time() < deadline &&
                   poll(&pfd[1], 1, 1) == 0) {
                /* poll() above waits 1 ms or until free() */
            }
            g_mutex_lock(&f->lock);
            close(f->conn_fd);
            f->conn_fd = -1;
            g_mutex_unlock(&f->lock);
            break;
        }
        if (step->raw) {
            ok = ivs_fake_sendraw(conn, step->raw->data, step->raw->len);
        } else {
            ok = ivs_fake_sendmsg(conn, step->value, step->fd);
        }
        if (!ok) {
            /* The client may legitimately hang up on garbage. */
            break;
        }
    }

out:
    g_mutex_lock(&f->lock);
    f->played = true;
    g_cond_broadcast(&f->cond);
    g_mutex_unlock(&f->lock);
    return NULL;
}

void ivs_fake_start(IvsFake *f)
{
    g_assert_null(f->thread);
    f->thread = g_thread_new("ivshmem-fake-server", ivs_fake_thread, f);
}

void ivs_fake_wait_played(IvsFake *f)
{
    int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;

    g_mutex_lock(&f->lock);
    while (!f->played) {
        if (!g_cond_wait_until(&f->cond, &f->lock, deadline)) {
            break;
        }
    }
    g_mutex_unlock(&f->lock);
    g_assert_true(f->played);
    if (f->failure) {
        g_test_message("fake server: %s", f->failure);
    }
    g_assert_null(f->failure);
}

void ivs_fake_send(IvsFake *f, int64_t value, IvsFdKind kind)
{
    ivs_fake_wait_played(f);
    g_assert_cmpint(f->conn_fd, >=, 0);
    g_assert_true(ivs_fake_sendmsg(f->conn_fd, value,
                                   ivs_fake_fd(f, value, kind)));
}

void ivs_fake_send_raw(IvsFake *f, const void *buf, size_t len)
{
    ivs_fake_wait_played(f);
    g_assert_cmpint(f->conn_fd, >=, 0);
    g_assert_true(ivs_fake_sendraw(f->conn_fd, buf, len));
}

int ivs_fake_eventfd(IvsFake *f, int id, int vector)
{
    GArray *fds = g_hash_table_lookup(f->eventfds, GINT_TO_POINTER(id));

    g_assert(fds);
    g_assert_cmpint(vector, <, fds->len);
    return g_array_index(fds, int, vector);
}

bool ivs_fake_client_closed(IvsFake *f, int timeout_ms)
{
    int64_t deadline = g_get_monotonic_time() + timeout_ms * 1000LL;

    ivs_fake_wait_played(f);
    if (f->conn_fd < 0) {
        return true;
    }
    for (;;) {
        struct pollfd pfd = { .fd = f->conn_fd, .events = POLLIN };
        int64_t left = (deadline - g_get_monotonic_time()) / 1000;
        char c;

        if (poll(&pfd, 1, MAX(left, 0)) <= 0) {
            return false;
        }
        if (recv(f->conn_fd, &c, 1, MSG_DONTWAIT) <= 0) {
            return true;
        }
        /* Clients never send; ignore whatever it was. */
    }
}

static void ivs_fake_free_fds(gpointer key, gpointer value, gpointer opaque)
{
    GArray *fds = value;
    guint i;

    for (i = 0; i < fds->len; i++) {
        close(g_array_index(fds, int, i));
    }
    g_array_free(fds, true);
}

void ivs_fake_free(IvsFake *f)
{
    guint i;

    if (!f) {
        return;
    }
    if (f->thread) {
        ivs_eventfd_signal(f->stop_fd);
        g_thread_join(f->thread);
    }
    if (f->conn_fd >= 0) {
        close(f->conn_fd);
    }
    close(f->listen_fd);
    close(f->stop_fd);
    close(f->shm_fd);
    close(f->null_fd);
    for (i = 0; i < f->steps->len; i++) {
        IvsFakeStep *step = &g_array_index(f->steps, IvsFakeStep, i);

        if (step->raw) {
            g_byte_array_unref(step->raw);
        }
    }
    g_array_free(f->steps, true);
    g_hash_table_foreach(f->eventfds, ivs_fake_free_fds, NULL);
    g_hash_table_destroy(f->eventfds);
    g_mutex_clear(&f->lock);
    g_cond_clear(&f->cond);
    ivs_remove_path(f->path);
    g_free(f->path);
    g_free(f->failure);
    g_free(f);
}

void ivs_wait_fd_count(QTestState *qts, int expected)
{
    int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;
    int n;

    /* Some fds are closed from an RCU callback: poll. */
    while ((n = ivs_count_fds(qts)) != expected) {
        if (g_get_monotonic_time() > deadline) {
            g_test_message("QEMU has %d fds open, expected %d:", n, expected);
            ivs_log_fds(qts);
            g_assert_cmpint(n, ==, expected);
        }
        g_usleep(2000);
    }
}

/* ---- the real ivshmem-server ---- */

/* Whether a unix socket bound to @path is listening (/proc/net/unix). */
bool ivs_socket_listening(const char *path)
{
    g_autofree char *table = NULL;
    g_auto(GStrv) lines = NULL;
    int i;

    if (!g_file_get_contents("/proc/net/unix", &table, NULL, NULL)) {
        return false;
    }
    lines = g_strsplit(table, "\n", -1);
    for (i = 0; lines[i]; i++) {
        g_auto(GStrv) f = g_strsplit_set(lines[i], " ", -1);
        int n = 0, j;
        const char *flags = NULL, *name = NULL;

        /* Num RefCount Protocol Flags Type St Inode Path */
        for (j = 0; f[j]; j++) {
            if (!*f[j]) {
                continue;
            }
            if (n == 3) {
                flags = f[j];
            } else if (n == 7) {
                name = f[j];
            }
            n++;
        }
        if (name && flags && !strcmp(name, path)) {
            unsigned long val;

            /* __SO_ACCEPTCON: the socket is listening */
            if (!qemu_strtoul(flags, NULL, 16, &val) && (val & 0x10000)) {
                return true;
            }
        }
    }
    return false;
}

IvsServer *ivs_server_start(const char *args)
{
    const char *bin = g_getenv("IVSHMEM_SERVER") ?:
        "./contrib/ivshmem-server/ivshmem-server";
    IvsServer *s;
    g_autofree char *cmd = NULL;
    g_auto(GStrv) argv = NULL;
    g_autoptr(GError) error = NULL;
    int64_t deadline;
    int logfd, status;
    GPid pid;

    if (access(bin, X_OK)) {
        g_test_skip("no ivshmem-server binary (set IVSHMEM_SERVER)");
        return NULL;
    }
    s = g_new0(IvsServer, 1);
    s->socket = ivs_socket_path("server.sock");
    s->log = ivs_socket_path("server.log");
    cmd = g_strdup_printf("%s -S %s %s", bin, s->socket, args);
    g_test_message("starting server: %s", cmd);
    g_assert_true(g_shell_parse_argv(cmd, NULL, &argv, &error));
    logfd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    g_assert_cmpint(logfd, >=, 0);
    g_assert_true(g_spawn_async_with_fds(NULL, argv, NULL,
                                         G_SPAWN_DO_NOT_REAP_CHILD,
                                         ivs_child_setup, NULL, &pid,
                                         -1, logfd, logfd, &error));
    close(logfd);
    s->pid = pid;
    ivs_cleanup_pid(pid);

    deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;
    while (!ivs_socket_listening(s->socket)) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            g_autofree char *log = NULL;

            g_file_get_contents(s->log, &log, NULL, NULL);
            g_test_message("ivshmem-server exited: %s", log);
            ivs_forget_pid(s->pid);
            s->pid = 0;
            g_assert_not_reached();
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(2000);
    }
    return s;
}

void ivs_server_stop(IvsServer *s)
{
    int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;
    int status;
    pid_t ret = 0;

    if (!s) {
        return;
    }
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        while ((ret = waitpid(s->pid, &status, WNOHANG)) == 0 &&
               g_get_monotonic_time() < deadline) {
            g_usleep(2000);
        }
        if (ret == 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
        }
        ivs_forget_pid(s->pid);
    }
    ivs_remove_path(s->socket);
    ivs_remove_path(s->log);
    g_free(s->socket);
    g_free(s->log);
    g_free(s);
    /* A server that had to be killed did not stop on SIGTERM. */
    g_assert_cmpint(ret, !=, 0);
}

/* ---- migration ---- */

void ivs_wait_status(QTestState *qts, const char *status)
{
    int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;

    for (;;) {
        QDict *resp = qtest_qmp(qts, "{'execute': 'query-status'}");
        QDict *ret = qdict_get_qdict(resp, "return");
        bool done;

        g_assert(ret);
        done = !strcmp(qdict_get_str(ret, "status"), status);
        qobject_unref(resp);
        if (done) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(2000);
    }
}

bool ivs_migrate(QTestState *from, QTestState *to, char **err)
{
    g_autofree char *path = ivs_socket_path("migrate.sock");
    g_autofree char *uri = g_strdup_printf("unix:%s", path);
    int64_t deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    bool ok = false;

    qtest_qmp_assert_success(to, "{'execute': 'migrate-incoming', "
                             "'arguments': {'uri': %s}}", uri);
    qtest_qmp_assert_success(from, "{'execute': 'migrate', "
                             "'arguments': {'uri': %s}}", uri);
    for (;;) {
        QDict *resp = qtest_qmp(from, "{'execute': 'query-migrate'}");
        QDict *ret = qdict_get_qdict(resp, "return");
        const char *status;

        g_assert(ret);
        status = qdict_get_try_str(ret, "status");
        if (status && !strcmp(status, "completed")) {
            ok = true;
            qobject_unref(resp);
            break;
        }
        if (status && !strcmp(status, "failed")) {
            const char *desc = qdict_get_try_str(ret, "error-desc");

            g_test_message("migration failed: %s", desc ?: "(no error)");
            if (err) {
                *err = g_strdup(desc ?: "");
            }
            qobject_unref(resp);
            break;
        }
        qobject_unref(resp);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(5000);
    }
    ivs_remove_path(path);
    return ok;
}
