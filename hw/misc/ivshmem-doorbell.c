/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ivshmem-doorbell: inter-VM shared memory and interrupts from an ivshmem
 * server.
 *
 *   -chardev socket,id=c0,path=/run/ivshmem.sock
 *   -device ivshmem-doorbell,chardev=c0,vectors=2
 *
 * The server hands every client its peer ID, the shared memory and one
 * eventfd per vector for itself and for each other peer
 * (docs/specs/ivshmem-spec.rst).  realize() reads that handshake before it
 * returns, bounded by setup-timeout-ms: setup is complete when the device
 * holds one eventfd of its own for each of its vectors.  A realized device
 * therefore has its memory, its final IVPOSITION and its peers; peers that
 * come and go later are handled as the server reports them.
 *
 * A guest write to DOORBELL signals the destination peer's eventfd for the
 * vector, through an ioeventfd when enabled and the peer has all its
 * vectors (under KVM the write never leaves the kernel), else in the
 * write handler.  Our own eventfds become
 * MSI-X messages: delivered by KVM through an irqfd while the guest has
 * the vector enabled and unmasked, else by a main-loop fd handler.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "chardev/char-fe.h"
#include "chardev/char-socket.h"
#include "hw/misc/ivshmem-common.h"
#include "hw/pci/msi.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "io/channel.h"
#include "migration/vmstate.h"
#include "qemu/error-report.h"
#include "qemu/event_notifier.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "system/kvm.h"
#include "trace.h"

/* MSI-X's largest table. */
#define IVSHMEM_DOORBELL_MAX_VECTORS    (PCI_MSIX_FLAGS_QSIZE + 1)
#define IVSHMEM_DEFAULT_SETUP_TIMEOUT   5000    /* ms */
/*
 * realize holds the BQL while it waits for the server: the whole VM
 * stalls, not only the monitor.  Stay well below the 20 s after which a
 * Linux guest starts reporting soft lockups.
 */
#define IVSHMEM_MAX_SETUP_TIMEOUT       10000   /* ms */

OBJECT_DECLARE_SIMPLE_TYPE(IvshmemDoorbellState, IVSHMEM_DOORBELL)

/* A peer (or this device) and the eventfds that ring its vectors. */
typedef struct IvshmemPeer {
    uint16_t id;
    uint32_t nvectors;          /* eventfds received so far */
    EventNotifier *vectors;     /* s->vectors entries */
} IvshmemPeer;

/* How one of our own vectors reaches the guest. */
typedef struct IvshmemOwnVector {
    struct IvshmemDoorbellState *s;
    uint32_t vector;
    EventNotifier *notifier;    /* in s->self */
    int virq;                   /* KVM MSI route, or -1 */
    bool irqfd;                 /* KVM delivers it, no fd handler */
} IvshmemOwnVector;

/* A server message being assembled from the byte stream. */
typedef struct IvshmemMsgReader {
    uint8_t buf[IVSHMEM_MSG_SIZE];
    uint32_t len;
    int fd;
} IvshmemMsgReader;

struct IvshmemDoorbellState {
    IvshmemState parent_obj;

    /* properties */
    CharFrontend chr;
    uint32_t vectors;
    bool ioeventfd;
    uint32_t setup_timeout_ms;

    MemoryRegion shm;
    GHashTable *peers;          /* peer ID -> IvshmemPeer, ours included */
    IvshmemPeer *self;
    IvshmemOwnVector *own;      /* s->vectors entries, after setup */
    IvshmemMsgReader reader;
};

static const char *ivshmem_chardev_name(IvshmemDoorbellState *s)
{
    Chardev *chr = qemu_chr_fe_get_driver(&s->chr);

    return chr ? chr->label : "?";
}

/* Peers */

static void ivshmem_peer_free(gpointer data)
{
    IvshmemPeer *peer = data;

    for (uint32_t v = 0; v < peer->nvectors; v++) {
        event_notifier_cleanup(&peer->vectors[v]);
    }
    g_free(peer->vectors);
    g_free(peer);
}

static IvshmemPeer *ivshmem_peer_get(IvshmemDoorbellState *s, uint16_t id)
{
    return g_hash_table_lookup(s->peers, GUINT_TO_POINTER(id));
}

/*
 * Whether @fd is an eventfd.  Anything else as a vector could block QEMU
 * when rung or read, and makes KVM refuse the ioeventfd (QEMU aborts).
 */
static bool ivshmem_is_eventfd(int fd)
{
    g_autofree char *path = g_strdup_printf("/proc/self/fd/%d", fd);
    char target[32];
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    struct stat st;

    if (n >= 0) {
        target[n] = 0;
        return !strcmp(target, "anon_inode:[eventfd]");
    }
    /* Without /proc, at least an anonymous inode (no file type bits). */
    return fstat(fd, &st) == 0 && !(st.st_mode & S_IFMT);
}

