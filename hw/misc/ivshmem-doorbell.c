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
 * (docs/specs/ivshmem-spec.rst).  realize() reads that whole handshake
 * before it returns, bounded by setup-timeout-ms, so a realized device has
 * its memory, its final IVPOSITION and its peers; afterwards peers that
 * come and go are handled as the server reports them.
 *
 * A guest write to DOORBELL signals the destination peer's eventfd for the
 * vector: here in the write handler the first time, and from then on
 * through an ioeventfd when enabled (the write never leaves the kernel
 * under KVM).  Registering an ioeventfd only once the guest has rung that
 * peer and vector keeps realize and peer connects free of memory
 * transactions, whose cost grows with the ioeventfds already registered:
 * with N peers of V vectors, eager registration is quadratic in N * V, and
 * guests usually ring a few of them.  Our own eventfds are turned into
 * MSI-X messages: by KVM through irqfd where possible, else by a main-loop
 * fd handler.
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <sys/resource.h>
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

#define IVSHMEM_DOORBELL_MAX_VECTORS    1024
#define IVSHMEM_DEFAULT_SETUP_TIMEOUT   5000    /* ms */
#define IVSHMEM_MAX_SETUP_TIMEOUT       600000  /* ms */
#define IVSHMEM_DRAIN_BUDGET            1024    /* messages per wakeup */
/* A large setup grows the fd table at once: ivshmem_grow_fd_table() */
#define IVSHMEM_FD_BURST                128     /* queued messages */
#define IVSHMEM_FD_GROWTH               32      /* times the fd at hand */
#define IVSHMEM_FD_GROWTH_MAX           65536   /* more fds, at most */

OBJECT_DECLARE_SIMPLE_TYPE(IvshmemDoorbellState, IVSHMEM_DOORBELL)

/* One eventfd of a peer (or of ourselves): vector N of that peer. */
typedef struct IvshmemVector {
    EventNotifier notifier;
    bool ioeventfd;             /* registered on DOORBELL */
    bool queued;                /* rung, waiting in s->pending */
} IvshmemVector;

typedef struct IvshmemPeer {
    uint16_t id;
    uint32_t nvectors;          /* eventfds received, at most s->vectors */
    IvshmemVector *vectors;     /* s->vectors entries */
} IvshmemPeer;

/* How one of our own vectors reaches the guest. */
typedef struct IvshmemOwnVector {
    struct IvshmemDoorbellState *s;
    uint32_t vector;
    int virq;                   /* KVM MSI route, or -1 */
    bool irqfd;                 /* KVM delivers it, no fd handler */
} IvshmemOwnVector;

/* A server message being assembled from the byte stream. */
typedef struct IvshmemMsgReader {
    uint8_t buf[IVSHMEM_MSG_SIZE];
    uint32_t len;
    int fd;
} IvshmemMsgReader;

/* Where realize stands in the handshake. */
typedef enum IvshmemSetupState {
    SETUP_VERSION,
    SETUP_ID,
    SETUP_SHM,
    SETUP_PEERS,
    SETUP_DONE,
} IvshmemSetupState;

struct IvshmemDoorbellState {
    IvshmemState parent_obj;

    /* properties */
    CharBackend chr;
    uint32_t vectors;
    bool ioeventfd;
    uint32_t setup_timeout_ms;

    IvshmemSetupState setup;
    const char *setup_how;      /* what completed the handshake, for trace */
    uint32_t server_vectors;    /* inferred from a peer's fds, 0: unknown */
    int64_t run_peer;           /* peer whose fds are arriving, or -1 */
    uint32_t run_len;

    IvshmemMsgReader reader;
    MemoryRegion shm;
    GHashTable *peers;          /* peer ID -> IvshmemPeer, own ID included */
    IvshmemOwnVector *own;      /* s->vectors entries */
    bool msix_inited;
    bool vector_notifiers;
    GArray *pending;            /* rung DOORBELL values to add as ioeventfds */
    QEMUBH *ioeventfd_bh;
    QEMUBH *server_lost_bh;
    bool server_lost;

    int fd_room;                /* check the fd table again at this fd */

    uint32_t migrated_id;       /* the source's ID, in the early section */
};

static const char *ivshmem_chardev_name(IvshmemDoorbellState *s)
{
    Chardev *chr = qemu_chr_fe_get_driver(&s->chr);

    return chr ? chr->label : "?";
}

static uint32_t ivshmem_own_id(IvshmemDoorbellState *s)
{
    return IVSHMEM_COMMON(s)->ivposition;
}

/* Peers */

static IvshmemPeer *ivshmem_peer_get(IvshmemDoorbellState *s, uint16_t id)
{
    return g_hash_table_lookup(s->peers, GUINT_TO_POINTER(id));
}

static IvshmemPeer *ivshmem_peer_get_or_add(IvshmemDoorbellState *s,
                                            uint16_t id)
{
    IvshmemPeer *peer = ivshmem_peer_get(s, id);

    if (!peer) {
        peer = g_new0(IvshmemPeer, 1);
        peer->id = id;
        peer->vectors = g_new0(IvshmemVector, s->vectors);
        g_hash_table_insert(s->peers, GUINT_TO_POINTER(id), peer);
    }
    return peer;
}

