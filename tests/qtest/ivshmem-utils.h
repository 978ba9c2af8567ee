/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers shared by the ivshmem qtests: starting QEMU with ivshmem
 * devices, reaching their BARs and MSI-X vectors through libqos, a
 * scripted fake ivshmem server that runs in a thread of the test, the real
 * ivshmem-server as a child process, and cleanup that also runs when an
 * assertion aborts the test.
 */

#ifndef TESTS_QTEST_IVSHMEM_UTILS_H
#define TESTS_QTEST_IVSHMEM_UTILS_H

#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/libqos-malloc.h"
#include "hw/misc/ivshmem.h"
#include "hw/pci/pci_regs.h"
#include "qemu/units.h"

/*
 * The DOORBELL value for (@peer, @vector), spelled out from the ABI
 * rather than taken from the device's header.
 */
#define IVS_DOORBELL(peer, vector) \
    ((((uint32_t)(peer) & 0xffff) << 16) | ((uint32_t)(vector) & 0xffff))

/* The subsystem IDs the devices inherit from the PCI core. */
#define IVS_SUBSYS_VENDOR_ID    0x1af4
#define IVS_SUBSYS_ID           0x1100

/*
 * Guest RAM where MSI-X messages land: vector N of the device in slot S
 * writes its data to IVS_MSIX_RAM + S * 0x1000 + N * 4.  2 MiB into the
 * target's RAM: nothing (firmware, the DTB at the start of aarch64 virt's
 * RAM) is there under qtest.
 */
#define IVS_MSIX_RAM            (ivs_arch()->ram_base + 0x200000ULL)
#define IVS_MSIX_DATA(slot, vector) \
    (0x5a000000u | ((uint32_t)(slot) << 16) | (uint32_t)(vector))

/* How long to poll for something that must happen. */
#define IVS_TIMEOUT_MS          10000

/* ---- the target's machine ---- */

/*
 * What the tests need to know about the target they run for, chosen by
 * qtest_get_arch(): x86_64 runs on pc (and q35), aarch64 on virt, ppc64 on
 * pseries.  Tests ask for "the default machine" or "a machine with PCIe
 * root ports" and leave the names to this.
 */
typedef struct IvsArch {
    const char *arch;           /* as qtest_get_arch() says */
    /* -machine (and -cpu) of the default machine */
    const char *machine;
    /* the same for a machine with pcie-root-port, or NULL */
    const char *pcie_machine;
    /* -m for a VM that migrates: small, but what the machine accepts */
    const char *small_ram;
    uint64_t ram_base;          /* where guest RAM starts */
    /*
     * PCI DMA reaches guest RAM untranslated, so an MSI-X message aimed
     * at RAM can be read back there (not through the sPAPR IOMMU).  When
     * false, the MSI-X helpers observe messages through the MSI sink
     * (ivshmem-msi.h) instead.
     */
    bool msix_in_ram;
    /* bus 0 takes hot plug: ACPI (pc) or sPAPR DRCs (pseries) */
    bool bus0_hotplug;
} IvsArch;

/* The description of the target under test; fails on an unknown one. */
const IvsArch *ivs_arch(void);

/* "-machine ..." for the target's default machine. */
const char *ivs_machine(void);

/*
 * "-machine ..." for a machine of the target with PCIe root ports (q35 on
 * x86_64, virt on aarch64); NULL when the target has none (pseries).
 */
const char *ivs_pcie_machine(void);

/* Whether the target is @arch. */
bool ivs_arch_is(const char *arch);

/*
 * Whether KVM cases can run for this target at all: KVM runs guests of
 * the host's own architecture only, so a target that differs from the
 * architecture the test was built for never can, and its KVM cases are
 * not registered (rather than skipped on every run).
 */
bool ivs_kvm_target(void);

/* ---- cleanup that survives a failed assertion ---- */