/*
 * Take @fd as the next vector of peer @id: the N-th eventfd a peer gets is
 * its vector N-1.  Returns that vector, or -1 when the device has no room
 * for it and closed it.
 */
static int ivshmem_peer_add_vector(IvshmemDoorbellState *s, uint16_t id,
                                   int fd)
{
    IvshmemPeer *peer = ivshmem_peer_get(s, id);

    if (!peer) {
        peer = g_new0(IvshmemPeer, 1);
        peer->id = id;
        peer->vectors = g_new0(EventNotifier, s->vectors);
        g_hash_table_insert(s->peers, GUINT_TO_POINTER(id), peer);
    }
    if (peer->nvectors == s->vectors) {
        /* The server has more vectors than this device uses. */
        trace_ivshmem_doorbell_msg_ignored(s, id, fd,
                                           "more vectors than the device has");
        close(fd);
        return -1;
    }
    /*
     * QEMU's socket code makes every fd it receives blocking, in the file
     * description that the server and every peer share; QEMU's ivshmem
     * devices have always made eventfds non-blocking again, and read their
     * own without polling first.  Do the same, for them.
     */
    g_unix_set_fd_nonblocking(fd, true, NULL);
    event_notifier_init_fd(&peer->vectors[peer->nvectors], fd);
    trace_ivshmem_doorbell_peer_vector(s, id, peer->nvectors, fd);
    return peer->nvectors++;
}

/*
 * Let DOORBELL writes for @peer ring its eventfds in the kernel, or stop.
 * A peer gets its ioeventfds once it has all of the device's vectors, in
 * one memory transaction; doorbells to a peer still joining go through
 * ivshmem_doorbell_reg_write().
 */
static void ivshmem_peer_ioeventfds(IvshmemDoorbellState *s,
                                    IvshmemPeer *peer, bool on)
{
    MemoryRegion *regs = &IVSHMEM_COMMON(s)->regs;

    if (!s->ioeventfd || peer->nvectors < s->vectors) {
        return;
    }
    memory_region_transaction_begin();
    for (uint32_t v = 0; v < peer->nvectors; v++) {
        uint32_t val = IVSHMEM_DOORBELL_VALUE(peer->id, v);

        if (on) {
            memory_region_add_eventfd(regs, IVSHMEM_REG_DOORBELL, 4, true,
                                      val, &peer->vectors[v]);
        } else {
            memory_region_del_eventfd(regs, IVSHMEM_REG_DOORBELL, 4, true,
                                      val, &peer->vectors[v]);
        }
    }
    memory_region_transaction_commit();
}

/* Every peer's, in one memory transaction. */
static void ivshmem_all_ioeventfds(IvshmemDoorbellState *s, bool on)
{
    GHashTableIter it;
    IvshmemPeer *peer;

    memory_region_transaction_begin();
    g_hash_table_iter_init(&it, s->peers);
    while (g_hash_table_iter_next(&it, NULL, (gpointer *)&peer)) {
        ivshmem_peer_ioeventfds(s, peer, on);
    }
    memory_region_transaction_commit();
}

static void ivshmem_peer_remove(IvshmemDoorbellState *s, IvshmemPeer *peer)
{
    if (qdev_is_realized(DEVICE(s))) {
        ivshmem_peer_ioeventfds(s, peer, false);
    }
    g_hash_table_remove(s->peers, GUINT_TO_POINTER(peer->id));
}

/* Our own vectors: eventfd -> MSI-X */

/*
 * Take @ov's count if it was rung, without blocking even if another
 * QEMU's socket code has just made the shared eventfd blocking.  The fd
 * handler needs this too: under KVM the poll notifier, run from a vCPU,
 * may take the count between the main loop's poll and the handler.
 */
static bool ivshmem_vector_take(IvshmemOwnVector *ov)
{
    GPollFD pfd = {
        .fd = event_notifier_get_fd(ov->notifier), .events = G_IO_IN,
    };

    return qemu_poll_ns(&pfd, 1, 0) > 0 &&
           event_notifier_test_and_clear(ov->notifier);
}

static void ivshmem_vector_fired(void *opaque)
{
    IvshmemOwnVector *ov = opaque;
    PCIDevice *pdev = PCI_DEVICE(ov->s);

    if (!ivshmem_vector_take(ov)) {
        return;
    }
    trace_ivshmem_doorbell_interrupt(ov->s, ov->vector);
    /* A masked vector gets its pending bit set. */
    if (msix_enabled(pdev)) {
        msix_notify(pdev, ov->vector);
    }
}

