/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ivshmem-client library: an incremental parser of the ivshmem version 0
 * protocol (with the optional setup-end marker), the peer table it
 * builds, the shared memory mapping, and ring/wait on eventfds.
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/un.h>
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/host-utils.h"
#include "ivshmem-client.h"

/* More fds than one per message is a protocol error; room to see it. */
#define CLIENT_MAX_FDS_PER_READ 4

typedef enum ClientState {
    STATE_VERSION,      /* waiting for the protocol version */
    STATE_ID,           /* waiting for our own ID */
    STATE_SHM,          /* waiting for the shared memory */
    STATE_PEERS,        /* peers' and own vectors, connects, disconnects */
    STATE_FAILED,       /* a protocol or socket error happened */
} ClientState;

/* A peer (or ourselves) and its eventfds, in vector order. */
typedef struct ClientPeer {
    unsigned id;
    GArray *fds;
} ClientPeer;

struct IvshmemClient {
    int sock;
    ClientState state;
    char *failure;              /* why STATE_FAILED */

    uint8_t msg[IVSHMEM_MSG_SIZE];
    size_t have;                /* bytes of @msg received */
    int msg_fd;                 /* fd that came with @msg, or -1 */
    int64_t last_msg_us;        /* when the last message was complete */

    int id;
    void *shm;
    uint64_t shm_size;
    GTree *peers;               /* ID -> ClientPeer, own ID included */
    bool setup_done;

    IvshmemClientNotifyFn *notify;
    void *notify_opaque;
};

static gint compare_ids(gconstpointer a, gconstpointer b, gpointer unused)
{
    unsigned x = GPOINTER_TO_UINT(a), y = GPOINTER_TO_UINT(b);

    return x < y ? -1 : x > y;
}

static void peer_free(gpointer data)
{
    ClientPeer *peer = data;
    unsigned i;

    for (i = 0; i < peer->fds->len; i++) {
        close(g_array_index(peer->fds, int, i));
    }
    g_array_free(peer->fds, true);
    g_free(peer);
}

static void close_fd(int fd)
{
    if (fd >= 0) {
        close(fd);
    }
}

IvshmemClient *ivshmem_client_new(void)
{
    IvshmemClient *c = g_new0(IvshmemClient, 1);

    c->sock = -1;
    c->msg_fd = -1;
    c->id = -1;
    c->state = STATE_VERSION;
    c->peers = g_tree_new_full(compare_ids, NULL, NULL, peer_free);
    return c;
}

void ivshmem_client_free(IvshmemClient *c)
{
    if (!c) {
        return;
    }
    close_fd(c->sock);
    close_fd(c->msg_fd);
    if (c->shm) {
        munmap(c->shm, c->shm_size);
    }
    g_tree_destroy(c->peers);
    g_free(c->failure);
    g_free(c);
}

void ivshmem_client_set_notify(IvshmemClient *c, IvshmemClientNotifyFn *fn,
                               void *opaque)
{
    c->notify = fn;
    c->notify_opaque = opaque;
}

static void client_notify(IvshmemClient *c, IvshmemClientEvent event,
                          unsigned id, unsigned vector)
{
    if (c->notify) {
        c->notify(c->notify_opaque, event, id, vector);
    }
}

/* Enter the failed state; every later call reports the same reason. */
static bool client_fail(IvshmemClient *c, Error *err, Error **errp)
{
    c->state = STATE_FAILED;
    g_free(c->failure);
    c->failure = g_strdup(error_get_pretty(err));
    close_fd(c->msg_fd);
    c->msg_fd = -1;
    error_propagate(errp, err);
    return false;
}

static bool client_check_failed(IvshmemClient *c, Error **errp)
{
    if (c->state == STATE_FAILED) {
        error_setg(errp, "ivshmem client stopped: %s", c->failure);
        return true;
    }
    return false;
}