/*
 * Remember @path (unlinked) and @pid (SIGKILLed and reaped) for removal
 * if the test aborts; ivs_forget_*() when the test cleaned up itself.
 */
void ivs_cleanup_path(const char *path);
void ivs_forget_path(const char *path);
void ivs_cleanup_pid(pid_t pid);
void ivs_forget_pid(pid_t pid);

/* A fresh file name under /dev/shm, registered for cleanup. */
char *ivs_shm_path(const char *tag);

/* unlink() @path and forget it. */
void ivs_remove_path(const char *path);

/* A fresh path for a unix socket, registered for cleanup. */
char *ivs_socket_path(const char *tag);

/* ---- QEMU ---- */

/*
 * Fail the test (abort, with cleanup) if it is still running after
 * @seconds; 0 disarms.  For steps that could block without a bound, such
 * as a QEMU that never finishes starting.
 */
void ivs_watchdog(int seconds);

/* True when KVM works for a qtest QEMU; otherwise g_test_skip()s. */
bool ivs_require_kvm(void);

/* Confirm that @qts really runs with KVM (query-kvm). */
void ivs_assert_kvm(QTestState *qts);

/* Open file descriptors of the QEMU behind @qts. */
int ivs_count_fds(QTestState *qts);

/* Log the fds of the QEMU behind @qts, for failure reports. */
void ivs_log_fds(QTestState *qts);

/* The fds of the QEMU behind @qts, as a set of "N -> target" strings. */
GHashTable *ivs_fd_snapshot(QTestState *qts);

/*
 * Poll until every fd of the QEMU behind @qts is one from @before (fds
 * may have been closed); fail the test after IVS_TIMEOUT_MS.
 */
void ivs_wait_no_new_fds(QTestState *qts, GHashTable *before);

/*
 * Poll until the QEMU behind @qts has @expected fds open; fail the test
 * after IVS_TIMEOUT_MS.
 */
void ivs_wait_fd_count(QTestState *qts, int expected);

/* Run query-status: fails the test if QEMU does not answer. */
void ivs_assert_alive(QTestState *qts);

/*
 * Start QEMU with @args (a complete -machine ... -device ... line), wait
 * for it to exit on its own and return its exit status; its stderr is
 * returned in @err.  Fails the test if QEMU does not exit within
 * @timeout_ms or dies from a signal.
 */
int ivs_run_qemu(const char *args, int timeout_ms, char **err);

/* A QEMU started by ivs_qemu_spawn(), with its stderr in a pipe. */
typedef struct IvsQemu IvsQemu;

/* Start QEMU with @args (as ivs_run_qemu()) without waiting for it. */
IvsQemu *ivs_qemu_spawn(const char *args);

/* Wait for @q to exit, as ivs_run_qemu() does; frees @q. */
int ivs_qemu_wait(IvsQemu *q, int timeout_ms, char **err);

/* Whether a unix socket is listening on @path. */
bool ivs_socket_listening(const char *path);

/* Poll until a unix socket listens on @path; fail after IVS_TIMEOUT_MS. */
void ivs_wait_listening(const char *path);

/*
 * Run @args, expect QEMU to refuse to start (exit status 1, no signal)
 * with an error containing every string in the NULL-terminated list.
 */
void ivs_assert_startup_fails(const char *args, ...) G_GNUC_NULL_TERMINATED;

/* Assert that the QMP error response @resp's description contains @what. */
void ivs_assert_error_contains(QDict *resp, const char *what);

/*
 * The pcie-root-port the default machine has where its bus 0 takes no
 * hot plug (aarch64 virt).
 */
#define IVS_HOTPLUG_PORT        "ivs-rp"
#define IVS_HOTPLUG_PORT_SLOT   0x1f

/*
 * device_add from a JSON object @json; returns the response.  Where the
 * target's bus 0 takes no hot plug, a device whose @json names no "bus"
 * goes below IVS_HOTPLUG_PORT (and loses its "addr").
 */