static void ivshmem_vector_watch(IvshmemOwnVector *ov, bool on)
{
    qemu_set_fd_handler(event_notifier_get_fd(ov->notifier),
                        on ? ivshmem_vector_fired : NULL, NULL, ov);
}

static void ivshmem_irqfd_detach(IvshmemOwnVector *ov)
{
    if (!ov->irqfd) {
        return;
    }
    kvm_irqchip_remove_irqfd_notifier_gsi(kvm_state, ov->notifier, ov->virq);
    ov->irqfd = false;
    ivshmem_vector_watch(ov, true);
    trace_ivshmem_doorbell_irqfd(ov->s, ov->vector, ov->virq, false);
}

/* Point @ov's KVM route at @msg, allocating the route the first time. */
static int ivshmem_irqfd_route(IvshmemOwnVector *ov, MSIMessage msg)
{
    PCIDevice *pdev = PCI_DEVICE(ov->s);
    KVMRouteChange c;
    int ret;

    if (ov->virq >= 0) {
        ret = kvm_irqchip_update_msi_route(kvm_state, ov->virq, msg, pdev);
        if (ret == 0) {
            kvm_irqchip_commit_routes(kvm_state);
        }
        return ret;
    }
    c = kvm_irqchip_begin_route_changes(kvm_state);
    ret = kvm_irqchip_add_msi_route(&c, ov->vector, pdev);
    if (ret < 0) {
        return ret;
    }
    kvm_irqchip_commit_route_changes(&c);
    ov->virq = ret;
    return 0;
}

/*
 * MSI-X vector notifiers, installed while the guest has MSI-X enabled
 * under KVM.  The guest unmasked vector @v: let KVM deliver it straight
 * from the eventfd.  When KVM cannot, the fd handler keeps delivering it,
 * so this never fails.
 */
static int ivshmem_vector_unmask(PCIDevice *pdev, unsigned v, MSIMessage msg)
{
    IvshmemOwnVector *ov = &IVSHMEM_DOORBELL(pdev)->own[v];
    int ret;

    ret = ivshmem_irqfd_route(ov, msg);
    if (ret == 0 && !ov->irqfd) {
        ivshmem_vector_watch(ov, false);
        ret = kvm_irqchip_add_irqfd_notifier_gsi(kvm_state, ov->notifier,
                                                 NULL, ov->virq);
        if (ret < 0) {
            ivshmem_vector_watch(ov, true);
        } else {
            ov->irqfd = true;
            trace_ivshmem_doorbell_irqfd(ov->s, v, ov->virq, true);
        }
    }
    if (ret < 0) {
        /* A route that may be stale must not deliver anything. */
        ivshmem_irqfd_detach(ov);
        trace_ivshmem_doorbell_irqfd_failed(ov->s, v, ret);
    }
    return 0;
}

/* The guest masked vector @v: catch it in QEMU, to set the pending bit. */
static void ivshmem_vector_mask(PCIDevice *pdev, unsigned v)
{
    ivshmem_irqfd_detach(&IVSHMEM_DOORBELL(pdev)->own[v]);
}

static void ivshmem_vector_poll(PCIDevice *pdev, unsigned start, unsigned end)
{
    IvshmemDoorbellState *s = IVSHMEM_DOORBELL(pdev);

    for (unsigned v = start; v < end; v++) {
        if (msix_is_masked(pdev, v) && ivshmem_vector_take(&s->own[v])) {
            msix_set_pending(pdev, v);
        }
    }
}

/* Hand every vector back to the fd handlers and drop the routes. */
static void ivshmem_irqfd_stop(IvshmemDoorbellState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    if (!pdev->msix_vector_use_notifier) {
        return;
    }
    /*
     * With MSI-X already disabled, msix_unset_vector_notifiers() masks
     * nothing, so detach here.
     */
    for (uint32_t v = 0; v < s->vectors; v++) {
        ivshmem_irqfd_detach(&s->own[v]);
        if (s->own[v].virq >= 0) {
            kvm_irqchip_release_virq(kvm_state, s->own[v].virq);
            s->own[v].virq = -1;
        }
    }
    msix_unset_vector_notifiers(pdev);
}

/*
 * irqfds follow the guest's MSI-X Enable bit: after a config write, a
 * reset and an incoming migration.
 */
static void ivshmem_irqfd_sync(IvshmemDoorbellState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    bool want = kvm_enabled() && kvm_msi_via_irqfd_enabled() &&
                msix_enabled(pdev);

    if (want && !pdev->msix_vector_use_notifier) {
        /* Cannot fail: the unmask notifier always returns 0. */
        msix_set_vector_notifiers(pdev, ivshmem_vector_unmask,
                                  ivshmem_vector_mask, ivshmem_vector_poll);
    } else if (!want) {
        ivshmem_irqfd_stop(s);
    }
}