/*
 * Take a peer's vectors off DOORBELL.  The caller brackets this with a
 * memory transaction, so removing many costs one.
 */
static uint32_t ivshmem_peer_del_ioeventfds(IvshmemDoorbellState *s,
                                            IvshmemPeer *peer)
{
    IvshmemState *c = IVSHMEM_COMMON(s);
    uint32_t n = 0;

    for (uint32_t v = 0; v < peer->nvectors; v++) {
        IvshmemVector *vec = &peer->vectors[v];

        if (vec->ioeventfd) {
            memory_region_del_eventfd(&c->regs, IVSHMEM_REG_DOORBELL, 4,
                                      true, IVSHMEM_DOORBELL_VALUE(peer->id, v),
                                      &vec->notifier);
            vec->ioeventfd = false;
            n++;
        }
    }
    return n;
}

static void ivshmem_peer_free(IvshmemDoorbellState *s, IvshmemPeer *peer)
{
    for (uint32_t v = 0; v < peer->nvectors; v++) {
        event_notifier_cleanup(&peer->vectors[v].notifier);
    }
    g_free(peer->vectors);
    g_free(peer);
}

/*
 * Register the vectors the guest has rung since the last run, in one memory
 * transaction.  The memory core sorts a region's ioeventfds on insertion,
 * so each registration costs more the more are registered already.
 */
static void ivshmem_sync_ioeventfds(void *opaque)
{
    IvshmemDoorbellState *s = opaque;
    IvshmemState *c = IVSHMEM_COMMON(s);
    uint32_t added = 0;

    if (!s->pending->len) {
        return;
    }
    memory_region_transaction_begin();
    for (guint i = 0; i < s->pending->len; i++) {
        uint32_t val = g_array_index(s->pending, uint32_t, i);
        IvshmemPeer *peer = ivshmem_peer_get(s, IVSHMEM_DOORBELL_PEER(val));
        uint32_t v = IVSHMEM_DOORBELL_VECTOR(val);
        IvshmemVector *vec;

        /*
         * The peer may have gone since it was rung, or come back under
         * the same ID with new eventfds that nobody rang yet.
         */
        if (!peer || v >= peer->nvectors || !peer->vectors[v].queued) {
            continue;
        }
        vec = &peer->vectors[v];
        vec->queued = false;
        if (vec->ioeventfd) {
            continue;
        }
        memory_region_add_eventfd(&c->regs, IVSHMEM_REG_DOORBELL, 4, true,
                                  val, &vec->notifier);
        vec->ioeventfd = true;
        added++;
    }
    memory_region_transaction_commit();
    g_array_set_size(s->pending, 0);
    trace_ivshmem_doorbell_ioeventfds(s, added, 0);
}

static void ivshmem_peer_remove(IvshmemDoorbellState *s, IvshmemPeer *peer)
{
    uint32_t removed;

    memory_region_transaction_begin();
    removed = ivshmem_peer_del_ioeventfds(s, peer);
    memory_region_transaction_commit();
    if (removed) {
        trace_ivshmem_doorbell_ioeventfds(s, 0, removed);
    }
    g_hash_table_remove(s->peers, GUINT_TO_POINTER(peer->id));
    ivshmem_peer_free(s, peer);
}

/* Our own vectors: eventfd -> MSI-X */

static void ivshmem_own_vector_fired(void *opaque)
{
    IvshmemOwnVector *ov = opaque;
    IvshmemDoorbellState *s = ov->s;
    IvshmemPeer *self = ivshmem_peer_get(s, ivshmem_own_id(s));

    if (!self || ov->vector >= self->nvectors) {
        return;
    }
    event_notifier_test_and_clear(&self->vectors[ov->vector].notifier);
    trace_ivshmem_doorbell_interrupt(s, ov->vector);
    /* msix_notify() sets the pending bit of a masked vector. */
    if (msix_enabled(PCI_DEVICE(s))) {
        msix_notify(PCI_DEVICE(s), ov->vector);
    }
}

static EventNotifier *ivshmem_own_notifier(IvshmemDoorbellState *s,
                                           uint32_t vector)
{
    IvshmemPeer *self = ivshmem_peer_get(s, ivshmem_own_id(s));

    if (!self || vector >= self->nvectors) {
        return NULL;
    }
    return &self->vectors[vector].notifier;
}

static void ivshmem_own_vector_watch(IvshmemDoorbellState *s, uint32_t v,
                                     bool on)
{
    EventNotifier *n = ivshmem_own_notifier(s, v);

    if (n) {
        qemu_set_fd_handler(event_notifier_get_fd(n),
                            on ? ivshmem_own_vector_fired : NULL, NULL,
                            on ? &s->own[v] : NULL);
    }
}

/*
 * The guest unmasked vector @v: let KVM deliver it straight from the
 * eventfd.  A vector the server never gave us an eventfd for cannot fire,
 * so there is nothing to connect.
 */