QDict *ivs_device_add(QTestState *qts, const char *json);

/* device_add from a JSON object @json, which must succeed. */
void ivs_device_add_ok(QTestState *qts, const char *json);

/*
 * device_add from a JSON object @json, expecting failure; the error
 * description must contain @what.
 */
void ivs_device_add_fails(QTestState *qts, const char *json,
                          const char *what);

/* ---- hot plug and unplug ---- */

/*
 * A bus for a device that ivs_device_add() plugged, with the target's
 * slot for it in @slot (in: the slot the test asked for).  Bus 0 where it
 * takes hot plug; on aarch64 virt the bus below IVS_HOTPLUG_PORT, which
 * the test sets up as firmware and the guest would: bus numbers, a memory
 * window, and the slot powered on (a hot plugged device below a port is
 * powered off until the guest powers the slot).  Free with
 * ivs_pci_bus_free().
 */
QPCIBus *ivs_hotplug_bus(QTestState *qts, int *slot);


/*
 * Wait for the DEVICE_DELETED event of @id (other events are dropped);
 * fail after IVS_TIMEOUT_MS.
 */
void ivs_wait_deleted(QTestState *qts, const char *id);

/*
 * What a guest does when told of a device hot plugged into slot @slot of
 * bus 0, where the machine needs it: on pseries the guest unisolates the
 * slot's DRC and fetches the device tree through configure-connector
 * (here through RTAS calls), which makes the DRC "configured", as a
 * device plugged at startup.  Nothing on other machines.
 */
void ivs_hotplug_ack(QTestState *qts, QPCIBus *bus, int slot);

/*
 * Unplug device @id in slot @slot of bus 0 and wait for DEVICE_DELETED,
 * with the test doing the guest's part: the ACPI eject on pc, isolating
 * the DRC through RTAS on pseries.  The machine must have bus0_hotplug.
 */
void ivs_unplug_bus0(QTestState *qts, QPCIBus *bus, const char *id,
                     int slot);

/*
 * Power the slot of the pcie-root-port in slot @port_slot of bus 0 on or
 * off, with its power indicator, as a guest does: a device hot plugged
 * below a port whose slot is off stays powered off until then.
 */
void ivs_port_slot_power(QPCIBus *bus, int port_slot, bool on);

/*
 * Unplug device @id below the pcie-root-port in slot @port_slot of bus 0,
 * whose slot is powered on, and wait for DEVICE_DELETED.  With native
 * PCIe hot plug (aarch64 virt) device_del presses the port's attention
 * button and the test answers as the guest does, powering the slot off,
 * which completes the unplug.  q35 hot plugs below root ports through
 * ACPI, and a reset completes an unplug in progress there: this resets
 * the VM on x86_64.
 */
void ivs_unplug_root_port(QTestState *qts, QPCIBus *bus, const char *id,
                          int port_slot);

/*
 * Unplug device @id from a slot the guest never enabled (no guest under
 * qtest enables an SHPC slot of a pcie-pci-bridge, or powers a PCIe slot
 * ivs_port_slot_power() did not), and wait for DEVICE_DELETED: with
 * native hot plug QEMU removes such a device at once, without asking the
 * guest.  On x86_64 q35 takes it through ACPI instead, and this resets
 * the VM as ivs_unplug_root_port() does.
 */
void ivs_unplug_unclaimed(QTestState *qts, const char *id);

/* ---- the device ---- */

typedef struct IvsDev {
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *pdev;
    int slot;
    QPCIBar regs;               /* BAR0 */
    QPCIBar shm;                /* BAR2 */
    uint64_t regs_size;
    uint64_t shm_size;
    int vectors;                /* MSI-X table size, 0 without MSI-X */
    bool msix_ready;
} IvsDev;