static void ivshmem_own_vectors_start(IvshmemDoorbellState *s)
{
    s->own = g_new0(IvshmemOwnVector, s->vectors);
    for (uint32_t v = 0; v < s->vectors; v++) {
        IvshmemOwnVector *ov = &s->own[v];

        *ov = (IvshmemOwnVector) {
            .s = s, .vector = v, .notifier = &s->self->vectors[v], .virq = -1,
        };
        msix_vector_use(PCI_DEVICE(s), v);
        ivshmem_vector_watch(ov, true);
    }
}

static void ivshmem_own_vectors_stop(IvshmemDoorbellState *s)
{
    if (!s->own) {
        return;
    }
    ivshmem_irqfd_stop(s);
    for (uint32_t v = 0; v < s->vectors; v++) {
        ivshmem_vector_watch(&s->own[v], false);
    }
    msix_unuse_all_vectors(PCI_DEVICE(s));
    g_clear_pointer(&s->own, g_free);
}

/* Server messages */

/*
 * Add @len bytes and maybe an fd to the message being assembled.  Returns
 * true when a whole message is ready in @msg / @msg_fd.
 */
static bool ivshmem_reader_feed(IvshmemMsgReader *r, const uint8_t *buf,
                                size_t len, int fd, int64_t *msg, int *msg_fd)
{
    assert(r->len + len <= IVSHMEM_MSG_SIZE);
    memcpy(r->buf + r->len, buf, len);
    r->len += len;
    if (fd >= 0) {
        if (r->fd >= 0) {
            /* One fd per message; a second one is a server bug. */
            close(fd);
        } else {
            r->fd = fd;
        }
    }
    if (r->len < IVSHMEM_MSG_SIZE) {
        return false;
    }
    *msg = (int64_t)ldq_le_p(r->buf);
    *msg_fd = r->fd;
    r->len = 0;
    r->fd = -1;
    return true;
}

static void ivshmem_reader_reset(IvshmemMsgReader *r)
{
    if (r->fd >= 0) {
        close(r->fd);
    }
    r->len = 0;
    r->fd = -1;
}

/*
 * A peer message: an ID with an eventfd is that peer's next vector, an ID
 * without one says the peer left.  Takes @fd.  Returns false, with @errp
 * set, for a message that makes no sense.
 */
static bool ivshmem_peer_msg(IvshmemDoorbellState *s, int64_t msg, int fd,
                             Error **errp)
{
    const char *when = qdev_is_realized(DEVICE(s)) ? "" : " during setup";
    IvshmemPeer *peer;
    int v;

    if (msg < 0 || msg > IVSHMEM_MAX_PEER_ID) {
        error_setg(errp, "the ivshmem server on chardev '%s' sent invalid "
                   "message %" PRId64 "%s%s", ivshmem_chardev_name(s), msg,
                   fd >= 0 ? " with a file descriptor" : "", when);
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    if (fd >= 0) {
        if (!ivshmem_is_eventfd(fd)) {
            error_setg(errp, "the ivshmem server on chardev '%s' sent a file "
                       "descriptor that is not an eventfd for peer %" PRId64
                       "%s", ivshmem_chardev_name(s), msg, when);
            close(fd);
            return false;
        }
        v = ivshmem_peer_add_vector(s, msg, fd);
        if (v == s->vectors - 1 && qdev_is_realized(DEVICE(s))) {
            ivshmem_peer_ioeventfds(s, ivshmem_peer_get(s, msg), true);
        }
        return true;
    }
    if (msg == IVSHMEM_COMMON(s)->ivposition) {
        error_setg(errp, "the ivshmem server on chardev '%s' disconnected "
                   "this device (peer %" PRId64 ")%s",
                   ivshmem_chardev_name(s), msg, when);
        return false;
    }
    peer = ivshmem_peer_get(s, msg);
    if (!peer) {
        /* Nothing to forget; our server's setup-end marker looks like this */
        trace_ivshmem_doorbell_msg_ignored(s, msg, fd, "unknown peer gone");
        return true;
    }
    trace_ivshmem_doorbell_peer_gone(s, msg);
    ivshmem_peer_remove(s, peer);
    return true;
}

/* realize: the handshake */

typedef enum IvshmemSetupStep {
    SETUP_VERSION,
    SETUP_ID,
    SETUP_SHM,
    SETUP_VECTORS,
} IvshmemSetupStep;

static bool ivshmem_map_shm(IvshmemDoorbellState *s, int fd, Error **errp)
{
    g_autofree char *desc = g_strdup_printf("the shared memory from chardev "
                                            "'%s'", ivshmem_chardev_name(s));
    struct stat st;

    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "cannot stat %s", desc);
        close(fd);
        return false;
    }
    if (st.st_size <= 0) {
        error_setg(errp, "%s is empty", desc);
        close(fd);
        return false;
    }
    if (!ivshmem_check_size(st.st_size, desc, errp)) {
        close(fd);
        return false;
    }
    /* On success the RAM block owns the fd. */
    if (!memory_region_init_ram_from_fd(&s->shm, OBJECT(s), "ivshmem.bar2",
                                        st.st_size, RAM_SHARED, fd, 0, errp)) {
        close(fd);
        return false;
    }
    return true;
}