bool ivshmem_client_connect(IvshmemClient *c, const char *path,
                            Error **errp)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd;

    if (c->sock >= 0) {
        error_setg(errp, "already connected");
        return false;
    }
    if (strlen(path) >= sizeof(addr.sun_path)) {
        error_setg(errp, "socket path '%s' is too long", path);
        return false;
    }
    pstrcpy(addr.sun_path, sizeof(addr.sun_path), path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create a socket");
        return false;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        error_setg_errno(errp, errno, "cannot connect to '%s'", path);
        close(fd);
        return false;
    }
    if (!g_unix_set_fd_nonblocking(fd, true, NULL)) {
        error_setg_errno(errp, errno, "cannot make the socket non-blocking");
        close(fd);
        return false;
    }
    c->sock = fd;
    return true;
}

int ivshmem_client_get_fd(IvshmemClient *c)
{
    return c->sock;
}

/* Message handlers: each takes ownership of @fd. */

static bool handle_version(IvshmemClient *c, int64_t val, int fd,
                           Error **errp)
{
    close_fd(fd);
    if (fd >= 0) {
        error_setg(errp, "the protocol version message carries an fd");
        return false;
    }
    if (val != IVSHMEM_PROTOCOL_VERSION) {
        error_setg(errp, "unsupported protocol version %" PRId64
                   " (this client speaks version %d)", val,
                   IVSHMEM_PROTOCOL_VERSION);
        return false;
    }
    c->state = STATE_ID;
    return true;
}

static bool handle_own_id(IvshmemClient *c, int64_t val, int fd,
                          Error **errp)
{
    close_fd(fd);
    if (fd >= 0) {
        error_setg(errp, "the own ID message carries an fd");
        return false;
    }
    if (val < 0 || val > IVSHMEM_MAX_PEER_ID) {
        error_setg(errp, "invalid own ID %" PRId64 " (valid: 0 to %d)", val,
                   IVSHMEM_MAX_PEER_ID);
        return false;
    }
    c->id = val;
    c->state = STATE_SHM;
    return true;
}

static bool handle_shm(IvshmemClient *c, int64_t val, int fd, Error **errp)
{
    struct stat st;
    void *ptr;

    if (val != IVSHMEM_MSG_SHM || fd < 0) {
        close_fd(fd);
        error_setg(errp, "expected the shared memory (%d with an fd), got %"
                   PRId64 " %s", IVSHMEM_MSG_SHM, val,
                   fd < 0 ? "without an fd" : "with an fd");
        return false;
    }
    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "cannot stat the shared memory");
        close(fd);
        return false;
    }
    if (st.st_size <= 0) {
        error_setg(errp, "the shared memory is empty");
        close(fd);
        return false;
    }
    if (!is_power_of_2(st.st_size)) {
        error_setg(errp, "the shared memory's size %" PRId64 " is not a "
                   "power of two", (int64_t)st.st_size);
        close(fd);
        return false;
    }
    ptr = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (ptr == MAP_FAILED) {
        error_setg_errno(errp, errno, "cannot map %" PRId64 " bytes of "
                         "shared memory", (int64_t)st.st_size);
        return false;
    }
    c->shm = ptr;
    c->shm_size = st.st_size;
    c->state = STATE_PEERS;
    return true;
}

static ClientPeer *client_lookup(IvshmemClient *c, unsigned id)
{
    return g_tree_lookup(c->peers, GUINT_TO_POINTER(id));
}

/* The N-th fd received for a peer is its vector N-1. */
static bool handle_vector(IvshmemClient *c, unsigned id, int fd,
                          Error **errp)
{
    ClientPeer *peer = client_lookup(c, id);
    struct stat st;

    /*
     * Ringing writes to the fd: anything but an eventfd (an anonymous
     * inode, no file type bits) could block, or raise SIGPIPE.
     */
    if (fstat(fd, &st) < 0 || (st.st_mode & S_IFMT) != 0) {
        close(fd);
        error_setg(errp, "peer %u: vector fd is not an eventfd", id);
        return false;
    }
    if (!peer) {
        peer = g_new0(ClientPeer, 1);
        peer->id = id;
        peer->fds = g_array_new(false, false, sizeof(int));
        g_tree_insert(c->peers, GUINT_TO_POINTER(id), peer);
    }
    if (peer->fds->len >= IVSHMEM_MAX_VECTORS) {
        close(fd);
        error_setg(errp, "peer %u has more than %d vectors", id,
                   IVSHMEM_MAX_VECTORS);
        return false;
    }
    g_array_append_val(peer->fds, fd);
    client_notify(c, IVSHMEM_CLIENT_PEER_VECTOR, id, peer->fds->len - 1);
    return true;
}