static int ivshmem_vector_unmask(PCIDevice *pdev, unsigned v, MSIMessage msg)
{
    IvshmemDoorbellState *s = IVSHMEM_DOORBELL(pdev);
    IvshmemOwnVector *ov = &s->own[v];
    EventNotifier *n = ivshmem_own_notifier(s, v);
    int ret;

    if (!n || ov->virq < 0) {
        return 0;
    }
    ret = kvm_irqchip_update_msi_route(kvm_state, ov->virq, msg, pdev);
    if (ret < 0) {
        return ret;
    }
    kvm_irqchip_commit_routes(kvm_state);
    if (!ov->irqfd) {
        ivshmem_own_vector_watch(s, v, false);
        ret = kvm_irqchip_add_irqfd_notifier_gsi(kvm_state, n, NULL, ov->virq);
        if (ret < 0) {
            ivshmem_own_vector_watch(s, v, true);
            return ret;
        }
        ov->irqfd = true;
        trace_ivshmem_doorbell_irqfd(s, v, ov->virq, true);
    }
    return 0;
}

/* The guest masked vector @v: catch it in QEMU, to set the pending bit. */
static void ivshmem_vector_mask(PCIDevice *pdev, unsigned v)
{
    IvshmemDoorbellState *s = IVSHMEM_DOORBELL(pdev);
    IvshmemOwnVector *ov = &s->own[v];
    EventNotifier *n = ivshmem_own_notifier(s, v);

    if (!n || !ov->irqfd) {
        return;
    }
    kvm_irqchip_remove_irqfd_notifier_gsi(kvm_state, n, ov->virq);
    ov->irqfd = false;
    ivshmem_own_vector_watch(s, v, true);
    trace_ivshmem_doorbell_irqfd(s, v, ov->virq, false);
}

static void ivshmem_vector_poll(PCIDevice *pdev, unsigned start, unsigned end)
{
    IvshmemDoorbellState *s = IVSHMEM_DOORBELL(pdev);

    for (unsigned v = start; v < end && v < s->vectors; v++) {
        EventNotifier *n = ivshmem_own_notifier(s, v);

        if (n && msix_is_masked(pdev, v) && event_notifier_test_and_clear(n)) {
            msix_set_pending(pdev, v);
        }
    }
}

static bool ivshmem_use_irqfd(IvshmemDoorbellState *s)
{
    return kvm_enabled() && kvm_msi_via_irqfd_enabled();
}

/* Start delivering our own vectors; called once setup has received them. */
static void ivshmem_own_vectors_start(IvshmemDoorbellState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    for (uint32_t v = 0; v < s->vectors; v++) {
        msix_vector_use(pdev, v);
        ivshmem_own_vector_watch(s, v, true);
    }
    if (ivshmem_use_irqfd(s)) {
        KVMRouteChange c = kvm_irqchip_begin_route_changes(kvm_state);

        /*
         * The routes start empty: the guest has not enabled MSI-X yet, so
         * there is no message to read.  ivshmem_vector_unmask() fills in
         * the guest's message before a route is used.
         */
        for (uint32_t v = 0; v < s->vectors; v++) {
            if (ivshmem_own_notifier(s, v)) {
                s->own[v].virq = kvm_irqchip_add_msi_route(&c, v, NULL);
            }
        }
        kvm_irqchip_commit_route_changes(&c);
        if (msix_set_vector_notifiers(pdev, ivshmem_vector_unmask,
                                      ivshmem_vector_mask,
                                      ivshmem_vector_poll) == 0) {
            s->vector_notifiers = true;
        }
    }
}

static void ivshmem_own_vectors_stop(IvshmemDoorbellState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    if (!s->own) {
        return;
    }
    if (s->vector_notifiers) {
        /* Masks every unmasked vector through ivshmem_vector_mask(). */
        msix_unset_vector_notifiers(pdev);
        s->vector_notifiers = false;
    }
    for (uint32_t v = 0; v < s->vectors; v++) {
        ivshmem_own_vector_watch(s, v, false);
        if (s->own[v].virq >= 0) {
            kvm_irqchip_release_virq(kvm_state, s->own[v].virq);
            s->own[v].virq = -1;
        }
    }
    if (s->msix_inited) {
        msix_unuse_all_vectors(pdev);
    }
}

/* Server messages */

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

/* Messages the server has already queued on the socket, or 0. */
static int ivshmem_queued_msgs(IvshmemDoorbellState *s)
{
    Chardev *chr = qemu_chr_fe_get_driver(&s->chr);
    SocketChardev *sc = chr ? SOCKET_CHARDEV(chr) : NULL;
    int bytes;

    if (!sc || !sc->sioc || ioctl(sc->sioc->fd, FIONREAD, &bytes) < 0) {
        return 0;
    }
    return bytes / IVSHMEM_MSG_SIZE;
}

/*
 * Make room in the fd table for the fds the server is sending.  The
 * kernel doubles a process's fd table when an fd does not fit, and in a
 * process with threads each growth waits for an RCU grace period (10 to
 * 20 ms each on the machine that measured it): 1024 peers of 8 vectors
 * took seven growths, most of realize.  When the server has a burst of
 * messages queued for us (each may carry an fd), grow the table to
 * IVSHMEM_FD_GROWTH times the fd at hand (at most IVSHMEM_FD_GROWTH_MAX
 * more) in one step, by taking an fd that high and giving it back at once.
 * A small setup, which may need no growth at all, is left alone; so is
 * everything on a kernel whose socket buffer holds fewer messages.  Only a
 * speed-up: the kernel grows the table as it needs to anyway.
 */