/* Apply a handshake message.  Takes @fd. */
static bool ivshmem_setup_msg(IvshmemDoorbellState *s, IvshmemSetupStep *step,
                              int64_t msg, int fd, Error **errp)
{
    const char *with_fd = fd >= 0 ? " (with a file descriptor)" : "";

    switch (*step) {
    case SETUP_VERSION:
        if (msg != IVSHMEM_PROTOCOL_VERSION || fd >= 0) {
            error_setg(errp, "the ivshmem server on chardev '%s' speaks "
                       "protocol version %" PRId64 "%s; this device speaks "
                       "version %d", ivshmem_chardev_name(s), msg, with_fd,
                       IVSHMEM_PROTOCOL_VERSION);
            break;
        }
        *step = SETUP_ID;
        return true;
    case SETUP_ID:
        if (msg < 0 || msg > IVSHMEM_MAX_PEER_ID || fd >= 0) {
            error_setg(errp, "the ivshmem server on chardev '%s' assigned "
                       "invalid peer ID %" PRId64 "%s",
                       ivshmem_chardev_name(s), msg, with_fd);
            break;
        }
        IVSHMEM_COMMON(s)->ivposition = msg;
        *step = SETUP_SHM;
        return true;
    case SETUP_SHM:
        /* Peers may come first: QEMU's ivshmem devices always took them. */
        if (msg >= 0) {
            return ivshmem_peer_msg(s, msg, fd, errp);
        }
        if (msg != IVSHMEM_MSG_SHM || fd < 0) {
            error_setg(errp, "the ivshmem server on chardev '%s' sent "
                       "message %" PRId64 " %s file descriptor where the "
                       "shared memory was expected", ivshmem_chardev_name(s),
                       msg, fd >= 0 ? "with a" : "without a");
            break;
        }
        *step = SETUP_VECTORS;
        return ivshmem_map_shm(s, fd, errp);
    case SETUP_VECTORS:
        return ivshmem_peer_msg(s, msg, fd, errp);
    }
    if (fd >= 0) {
        close(fd);
    }
    return false;
}

/*
 * Read from the server's socket, without blocking, until a whole message
 * is assembled.  Each read asks for at most the rest of one message, so a
 * file descriptor can only arrive with the message it belongs to.
 * Returns 1 with the message in @msg and @fd, 0 when the socket has
 * nothing more for now, -1 at end of file or on error.
 */
static int ivshmem_setup_read(IvshmemDoorbellState *s, QIOChannel *ioc,
                              int64_t *msg, int *fd, Error **errp)
{
    for (;;) {
        uint8_t buf[IVSHMEM_MSG_SIZE];
        struct iovec iov = {
            .iov_base = buf,
            .iov_len = IVSHMEM_MSG_SIZE - s->reader.len,
        };
        g_autofree int *fds = NULL;
        size_t nfds = 0;
        ssize_t n;

        n = qio_channel_readv_full(ioc, &iov, 1, &fds, &nfds, 0, errp);
        if (n == QIO_CHANNEL_ERR_BLOCK) {
            return 0;
        }
        if (n < 0) {
            return -1;
        }
        for (size_t i = 1; i < nfds; i++) {
            close(fds[i]);
        }
        if (n == 0) {
            if (nfds) {
                close(fds[0]);
            }
            error_setg(errp, "the ivshmem server on chardev '%s' closed the "
                       "connection during the handshake",
                       ivshmem_chardev_name(s));
            return -1;
        }
        if (ivshmem_reader_feed(&s->reader, buf, n, nfds ? fds[0] : -1,
                                msg, fd)) {
            trace_ivshmem_doorbell_msg(s, *msg, *fd);
            return 1;
        }
    }
}