/*
 * Bus 0 of the target's PCI host bridge in @qts, through libqos: the pc
 * bus on x86_64, the generic PCIe host on aarch64 virt, the sPAPR PHB
 * (config space through RTAS) on ppc64; free with ivs_pci_bus_free().
 */
QPCIBus *ivs_pci_bus(QTestState *qts);
void ivs_pci_bus_free(QPCIBus *bus);

/*
 * The guest memory allocator behind @bus (the sPAPR bus needs one for its
 * RTAS calls), or NULL where the bus has none.
 */
QGuestAllocator *ivs_pci_bus_alloc(QPCIBus *bus);

/*
 * The ivshmem device in slot @slot of bus 0: checks vendor/device ID,
 * enables it and maps BAR0 and BAR2.
 */
IvsDev *ivs_dev_open(QTestState *qts, QPCIBus *bus, int slot);
void ivs_dev_close(IvsDev *d);

/*
 * Check the guest-visible identity every ivshmem device shares: IDs,
 * revision, subsystem, class, BAR0 (32-bit MMIO, 256 bytes), BAR2 (64-bit
 * prefetchable, @shm_size bytes).  @vectors is the MSI-X table size a
 * doorbell must have, or 0 for ivshmem-plain (no interrupt pin, no MSI-X,
 * no BAR1).
 */
void ivs_assert_identity(IvsDev *d, uint64_t shm_size, int vectors);

uint32_t ivs_reg_read(IvsDev *d, uint32_t offset);
void ivs_reg_write(IvsDev *d, uint32_t offset, uint32_t value);
void ivs_doorbell(IvsDev *d, uint16_t peer, uint16_t vector);

/*
 * Enable MSI-X, point every vector at its own word of guest RAM (see
 * IVS_MSIX_RAM) with IVS_MSIX_DATA as data, clear those words and unmask
 * every vector.  Where the target has no msix_in_ram, route every vector
 * to the MSI sink of @d's bus instead (created on first use, freed with
 * the bus by ivs_pci_bus_free()), which programs the table itself; the
 * entries then hold what the machine chose, not ivs_msix_addr() and
 * IVS_MSIX_DATA.  ivs_dev_close() drops the device from the sink, so a
 * device reset or plugged again is set up anew.
 */
void ivs_msix_setup(IvsDev *d);

/*
 * The guest RAM address vector @vector of @d writes to, on a target with
 * msix_in_ram.
 */
uint64_t ivs_msix_addr(IvsDev *d, int vector);

/* Mask or unmask one vector in the MSI-X table. */
void ivs_msix_mask(IvsDev *d, int vector, bool masked);

/* The pending bit of @vector in the PBA. */
bool ivs_msix_pending(IvsDev *d, int vector);

/*
 * Forget every message of @d so far: zero the RAM words its vectors write
 * to, or take them from the sink.
 */
void ivs_msix_clear(IvsDev *d);

/*
 * Poll until vector @vector of @d has sent a message, fail the test after
 * IVS_TIMEOUT_MS.  The message is consumed (the word cleared again).
 */
void ivs_msix_wait(IvsDev *d, int vector);

/*
 * True when the target lets the test see MSI-X messages themselves (what
 * ivs_msix_wait(), ivs_msix_fired(), ivs_msix_clear() and
 * ivs_msix_assert_quiet() read); otherwise g_test_skip()s saying why.
 * The pending bits (ivs_msix_pending()) work on every target.
 */
bool ivs_require_msix_messages(void);

/* Whether MSI-X messages can be seen, without skipping anything. */
bool ivs_msix_messages_seen(void);

/*
 * True if vector @vector has sent a message since the last clear (or
 * ivs_msix_wait() for it); does not consume it.
 */
bool ivs_msix_fired(IvsDev *d, int vector);

/* Assert that no vector of @d has sent a message since the last clear. */
void ivs_msix_assert_quiet(IvsDev *d);