static void ivshmem_grow_fd_table(IvshmemDoorbellState *s, int fd)
{
    int64_t want = MIN((int64_t)fd * IVSHMEM_FD_GROWTH,
                       (int64_t)fd + IVSHMEM_FD_GROWTH_MAX);
    struct rlimit rl;
    int high;

    if (fd < s->fd_room) {
        return;
    }
    if (ivshmem_queued_msgs(s) < IVSHMEM_FD_BURST) {
        /* Look again later. */
        s->fd_room = MIN((int64_t)fd + IVSHMEM_FD_BURST, INT_MAX);
        return;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        want = MIN(want, (int64_t)rl.rlim_cur - 1);
    }
    want = MIN(want, INT_MAX);
    s->fd_room = MAX(want, fd + 1);
    if (want <= fd) {
        return;
    }
    high = fcntl(fd, F_DUPFD_CLOEXEC, (int)want);
    if (high >= 0) {
        close(high);
    }
}

/* A peer's (or our) next eventfd: it is vector N for the N-th message. */
static void ivshmem_add_vector(IvshmemDoorbellState *s, uint16_t id, int fd)
{
    IvshmemPeer *peer = ivshmem_peer_get_or_add(s, id);

    ivshmem_grow_fd_table(s, fd);

    if (peer->nvectors >= s->vectors) {
        /* The server has more vectors than this device; unreachable. */
        trace_ivshmem_doorbell_msg_ignored(s, id, fd,
                                           "more vectors than the device has");
        close(fd);
        return;
    }
    /*
     * The server's eventfds may be blocking; ours are read from the MSI-X
     * poll notifier and after a spurious wakeup, which must not block.
     */
    if (!g_unix_set_fd_nonblocking(fd, true, NULL)) {
        trace_ivshmem_doorbell_msg_ignored(s, id, fd, "not an eventfd");
        close(fd);
        return;
    }
    event_notifier_init_fd(&peer->vectors[peer->nvectors].notifier, fd);
    trace_ivshmem_doorbell_peer_vector(s, id, peer->nvectors, fd);
    peer->nvectors++;

    if (s->setup == SETUP_DONE && id == ivshmem_own_id(s)) {
        /* The server sent more of ours than it did at setup. */
        ivshmem_own_vector_watch(s, peer->nvectors - 1, true);
    }
}

/*
 * Learn the server's vector count from the first peer whose fds we see
 * during setup: they arrive as one run per peer.
 */
static void ivshmem_count_run(IvshmemDoorbellState *s, int64_t id)
{
    if (s->server_vectors) {
        return;
    }
    if (s->run_peer < 0 && id != ivshmem_own_id(s)) {
        s->run_peer = id;
    }
    if (s->run_peer < 0) {
        return;         /* no other peer: our own fds came first */
    }
    if (id == s->run_peer) {
        s->run_len++;
    } else {
        /* The next peer's, or our own, fds end the first peer's run. */
        s->server_vectors = s->run_len;
    }
}

static uint32_t ivshmem_own_vector_count(IvshmemDoorbellState *s)
{
    IvshmemPeer *self = ivshmem_peer_get(s, ivshmem_own_id(s));

    return self ? self->nvectors : 0;
}

static void ivshmem_setup_check_done(IvshmemDoorbellState *s)
{
    uint32_t own = ivshmem_own_vector_count(s);

    if (own == s->vectors) {
        s->setup_how = "all vectors";
    } else if (own && s->server_vectors && own >= s->server_vectors) {
        s->setup_how = "all of the server's vectors";
    } else {
        return;
    }
    s->setup = SETUP_DONE;
}

/*
 * Apply a handshake message.  Takes @fd: keeps it (the shared memory, a
 * vector) or closes it, also when it fails.
 */