static void ivshmem_setup_timed_out(IvshmemDoorbellState *s,
                                    IvshmemSetupStep step, Error **errp)
{
    ERRP_GUARD();

    error_setg(errp, "the ivshmem server on chardev '%s' did not complete "
               "the handshake within %u ms", ivshmem_chardev_name(s),
               s->setup_timeout_ms);
    if (step == SETUP_VECTORS) {
        error_append_hint(errp, "It sent %u of the %u vectors this device "
                          "has: set vectors= to the server's vector count "
                          "(ivshmem-server -n).\n",
                          s->self ? s->self->nvectors : 0, s->vectors);
    }
}

/*
 * Read the handshake, until this device holds an eventfd of its own for
 * every vector.  The chardev's frontend handlers are not installed yet,
 * so this is the only reader of the socket.
 */
static bool ivshmem_read_setup(IvshmemDoorbellState *s, QIOChannelSocket *sioc,
                               Error **errp)
{
    int64_t deadline = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                       s->setup_timeout_ms;
    IvshmemSetupStep step = SETUP_VERSION;

    while (step != SETUP_VECTORS || !s->self ||
           s->self->nvectors < s->vectors) {
        int64_t left = deadline - qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
        GPollFD pfd = { .fd = sioc->fd, .events = G_IO_IN | G_IO_HUP };
        int64_t msg;
        int fd, ret;

        /* Bounded also for a server that never stops talking. */
        if (left <= 0) {
            ivshmem_setup_timed_out(s, step, errp);
            return false;
        }
        ret = ivshmem_setup_read(s, QIO_CHANNEL(sioc), &msg, &fd, errp);
        if (ret < 0) {
            return false;
        }
        if (ret == 0) {
            qemu_poll_ns(&pfd, 1, left * SCALE_MS);
            continue;
        }
        if (!ivshmem_setup_msg(s, &step, msg, fd, errp)) {
            return false;
        }
        s->self = ivshmem_peer_get(s, IVSHMEM_COMMON(s)->ivposition);
    }
    return true;
}

/*
 * The device reads the handshake from the socket itself, so only a plain
 * unix socket client will do: the others add a protocol layer (TLS,
 * websocket, telnet), wait for a client, or reconnect behind the device's
 * back (and a reconnected stream starts a new handshake).
 */
static QIOChannelSocket *ivshmem_server_channel(IvshmemDoorbellState *s,
                                                Error **errp)
{
    ERRP_GUARD();
    Chardev *chr = qemu_chr_fe_get_driver(&s->chr);
    SocketChardev *sc;

    if (!chr) {
        error_setg(errp, "property 'chardev' is required");
        error_append_hint(errp, "Connect the device to an ivshmem server "
                          "with chardev=ID of a unix socket chardev.\n");
        return NULL;
    }
    sc = (SocketChardev *)object_dynamic_cast(OBJECT(chr),
                                              TYPE_CHARDEV_SOCKET);
    if (!sc || sc->is_listen || sc->is_telnet || sc->is_tn3270 ||
        sc->is_websock || sc->tls_creds || sc->reconnect_time_ms ||
        (sc->addr->type != SOCKET_ADDRESS_TYPE_UNIX &&
         sc->addr->type != SOCKET_ADDRESS_TYPE_FD)) {
        goto not_plain;
    }
    if (!sc->sioc) {
        error_setg(errp, "chardev '%s' is not connected to an ivshmem server",
                   chr->label);
        error_append_hint(errp, "A chardev stays disconnected once its "
                          "server or its device has closed the connection; "
                          "remove it and add it again.\n");
        return NULL;
    }
    /* A socket passed as fd= may be anything; only a unix one passes fds. */
    if (!qio_channel_has_feature(QIO_CHANNEL(sc->sioc),
                                 QIO_CHANNEL_FEATURE_FD_PASS)) {
        goto not_plain;
    }
    return sc->sioc;

not_plain:
    error_setg(errp, "chardev '%s' is not a plain unix socket client",
               chr->label);
    error_append_hint(errp, "Use -chardev socket,id=ID,path=PATH (or fd= of "
                      "a connected unix socket), without server, "
                      "reconnect-ms, tls-creds, websocket or telnet "
                      "options.\n");
    return NULL;
}

/* After realize: the chardev delivers the server's messages */

static int ivshmem_chr_can_receive(void *opaque)
{
    IvshmemDoorbellState *s = opaque;

    return IVSHMEM_MSG_SIZE - s->reader.len;
}

static void ivshmem_chr_receive(void *opaque, const uint8_t *buf, int size)
{
    IvshmemDoorbellState *s = opaque;
    Error *err = NULL;
    int64_t msg;
    int fd;

    if (!ivshmem_reader_feed(&s->reader, buf, size,
                             qemu_chr_fe_get_msgfd(&s->chr), &msg, &fd)) {
        return;
    }
    trace_ivshmem_doorbell_msg(s, msg, fd);
    if (!ivshmem_peer_msg(s, msg, fd, &err)) {
        error_append_hint(&err, "The device ignored the message.\n");
        warn_report_err(err);
    }
}