/* Poll until the PBA bit of @vector is set; fail after IVS_TIMEOUT_MS. */
void ivs_msix_wait_pending(IvsDev *d, int vector);

/* ---- the scripted fake server ---- */

typedef enum IvsFdKind {
    IVS_FD_NONE,
    IVS_FD_SHM,                 /* the fake's shared memory */
    IVS_FD_EVENTFD,             /* a new eventfd: the ID's next vector */
    IVS_FD_EVENTFD_BLOCKING,    /* the same, without O_NONBLOCK */
    IVS_FD_OTHER,               /* an fd that is neither (/dev/null) */
} IvsFdKind;

typedef struct IvsFake IvsFake;

/* A fake server with @shm_size bytes of memory, listening, not started. */
IvsFake *ivs_fake_new(uint64_t shm_size);
const char *ivs_fake_socket(IvsFake *f);

/*
 * Script steps, played in order to the first client that connects.  A
 * close waits until the client has read everything sent before it.
 */
void ivs_fake_push(IvsFake *f, int64_t value, IvsFdKind fd);
void ivs_fake_push_raw(IvsFake *f, const void *buf, size_t len);
/* A copy of eventfd @fd as the next vector of @value. */
void ivs_fake_push_dup(IvsFake *f, int64_t value, int fd);
void ivs_fake_push_close(IvsFake *f);

/*
 * Script a complete, well-formed handshake: version, @own_id, the memory,
 * each ID of @peers (an array of @npeers) @vectors times with eventfds,
 * then @own_id @vectors times.
 */
void ivs_fake_push_handshake(IvsFake *f, int own_id, const int *peers,
                             int npeers, int vectors);

/* Start the thread: accept one client and play the script to it. */
void ivs_fake_start(IvsFake *f);

/* Wait until the whole script was sent; fail after IVS_TIMEOUT_MS. */
void ivs_fake_wait_played(IvsFake *f);

/* After the script: send one more message (main thread). */
void ivs_fake_send(IvsFake *f, int64_t value, IvsFdKind fd);

/* Send raw bytes after the script. */
void ivs_fake_send_raw(IvsFake *f, const void *buf, size_t len);

/* The eventfd the fake sent as vector @vector of peer @id. */
int ivs_fake_eventfd(IvsFake *f, int id, int vector);

/* The fake's shared memory fd. */
int ivs_fake_shm_fd(IvsFake *f);

/*
 * Whether the client has closed its end (poll with a bound); -1 if no
 * client connected.
 */
bool ivs_fake_client_closed(IvsFake *f, int timeout_ms);

/* Stop the thread and close every fd; unlinks the socket. */
void ivs_fake_free(IvsFake *f);

/* Read an eventfd's counter without blocking; 0 when not signalled. */
uint64_t ivs_eventfd_take(int fd);

/* Poll an eventfd until it is signalled; returns its counter. */
uint64_t ivs_eventfd_wait(int fd);

/* Signal an eventfd once. */
void ivs_eventfd_signal(int fd);

/* ---- the real ivshmem-server ---- */

typedef struct IvsServer {
    pid_t pid;
    char *socket;
    char *log;                  /* its stderr, in a file */
} IvsServer;

/*
 * Start ./contrib/ivshmem-server/ivshmem-server (or $IVSHMEM_SERVER) with
 * "-S SOCKET" and @args, and wait until the socket accepts connections.
 * Returns NULL, after g_test_skip(), if there is no server binary.
 */
IvsServer *ivs_server_start(const char *args);
void ivs_server_stop(IvsServer *s);

/* ---- migration ---- */

/*
 * Migrate @from to @to (started with -incoming defer) over a unix socket.
 * Returns true on success; on failure returns false with the source's
 * error description in @err (if not NULL).
 */
bool ivs_migrate(QTestState *from, QTestState *to, char **err);

/* Poll query-status until it reports @status. */
void ivs_wait_status(QTestState *qts, const char *status);

#endif