static bool ivshmem_handle_setup_msg(IvshmemDoorbellState *s, int64_t msg,
                                     int fd, Error **errp)
{
    IvshmemState *c = IVSHMEM_COMMON(s);

    switch (s->setup) {
    case SETUP_VERSION:
        if (msg != IVSHMEM_PROTOCOL_VERSION || fd >= 0) {
            error_setg(errp, "the ivshmem server on chardev '%s' speaks "
                       "protocol version %" PRId64 "%s; this device speaks "
                       "version %d", ivshmem_chardev_name(s), msg,
                       fd >= 0 ? " (with a file descriptor)" : "",
                       IVSHMEM_PROTOCOL_VERSION);
            goto fail;
        }
        s->setup = SETUP_ID;
        return true;
    case SETUP_ID:
        if (msg < 0 || msg > IVSHMEM_MAX_PEER_ID || fd >= 0) {
            error_setg(errp, "the ivshmem server on chardev '%s' assigned "
                       "invalid peer ID %" PRId64 "%s", ivshmem_chardev_name(s),
                       msg, fd >= 0 ? " (with a file descriptor)" : "");
            goto fail;
        }
        c->ivposition = msg;
        s->setup = SETUP_SHM;
        return true;
    case SETUP_SHM:
        if (msg != IVSHMEM_MSG_SHM || fd < 0) {
            error_setg(errp, "the ivshmem server on chardev '%s' sent "
                       "message %" PRId64 " %s file descriptor where the "
                       "shared memory was expected", ivshmem_chardev_name(s),
                       msg, fd >= 0 ? "with a" : "without a");
            goto fail;
        }
        if (!ivshmem_map_shm(s, fd, errp)) {
            return false;
        }
        s->setup = SETUP_PEERS;
        return true;
    default:
        break;
    }

    /* SETUP_PEERS: eventfds of the peers, then ours. */
    if (msg < 0 || msg > IVSHMEM_MAX_PEER_ID) {
        error_setg(errp, "the ivshmem server on chardev '%s' sent invalid "
                   "message %" PRId64 " during setup",
                   ivshmem_chardev_name(s), msg);
        goto fail;
    }
    if (fd >= 0) {
        ivshmem_count_run(s, msg);
        ivshmem_add_vector(s, msg, fd);
        ivshmem_setup_check_done(s);
        return true;
    }
    if (msg == ivshmem_own_id(s)) {
        error_setg(errp, "the ivshmem server on chardev '%s' disconnected "
                   "this device during setup", ivshmem_chardev_name(s));
        return false;
    }
    if (!ivshmem_peer_get(s, msg)) {
        /*
         * A disconnect for a peer we never heard of means nothing in
         * version 0; our server sends it after our own eventfds to mark
         * the end of setup (see the spec).
         */
        if (ivshmem_peer_get(s, ivshmem_own_id(s))) {
            s->setup_how = "setup-end marker";
            s->setup = SETUP_DONE;
        }
        return true;
    }
    ivshmem_peer_remove(s, ivshmem_peer_get(s, msg));
    return true;

fail:
    if (fd >= 0) {
        close(fd);
    }
    return false;
}