static void ivshmem_chr_event(void *opaque, QEMUChrEvent event)
{
    IvshmemDoorbellState *s = opaque;

    if (event != CHR_EVENT_CLOSED) {
        return;
    }
    /*
     * The chardev does not reconnect (see ivshmem_server_channel()): the
     * memory and the peers known so far stay until unplug.  Only traced,
     * since the chardev also closes like this when QEMU exits.
     */
    trace_ivshmem_doorbell_server_closed(s);
    ivshmem_reader_reset(&s->reader);
}

/* DOORBELL, when no ioeventfd took the write */

static void ivshmem_doorbell_reg_write(void *opaque, hwaddr addr,
                                       uint64_t val, unsigned size)
{
    IvshmemDoorbellState *s = opaque;
    uint16_t id = IVSHMEM_DOORBELL_PEER(val);
    uint16_t v = IVSHMEM_DOORBELL_VECTOR(val);
    IvshmemPeer *peer;

    /* A write inside a register reaches it, as it always did. */
    if ((addr & ~3) != IVSHMEM_REG_DOORBELL) {
        ivshmem_reg_write(opaque, addr, val, size);
        return;
    }
    peer = ivshmem_peer_get(s, id);
    if (!peer || v >= peer->nvectors) {
        trace_ivshmem_doorbell_ignored(s, id, v, peer ? "no such vector"
                                                      : "no such peer");
        return;
    }
    trace_ivshmem_doorbell_ring(s, id, v);
    event_notifier_set(&peer->vectors[v]);
}

static const MemoryRegionOps ivshmem_doorbell_reg_ops = {
    .read = ivshmem_reg_read,
    .write = ivshmem_doorbell_reg_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .impl = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

/* realize / unrealize */

/* Undo what realize did; also for a realize that failed part way. */
static void ivshmem_doorbell_cleanup(IvshmemDoorbellState *s)
{
    qemu_chr_fe_set_handlers(&s->chr, NULL, NULL, NULL, NULL, NULL, NULL,
                             true);
    /*
     * Leave the server, which frees our ID and tells the other peers.  A
     * connection that a failed handshake left part way is not reused.
     * (Harmless on a connection the server already closed.)
     */
    qemu_chr_fe_disconnect(&s->chr);
    ivshmem_own_vectors_stop(s);
    if (msix_present(PCI_DEVICE(s))) {
        msix_uninit_exclusive_bar(PCI_DEVICE(s));
    }
    g_clear_pointer(&s->peers, g_hash_table_destroy);
    s->self = NULL;
    ivshmem_reader_reset(&s->reader);
    /* The shared memory's RAM block goes with the device, its owner. */
}

static bool ivshmem_doorbell_check_props(IvshmemDoorbellState *s,
                                         Error **errp)
{
    if (s->vectors < 1 || s->vectors > IVSHMEM_DOORBELL_MAX_VECTORS) {
        error_setg(errp, "vectors=%u is out of range: the device supports "
                   "1 to %u vectors", s->vectors,
                   IVSHMEM_DOORBELL_MAX_VECTORS);
        return false;
    }
    if (s->setup_timeout_ms < 1 ||
        s->setup_timeout_ms > IVSHMEM_MAX_SETUP_TIMEOUT) {
        error_setg(errp, "setup-timeout-ms=%u is out of range: 1 to %u",
                   s->setup_timeout_ms, IVSHMEM_MAX_SETUP_TIMEOUT);
        return false;
    }
    return true;
}

static void ivshmem_doorbell_realize(PCIDevice *pdev, Error **errp)
{
    ERRP_GUARD();
    IvshmemDoorbellState *s = IVSHMEM_DOORBELL(pdev);
    IvshmemState *common = IVSHMEM_COMMON(s);
    QIOChannelSocket *sioc;

    if (!ivshmem_doorbell_check_props(s, errp)) {
        return;
    }
    sioc = ivshmem_server_channel(s, errp);
    if (!sioc) {
        return;
    }

    s->peers = g_hash_table_new_full(NULL, NULL, NULL, ivshmem_peer_free);
    s->reader.fd = -1;
    if (!ivshmem_read_setup(s, sioc, errp)) {
        goto fail;
    }
    trace_ivshmem_doorbell_setup_done(s, common->ivposition,
                                      g_hash_table_size(s->peers) - 1);

    /* Only peer 0 keeps its IVPOSITION on a migration destination. */
    if (common->master == ON_OFF_AUTO_ON && common->ivposition != 0) {
        error_setg(errp, "master=on needs peer ID 0, and the ivshmem server "
                   "on chardev '%s' assigned peer ID %u",
                   ivshmem_chardev_name(s), common->ivposition);
        error_append_hint(errp, "The master must be the first client to "
                          "connect to its server.\n");
        goto fail;
    }
    if (msix_init_exclusive_bar(pdev, s->vectors, IVSHMEM_MSIX_BAR, errp)) {
        goto fail;
    }
    if (!ivshmem_common_realize(common, &s->shm, &ivshmem_doorbell_reg_ops,
                                errp)) {
        goto fail;
    }

    ivshmem_all_ioeventfds(s, true);
    ivshmem_own_vectors_start(s);
    qemu_chr_fe_set_handlers(&s->chr, ivshmem_chr_can_receive,
                             ivshmem_chr_receive, ivshmem_chr_event, NULL, s,
                             NULL, true);
    return;

fail:
    ivshmem_doorbell_cleanup(s);
}

static void ivshmem_doorbell_exit(PCIDevice *pdev)
{
    IvshmemDoorbellState *s = IVSHMEM_DOORBELL(pdev);

    ivshmem_all_ioeventfds(s, false);
    ivshmem_common_unrealize(IVSHMEM_COMMON(s));
    ivshmem_doorbell_cleanup(s);
}

static void ivshmem_doorbell_write_config(PCIDevice *pdev, uint32_t addr,
                                          uint32_t val, int len)
{
    pci_default_write_config(pdev, addr, val, len);
    ivshmem_irqfd_sync(IVSHMEM_DOORBELL(pdev));
}

static void ivshmem_doorbell_reset_hold(Object *obj, ResetType type)
{
    IvshmemDoorbellState *s = IVSHMEM_DOORBELL(obj);

    /*
     * The PCI core clears MSI-X Enable behind our back.  The server
     * connection stays.
     */
    ivshmem_irqfd_stop(s);
    ivshmem_common_reset_hold(obj, type);
}

static int ivshmem_doorbell_post_load(void *opaque, int version_id)
{
    ivshmem_irqfd_sync(opaque);
    return 0;
}

/* The original device's section, field for field. */
static const VMStateDescription vmstate_ivshmem_doorbell = {
    .name = TYPE_IVSHMEM_DOORBELL,
    .version_id = 0,
    .minimum_version_id = 0,
    .post_load = ivshmem_doorbell_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, IvshmemState),
        VMSTATE_MSIX(parent_obj, IvshmemState),
        VMSTATE_UINT32(intrstatus, IvshmemState),
        VMSTATE_UINT32(intrmask, IvshmemState),
        VMSTATE_END_OF_LIST()
    },
};