/*
 * A peer ID without an fd is a disconnect; the first one for a peer we do
 * not know is the server's setup-end marker.
 */
static bool handle_no_fd(IvshmemClient *c, unsigned id, Error **errp)
{
    if (id == c->id) {
        error_setg(errp, "the server announced our own ID %u leaving", id);
        return false;
    }
    if (client_lookup(c, id)) {
        g_tree_remove(c->peers, GUINT_TO_POINTER(id));
        client_notify(c, IVSHMEM_CLIENT_PEER_GONE, id, 0);
        return true;
    }
    if (c->setup_done) {
        error_setg(errp, "the server announced unknown peer %u leaving", id);
        return false;
    }
    c->setup_done = true;
    client_notify(c, IVSHMEM_CLIENT_SETUP_DONE, c->id, 0);
    return true;
}

static bool handle_peer_msg(IvshmemClient *c, int64_t val, int fd,
                            Error **errp)
{
    if (val < 0 || val > IVSHMEM_MAX_PEER_ID) {
        close_fd(fd);
        error_setg(errp, "invalid peer ID %" PRId64 " (valid: 0 to %d)", val,
                   IVSHMEM_MAX_PEER_ID);
        return false;
    }
    if (fd >= 0) {
        return handle_vector(c, val, fd, errp);
    }
    return handle_no_fd(c, val, errp);
}

static bool handle_msg(IvshmemClient *c, int64_t val, int fd, Error **errp)
{
    c->last_msg_us = g_get_monotonic_time();
    switch (c->state) {
    case STATE_VERSION:
        return handle_version(c, val, fd, errp);
    case STATE_ID:
        return handle_own_id(c, val, fd, errp);
    case STATE_SHM:
        return handle_shm(c, val, fd, errp);
    case STATE_PEERS:
        return handle_peer_msg(c, val, fd, errp);
    default:
        g_assert_not_reached();
    }
}

bool ivshmem_client_feed(IvshmemClient *c, const void *buf, size_t len,
                         int fd, Error **errp)
{
    const uint8_t *p = buf;
    Error *err = NULL;
    size_t n;
    int msg_fd;

    if (client_check_failed(c, errp)) {
        close_fd(fd);
        return false;
    }
    if (fd >= 0 && c->msg_fd >= 0) {
        close(fd);
        error_setg(&err, "two fds arrived with one message");
        return client_fail(c, err, errp);
    }
    if (fd >= 0) {
        c->msg_fd = fd;
    }
    while (len) {
        n = MIN(len, sizeof(c->msg) - c->have);
        memcpy(c->msg + c->have, p, n);
        c->have += n;
        p += n;
        len -= n;
        if (c->have < sizeof(c->msg)) {
            break;
        }
        c->have = 0;
        msg_fd = c->msg_fd;
        c->msg_fd = -1;
        if (!handle_msg(c, ldq_le_p(c->msg), msg_fd, &err)) {
            return client_fail(c, err, errp);
        }
    }
    return true;
}

/*
 * Collect the fds of one read.  Returns the fd, -1 for none, or -2 (and
 * closes them all) when there were several.
 */