/* A message after setup: peers come and go; bad ones are reported only. */
static void ivshmem_handle_msg(IvshmemDoorbellState *s, int64_t msg, int fd)
{
    IvshmemPeer *peer;

    if (msg < 0 || msg > IVSHMEM_MAX_PEER_ID) {
        error_report("ivshmem-doorbell: the server on chardev '%s' sent "
                     "invalid message %" PRId64 "%s; ignored",
                     ivshmem_chardev_name(s), msg,
                     msg == IVSHMEM_MSG_SHM ? " (a second shared memory)" : "");
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    if (fd >= 0) {
        ivshmem_add_vector(s, msg, fd);
        return;
    }
    if (msg == ivshmem_own_id(s)) {
        error_report("ivshmem-doorbell: the server on chardev '%s' reports "
                     "this device (peer %" PRId64 ") as gone; ignored",
                     ivshmem_chardev_name(s), msg);
        return;
    }
    peer = ivshmem_peer_get(s, msg);
    if (!peer) {
        trace_ivshmem_doorbell_msg_ignored(s, msg, fd, "unknown peer gone");
        return;
    }
    trace_ivshmem_doorbell_peer_gone(s, msg);
    ivshmem_peer_remove(s, peer);
}

/*
 * Add @len bytes and maybe an fd to the message being assembled.  Returns
 * true when a whole message is ready in @msg / @fd.
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

static void ivshmem_setup_timed_out(IvshmemDoorbellState *s, Error **errp)
{
    error_setg(errp, "the ivshmem server on chardev '%s' did not complete "
               "the handshake within %u ms", ivshmem_chardev_name(s),
               s->setup_timeout_ms);
    if (s->setup == SETUP_PEERS) {
        error_append_hint(errp, "It sent %u of the %u vectors this device "
                          "has; every device on a server must use the "
                          "server's vector count.\n",
                          ivshmem_own_vector_count(s), s->vectors);
    }
}

/*
 * Read from the server's socket, without blocking, until a whole message
 * is assembled.  Each read asks for at most the rest of one message, so a
 * file descriptor can only arrive with the message it belongs to.
 * Returns 1 with the message in @msg and @fd, 0 when the socket has
 * nothing more for now, -1 at end of file or on error.
 */
static int ivshmem_read_msg(IvshmemDoorbellState *s, QIOChannel *ioc,
                            int64_t *msg, int *fd, Error **errp)
{
    for (;;) {
        uint8_t buf[IVSHMEM_MSG_SIZE];
        struct iovec iov = {
            .iov_base = buf,
            .iov_len = IVSHMEM_MSG_SIZE - s->reader.len,
        };
        int *fds = NULL;
        size_t nfds = 0;
        int msg_fd = -1;
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
        if (nfds) {
            msg_fd = fds[0];
        }
        g_free(fds);
        if (n == 0) {
            if (msg_fd >= 0) {
                close(msg_fd);
            }
            error_setg(errp, "the ivshmem server on chardev '%s' closed the "
                       "connection%s", ivshmem_chardev_name(s),
                       s->setup != SETUP_DONE ? " during the handshake" : "");
            return -1;
        }
        if (ivshmem_reader_feed(&s->reader, buf, n, msg_fd, msg, fd)) {
            trace_ivshmem_doorbell_msg(s, *msg, *fd);
            return 1;
        }
    }
}

/*
 * Read the handshake in realize.  The chardev's frontend handlers are not
 * installed yet, so we are the only reader of the socket.
 */
static bool ivshmem_read_setup(IvshmemDoorbellState *s, QIOChannelSocket *sioc,
                               Error **errp)
{
    int64_t deadline = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                       s->setup_timeout_ms;

    while (s->setup != SETUP_DONE) {
        int64_t left = deadline - qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
        GPollFD pfd = { .fd = sioc->fd, .events = G_IO_IN | G_IO_HUP };
        int64_t msg;
        int fd, ret;

        /* Bounded also for a server that never stops talking. */
        if (left <= 0) {
            ivshmem_setup_timed_out(s, errp);
            return false;
        }
        ret = ivshmem_read_msg(s, QIO_CHANNEL(sioc), &msg, &fd, errp);
        if (ret < 0) {
            return false;
        }
        if (ret == 0) {
            /* Wait only when there is nothing to read. */
            if (qemu_poll_ns(&pfd, 1, left * SCALE_MS) == 0) {
                ivshmem_setup_timed_out(s, errp);
                return false;
            }
            continue;
        }
        if (!ivshmem_handle_setup_msg(s, msg, fd, errp)) {
            return false;
        }
    }
    return true;
}

/* Asynchronous messages, after realize */

static int ivshmem_chr_can_receive(void *opaque)
{
    IvshmemDoorbellState *s = opaque;

    return IVSHMEM_MSG_SIZE - s->reader.len;
}

/*
 * Handle what the server has already queued on the socket, up to a budget.
 * A peer joins with one message per vector, and the chardev hands us one
 * message per main loop iteration (a poll, a dispatch and a read of 8
 * bytes): reading the rest of a burst here handles it in one iteration.
 * The budget keeps a chatty server from starving the loop.
 */
static void ivshmem_drain_socket(IvshmemDoorbellState *s)
{
    SocketChardev *sc = SOCKET_CHARDEV(qemu_chr_fe_get_driver(&s->chr));

    for (int i = 0; i < IVSHMEM_DRAIN_BUDGET && sc->sioc; i++) {
        int64_t msg;
        int fd;

        /* At end of file the chardev sees the hang-up and tells us. */
        if (ivshmem_read_msg(s, QIO_CHANNEL(sc->sioc), &msg, &fd, NULL) <= 0) {
            return;
        }
        ivshmem_handle_msg(s, msg, fd);
    }
}

static void ivshmem_chr_receive(void *opaque, const uint8_t *buf, int size)
{
    IvshmemDoorbellState *s = opaque;
    int fd = qemu_chr_fe_get_msgfd(&s->chr);
    int64_t msg;

    if (s->server_lost) {
        /* A reconnected chardev: its stream starts a new handshake. */
        trace_ivshmem_doorbell_msg_ignored(s, -1, fd, "server was lost");
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    if (ivshmem_reader_feed(&s->reader, buf, size, fd, &msg, &fd)) {
        trace_ivshmem_doorbell_msg(s, msg, fd);
        ivshmem_handle_msg(s, msg, fd);
        ivshmem_drain_socket(s);
    }
}

static void ivshmem_warn_server_lost(void *opaque)
{
    IvshmemDoorbellState *s = opaque;

    warn_report("ivshmem-doorbell: lost the ivshmem server on chardev '%s'; "
                "the shared memory and the known peers stay, but peers that "
                "come or go from now on are not seen",
                ivshmem_chardev_name(s));
}

static void ivshmem_chr_event(void *opaque, QEMUChrEvent event)
{
    IvshmemDoorbellState *s = opaque;

    if (event != CHR_EVENT_CLOSED || s->server_lost) {
        return;
    }
    trace_ivshmem_doorbell_server_closed(s);
    s->server_lost = true;
    ivshmem_reader_reset(&s->reader);
    /*
     * Chardevs are closed when QEMU exits, too; warning from a bottom
     * half keeps that quiet, since the main loop does not run again then.
     */
    qemu_bh_schedule(s->server_lost_bh);
}

/* DOORBELL, when no ioeventfd took the write */

static void ivshmem_doorbell_ring(IvshmemState *c, uint16_t id, uint16_t v)
{
    IvshmemDoorbellState *s = IVSHMEM_DOORBELL(c);
    IvshmemPeer *peer = ivshmem_peer_get(s, id);
    IvshmemVector *vec;

    if (!peer) {
        trace_ivshmem_doorbell_ignored(s, id, v, "no such peer");
        return;
    }
    if (v >= peer->nvectors) {
        trace_ivshmem_doorbell_ignored(s, id, v, "no such vector");
        return;
    }
    vec = &peer->vectors[v];
    trace_ivshmem_doorbell_ring(s, id, v);
    event_notifier_set(&vec->notifier);
    /* Let an ioeventfd take this peer and vector from the next write on. */
    if (s->ioeventfd && !vec->ioeventfd && !vec->queued) {
        uint32_t val = IVSHMEM_DOORBELL_VALUE(id, v);

        vec->queued = true;
        g_array_append_val(s->pending, val);
        qemu_bh_schedule(s->ioeventfd_bh);
    }
}

/* realize / unrealize */

static bool ivshmem_check_chardev(IvshmemDoorbellState *s,
                                  QIOChannelSocket **sioc, Error **errp)
{
    Chardev *chr = qemu_chr_fe_get_driver(&s->chr);
    SocketChardev *sc;

    if (!chr) {
        error_setg(errp, "property 'chardev' is required");
        error_append_hint(errp, "Connect the device to an ivshmem server "
                          "with chardev=ID of a unix socket chardev.\n");
        return false;
    }
    if (!object_dynamic_cast(OBJECT(chr), TYPE_CHARDEV_SOCKET) ||
        !qemu_chr_has_feature(chr, QEMU_CHAR_FEATURE_FD_PASS)) {
        error_setg(errp, "chardev '%s' is not a unix socket", chr->label);
        error_append_hint(errp, "The ivshmem server passes file descriptors; "
                          "only a unix socket chardev can carry them.\n");
        return false;
    }
    sc = SOCKET_CHARDEV(chr);
    /*
     * A client chardev is disconnected when a device on it was unplugged
     * (the server must forget that peer), so connect it again.  Connecting
     * to a unix socket does not block; waiting for a client to connect to
     * a listening chardev would, so that is an error instead.
     */
    if (!sc->sioc && !sc->is_listen) {
        Error *err = NULL;

        if (qemu_chr_fe_wait_connected(&s->chr, &err) < 0) {
            error_propagate_prepend(errp, err, "cannot connect chardev '%s' "
                                    "to the ivshmem server: ", chr->label);
            return false;
        }
    }
    if (!sc->sioc) {
        error_setg(errp, "chardev '%s' is not connected to an ivshmem server",
                   chr->label);
        return false;
    }
    *sioc = sc->sioc;
    return true;
}

static void ivshmem_doorbell_cleanup(IvshmemDoorbellState *s)
{
    GHashTableIter it;
    IvshmemPeer *peer;
    uint32_t removed = 0;

    qemu_chr_fe_set_handlers(&s->chr, NULL, NULL, NULL, NULL, NULL, NULL,
                             true);
    /*
     * Leave the server: it frees our ID and tells the other peers, and a
     * connection that a failed handshake left in the middle of a message
     * is not reused.
     */
    if (qemu_chr_fe_backend_connected(&s->chr)) {
        qemu_chr_fe_disconnect(&s->chr);
    }
    ivshmem_own_vectors_stop(s);
    g_clear_pointer(&s->ioeventfd_bh, qemu_bh_delete);
    g_clear_pointer(&s->server_lost_bh, qemu_bh_delete);
    if (s->peers) {
        memory_region_transaction_begin();
        g_hash_table_iter_init(&it, s->peers);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&peer)) {
            removed += ivshmem_peer_del_ioeventfds(s, peer);
        }
        memory_region_transaction_commit();
        trace_ivshmem_doorbell_ioeventfds(s, 0, removed);
        g_hash_table_iter_init(&it, s->peers);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&peer)) {
            g_hash_table_iter_steal(&it);
            ivshmem_peer_free(s, peer);
        }
        g_clear_pointer(&s->peers, g_hash_table_destroy);
    }
    ivshmem_reader_reset(&s->reader);
    if (s->msix_inited) {
        msix_uninit_exclusive_bar(PCI_DEVICE(s));
        s->msix_inited = false;
    }
    g_clear_pointer(&s->own, g_free);
    if (s->pending) {
        g_array_free(s->pending, true);
        s->pending = NULL;
    }
    /* The shared memory's RAM block goes with the device (it owns it). */
}