static const Property ivshmem_doorbell_properties[] = {
    DEFINE_PROP_CHR("chardev", IvshmemDoorbellState, chr),
    DEFINE_PROP_UINT32("vectors", IvshmemDoorbellState, vectors, 1),
    DEFINE_PROP_BOOL("ioeventfd", IvshmemDoorbellState, ioeventfd, true),
    DEFINE_PROP_UINT32("setup-timeout-ms", IvshmemDoorbellState,
                       setup_timeout_ms, IVSHMEM_DEFAULT_SETUP_TIMEOUT),
};

static void ivshmem_doorbell_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);

    k->realize = ivshmem_doorbell_realize;
    k->exit = ivshmem_doorbell_exit;
    k->config_write = ivshmem_doorbell_write_config;
    rc->phases.hold = ivshmem_doorbell_reset_hold;
    device_class_set_props(dc, ivshmem_doorbell_properties);
    object_class_property_set_description(klass, "chardev",
        "ID of a unix socket chardev connected to an ivshmem server");
    object_class_property_set_description(klass, "vectors",
        "number of MSI-X vectors (1-2048); must match the server's");
    object_class_property_set_description(klass, "ioeventfd",
        "let DOORBELL writes signal the peer's eventfd in the kernel");
    object_class_property_set_description(klass, "setup-timeout-ms",
        "how long realize waits for the server's handshake (1-10000 ms); "
        "the whole VM waits with it");
    dc->vmsd = &vmstate_ivshmem_doorbell;
    dc->desc = "Inter-VM shared memory and interrupts from an ivshmem server";
}

static const TypeInfo ivshmem_doorbell_info = {
    .name = TYPE_IVSHMEM_DOORBELL,
    .parent = TYPE_IVSHMEM_COMMON,
    .instance_size = sizeof(IvshmemDoorbellState),
    .class_init = ivshmem_doorbell_class_init,
};

static void ivshmem_doorbell_register_types(void)
{
    type_register_static(&ivshmem_doorbell_info);
}

type_init(ivshmem_doorbell_register_types)