static int recv_fds(struct msghdr *mh)
{
    struct cmsghdr *cmsg;
    int fd = -1, nfds = 0, i, n;
    int *fds;

    for (cmsg = CMSG_FIRSTHDR(mh); cmsg; cmsg = CMSG_NXTHDR(mh, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET ||
            cmsg->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        fds = (int *)CMSG_DATA(cmsg);
        for (i = 0; i < n; i++, nfds++) {
            if (nfds == 0) {
                fd = fds[i];
            } else {
                close(fds[i]);
            }
        }
    }
    if (nfds > 1 || (mh->msg_flags & MSG_CTRUNC)) {
        close_fd(fd);
        return -2;
    }
    return fd;
}

/* One read of at most the rest of the current message, so fds match. */
static ssize_t client_recv(IvshmemClient *c, uint8_t *buf, int *fd)
{
    struct iovec iov = {
        .iov_base = buf,
        .iov_len = sizeof(c->msg) - c->have,
    };
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(CLIENT_MAX_FDS_PER_READ * sizeof(int))];
    } ctl;
    struct msghdr mh = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = ctl.buf,
        .msg_controllen = sizeof(ctl.buf),
    };
    ssize_t ret;

    do {
        ret = recvmsg(c->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (ret < 0 && errno == EINTR);
    *fd = ret < 0 ? -1 : recv_fds(&mh);
    return ret;
}

bool ivshmem_client_handle_readable(IvshmemClient *c, Error **errp)
{
    uint8_t buf[IVSHMEM_MSG_SIZE];
    Error *err = NULL;
    ssize_t ret;
    int fd;

    if (client_check_failed(c, errp)) {
        return false;
    }
    if (c->sock < 0) {
        error_setg(errp, "not connected");
        return false;
    }
    for (;;) {
        ret = client_recv(c, buf, &fd);
        if (ret < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
        }
        if (ret < 0) {
            error_setg_errno(&err, errno, "cannot read from the server");
            return client_fail(c, err, errp);
        }
        if (fd == -2) {
            error_setg(&err, "the server sent several fds with one message");
            return client_fail(c, err, errp);
        }
        if (ret == 0) {
            close_fd(fd);
            error_setg(&err, "the server closed the connection");
            return client_fail(c, err, errp);
        }
        if (!ivshmem_client_feed(c, buf, ret, fd, errp)) {
            return false;
        }
    }
}

static int poll_one(int fd, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int ret;

    do {
        ret = poll(&pfd, 1, timeout_ms);
    } while (ret < 0 && errno == EINTR);
    return ret;
}

/* Milliseconds left until @deadline_us, -1 (forever) if it is 0. */
static int time_left_ms(int64_t deadline_us)
{
    int64_t left;

    if (!deadline_us) {
        return -1;
    }
    left = deadline_us - g_get_monotonic_time();
    return left <= 0 ? 0 : (int)MIN((left + 999) / 1000, INT_MAX);
}

static int64_t deadline_after(int timeout_ms)
{
    return timeout_ms < 0 ? 0 : g_get_monotonic_time() + timeout_ms * 1000LL;
}

/* An old server has no marker: it is done once quiet after our vectors. */
static bool client_quiet_after_own(IvshmemClient *c, int quiet_ms)
{
    return ivshmem_client_peer_vectors(c, c->id) > 0 && c->have == 0 &&
           g_get_monotonic_time() - c->last_msg_us >= quiet_ms * 1000LL;
}

bool ivshmem_client_wait_setup(IvshmemClient *c, int timeout_ms,
                               int quiet_ms, Error **errp)
{
    int64_t deadline = deadline_after(timeout_ms);
    int left, ret;

    while (!c->setup_done) {
        if (client_quiet_after_own(c, quiet_ms)) {
            return true;
        }
        left = time_left_ms(deadline);
        if (left == 0) {
            error_setg(errp, "the server did not complete the setup within "
                       "%d ms", timeout_ms);
            return false;
        }
        if (ivshmem_client_peer_vectors(c, c->id) > 0) {
            left = left < 0 ? quiet_ms : MIN(left, quiet_ms);
        }
        ret = poll_one(c->sock, left);
        if (ret < 0) {
            error_setg_errno(errp, errno, "poll failed");
            return false;
        }
        if (ret > 0 && !ivshmem_client_handle_readable(c, errp)) {
            return false;
        }
    }
    return true;
}

bool ivshmem_client_setup_done(IvshmemClient *c)
{
    return c->setup_done;
}

int ivshmem_client_get_id(IvshmemClient *c)
{
    return c->id;
}

void *ivshmem_client_get_shm(IvshmemClient *c, uint64_t *size)
{
    if (size) {
        *size = c->shm_size;
    }
    return c->shm;
}

int ivshmem_client_peer_vectors(IvshmemClient *c, unsigned id)
{
    ClientPeer *peer = client_lookup(c, id);

    return peer ? (int)peer->fds->len : -1;
}

typedef struct PeerList {
    IvshmemClient *c;
    unsigned *ids;
    unsigned max;
    unsigned count;
} PeerList;

static gboolean collect_peer(gpointer key, gpointer value, gpointer opaque)
{
    PeerList *list = opaque;
    unsigned id = GPOINTER_TO_UINT(key);

    if (id != list->c->id) {
        if (list->count < list->max) {
            list->ids[list->count] = id;
        }
        list->count++;
    }
    return false;
}

unsigned ivshmem_client_get_peers(IvshmemClient *c, unsigned *ids,
                                  unsigned max)
{
    PeerList list = { .c = c, .ids = ids, .max = max };

    g_tree_foreach(c->peers, collect_peer, &list);
    return list.count;
}

static int peer_vector_fd(IvshmemClient *c, unsigned id, unsigned vector)
{
    ClientPeer *peer = client_lookup(c, id);

    if (!peer || vector >= peer->fds->len) {
        return -1;
    }
    return g_array_index(peer->fds, int, vector);
}

int ivshmem_client_get_vector_fd(IvshmemClient *c, unsigned vector)
{
    return c->id < 0 ? -1 : peer_vector_fd(c, c->id, vector);
}

bool ivshmem_client_ring(IvshmemClient *c, unsigned id, unsigned vector,
                         Error **errp)
{
    int fd = peer_vector_fd(c, id, vector);
    uint64_t one = 1;
    ssize_t ret;

    if (fd < 0) {
        error_setg(errp, client_lookup(c, id) ? "peer %u has no vector %u" :
                   "no peer %u (vector %u)", id, vector);
        return false;
    }
    do {
        ret = write(fd, &one, sizeof(one));
    } while (ret < 0 && errno == EINTR);
    if (ret != sizeof(one)) {
        error_setg_errno(errp, ret < 0 ? errno : EIO,
                         "cannot ring peer %u vector %u", id, vector);
        return false;
    }
    return true;
}

/* Consume a pending interrupt: the eventfd counter goes back to 0. */
static bool vector_ack(int fd, Error **errp)
{
    uint64_t count;
    ssize_t ret;

    do {
        ret = read(fd, &count, sizeof(count));
    } while (ret < 0 && errno == EINTR);
    if (ret != sizeof(count)) {
        error_setg_errno(errp, ret < 0 ? errno : EIO,
                         "cannot read an eventfd");
        return false;
    }
    return true;
}

int ivshmem_client_wait(IvshmemClient *c, unsigned vector, int timeout_ms,
                        Error **errp)
{
    int64_t deadline = deadline_after(timeout_ms);
    struct pollfd pfd[2];
    int fd, ret;

    fd = ivshmem_client_get_vector_fd(c, vector);
    if (fd < 0) {
        error_setg(errp, "no own vector %u", vector);
        return -1;
    }
    pfd[0] = (struct pollfd) { .fd = fd, .events = POLLIN };
    pfd[1] = (struct pollfd) { .fd = c->sock, .events = POLLIN };
    for (;;) {
        ret = poll(pfd, c->sock >= 0 ? 2 : 1, time_left_ms(deadline));
        if (ret < 0 && errno == EINTR) {
            continue;
        }
        if (ret < 0) {
            error_setg_errno(errp, errno, "poll failed");
            return -1;
        }
        if (ret == 0) {
            return 0;
        }
        if (pfd[0].revents) {
            return vector_ack(fd, errp) ? 1 : -1;
        }
        if (!ivshmem_client_handle_readable(c, errp)) {
            return -1;
        }
    }
}