static const VMStateDescription vmstate_ivshmem_doorbell_id;

static void ivshmem_doorbell_realize(PCIDevice *pdev, Error **errp)
{
    IvshmemDoorbellState *s = IVSHMEM_DOORBELL(pdev);
    IvshmemState *c = IVSHMEM_COMMON(s);
    QIOChannelSocket *sioc;
    g_autofree char *desc = NULL;
    g_autofree char *why_not = NULL;

    if (s->vectors < 1 || s->vectors > IVSHMEM_DOORBELL_MAX_VECTORS) {
        error_setg(errp, "vectors=%u is out of range: the device supports "
                   "1 to %u vectors", s->vectors,
                   IVSHMEM_DOORBELL_MAX_VECTORS);
        return;
    }
    if (s->setup_timeout_ms < 1 ||
        s->setup_timeout_ms > IVSHMEM_MAX_SETUP_TIMEOUT) {
        error_setg(errp, "setup-timeout-ms=%u is out of range: 1 to %u",
                   s->setup_timeout_ms, IVSHMEM_MAX_SETUP_TIMEOUT);
        return;
    }
    if (!ivshmem_check_chardev(s, &sioc, errp)) {
        return;
    }

    s->peers = g_hash_table_new(NULL, NULL);
    s->pending = g_array_new(false, false, sizeof(uint32_t));
    s->own = g_new0(IvshmemOwnVector, s->vectors);
    for (uint32_t v = 0; v < s->vectors; v++) {
        s->own[v] = (IvshmemOwnVector) { .s = s, .vector = v, .virq = -1 };
    }
    s->setup = SETUP_VERSION;
    s->run_peer = -1;
    s->reader.fd = -1;

    if (!ivshmem_read_setup(s, sioc, errp)) {
        goto fail;
    }
    trace_ivshmem_doorbell_setup_done(s, c->ivposition,
                                      g_hash_table_size(s->peers) - 1,
                                      ivshmem_own_vector_count(s),
                                      s->setup_how);

    if (msix_init_exclusive_bar(pdev, s->vectors, IVSHMEM_MSIX_BAR, errp)) {
        goto fail;
    }
    s->msix_inited = true;

    desc = g_strdup_printf("the shared memory from chardev '%s'",
                           ivshmem_chardev_name(s));
    why_not = g_strdup_printf("the server assigned peer ID %u; only the "
                              "server's first client, peer 0, can be master",
                              c->ivposition);
    if (!ivshmem_common_realize(c, &s->shm, memory_region_get_fd(&s->shm),
                                desc, c->ivposition == 0, why_not, errp)) {
        goto fail;
    }

    ivshmem_own_vectors_start(s);
    s->ioeventfd_bh = qemu_bh_new_guarded(ivshmem_sync_ioeventfds, s,
                                          &DEVICE(s)->mem_reentrancy_guard);
    s->server_lost_bh = qemu_bh_new(ivshmem_warn_server_lost, s);
    qemu_chr_fe_set_handlers(&s->chr, ivshmem_chr_can_receive,
                             ivshmem_chr_receive, ivshmem_chr_event, NULL, s,
                             NULL, true);
    vmstate_register(VMSTATE_IF(s), VMSTATE_INSTANCE_ID_ANY,
                     &vmstate_ivshmem_doorbell_id, s);
    return;

fail:
    ivshmem_doorbell_cleanup(s);
}

static void ivshmem_doorbell_exit(PCIDevice *pdev)
{
    IvshmemDoorbellState *s = IVSHMEM_DOORBELL(pdev);

    vmstate_unregister(VMSTATE_IF(s), &vmstate_ivshmem_doorbell_id, s);
    ivshmem_common_unrealize(IVSHMEM_COMMON(s));
    ivshmem_doorbell_cleanup(s);
}

static void ivshmem_doorbell_reset(DeviceState *dev)
{
    /* MSI-X is reset by the PCI core; the server connection stays. */
    ivshmem_common_reset(IVSHMEM_COMMON(dev));
}

/* Migration */

static int ivshmem_doorbell_id_pre_save(void *opaque)
{
    IvshmemDoorbellState *s = opaque;

    s->migrated_id = ivshmem_own_id(s);
    return 0;
}

static int ivshmem_doorbell_id_post_load(void *opaque, int version_id)
{
    IvshmemDoorbellState *s = opaque;

    if (s->migrated_id != ivshmem_own_id(s)) {
        error_report("ivshmem-doorbell '%s': the guest has peer ID %u, but "
                     "the ivshmem server on chardev '%s' gave this device "
                     "peer ID %u; a guest's peer ID cannot change",
                     ivshmem_device_name(IVSHMEM_COMMON(s)), s->migrated_id,
                     ivshmem_chardev_name(s), ivshmem_own_id(s));
        return -EINVAL;
    }
    return 0;
}

/*
 * The peer ID, sent at the start of migration (early_setup): a destination
 * whose server assigned a different ID fails the migration while the
 * source is still running, before any RAM is copied.  The priority sorts
 * it ahead of RAM's setup section, which would otherwise fail first, with
 * a less helpful message, on the shared memory a non-master destination
 * does not migrate.
 */
static const VMStateDescription vmstate_ivshmem_doorbell_id = {
    .name = "ivshmem-doorbell-id",
    .version_id = 1,
    .minimum_version_id = 1,
    .early_setup = true,
    .priority = MIG_PRI_IOMMU,
    .pre_save = ivshmem_doorbell_id_pre_save,
    .post_load = ivshmem_doorbell_id_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(migrated_id, IvshmemDoorbellState),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_ivshmem_doorbell = {
    .name = TYPE_IVSHMEM_DOORBELL,
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(parent_obj, IvshmemDoorbellState, 1,
                       vmstate_ivshmem_registers, IvshmemState),
        VMSTATE_MSIX(parent_obj.parent_obj, IvshmemDoorbellState),
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

static void ivshmem_doorbell_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);
    IvshmemClass *ic = IVSHMEM_COMMON_CLASS(klass);

    k->realize = ivshmem_doorbell_realize;
    k->exit = ivshmem_doorbell_exit;
    ic->doorbell = ivshmem_doorbell_ring;
    device_class_set_legacy_reset(dc, ivshmem_doorbell_reset);
    device_class_set_props(dc, ivshmem_doorbell_properties);
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
