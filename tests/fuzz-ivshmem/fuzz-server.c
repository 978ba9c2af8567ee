/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the ivshmem-server library's handling of clients
 * (contrib/ivshmem-server).  Each input starts a server in-process on a
 * unix socket in a temporary directory (or on a listening socket it is
 * handed, as with socket activation), with a vector count, peer limit,
 * marker setting and shared memory picked by the input, and drives its
 * epoll loop by hand with ivshmem_server_poll().  Up to ten raw clients
 * then connect, read (in pieces of any size), send bytes (with or
 * without an fd), half-close either direction, disconnect and
 * connect-and-vanish, in any order and with the server run at any point.
 *
 * Every byte a client reads goes through a checker of the protocol of
 * docs/specs/ivshmem-spec.rst: the handshake in order, one fd per
 * message on its first byte, the same shared memory for everyone, runs
 * of exactly "vectors" messages per peer, the setup-end marker with an
 * ID the client does not know, no disconnects of unknown peers.  At the end every
 * client reads all there is, and the target checks that the server
 * survived, refused only beyond --max-peers, dropped exactly the clients
 * that misbehaved, and that every remaining client's view of the peers
 * is the server's, with the very same eventfds (kcmp) as their owners.
 * After ivshmem_server_free() no fd may be left open and the socket
 * file must be gone.  ASan, UBSan and LeakSanitizer watch throughout.
 *
 * Input: a header of two bytes, then records; see README.rst.
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "ivshmem-server.h"
#include "fuzz-common.h"

#define MAX_CLIENTS     10
#define MAX_RECORDS     200
#define MAX_VIEW        24      /* peers a client can know, own included */
#define MAX_TEST_VECTORS 32
/* ivshmem_server_poll() calls before a busy server counts as a hang. */
#define MAX_POLLS       10000

typedef struct PeerView {
    unsigned id;
    unsigned n;
    int fds[MAX_TEST_VECTORS];
} PeerView;

typedef enum Phase {
    PH_VERSION,
    PH_ID,
    PH_SHM,
    PH_SETUP,           /* peers' and own vectors */
    PH_MARKER,          /* the setup-end marker is next */
    PH_RUNNING,
} Phase;

typedef struct TClient {
    bool used;
    int sock;
    /* What we did to it. */
    bool misbehaved;        /* sent bytes, or shut down its writing side */
    bool shut_rd;           /* shut down its reading side */
    bool expect_refusal;    /* connected while the server was full */
    bool settled;           /* connected with the server run right after */
    /* What it saw. */
    bool eof;
    uint64_t bytes;
    uint8_t msg[8];
    size_t have;
    int msg_fd;
    Phase phase;
    int id;
    int shm_fd;
    PeerView view[MAX_VIEW];
    unsigned n_view;
    int run_id;             /* the peer whose vectors are arriving */
    unsigned run_left;
} TClient;

typedef struct Fuzz {
    IvshmemServerConfig cfg;
    IvshmemServer *s;
    TClient c[MAX_CLIENTS];
    dev_t shm_dev;
    ino_t shm_ino;
    bool have_shm_id;
    int max_fd_seen;
} Fuzz;

static char *tmp_dir, *sock_path, *shm_dir;

static void note_fd(Fuzz *f, int fd)
{
    if (fd > f->max_fd_seen) {
        f->max_fd_seen = fd;
    }
}

static void server_log(void *opaque, IvshmemServerLogLevel level,
                       const char *msg)
{
    fuzz_check(msg && level <= IVSHMEM_SERVER_LOG_DEBUG, "bad log call");
    if (getenv("IVSHMEM_FUZZ_VERBOSE")) {
        fprintf(stderr, "server[%d]: %s\n", level, msg);
    }
}

/* Run the server until it has nothing left to do. */
static void settle(Fuzz *f)
{
    struct pollfd pfd = { .fd = ivshmem_server_get_fd(f->s),
                          .events = POLLIN };
    Error *err = NULL;
    int i;

    for (i = 0; poll(&pfd, 1, 0) > 0; i++) {
        fuzz_check(i < MAX_POLLS, "the server never goes idle");
        fuzz_check(ivshmem_server_poll(f->s, 0, &err), "poll: %s",
                   error_get_pretty(err));
    }
    fuzz_check(ivshmem_server_num_peers(f->s) <= f->cfg.max_peers,
               "%u peers, at most %u allowed",
               ivshmem_server_num_peers(f->s), f->cfg.max_peers);
}

/* One step of the server's loop, as a caller with a timeout would do. */
static void step(Fuzz *f)
{
    Error *err = NULL;

    fuzz_check(ivshmem_server_poll(f->s, 0, &err), "poll: %s",
               error_get_pretty(err));
}

/* The client's view */

static PeerView *view_find(TClient *c, unsigned id)
{
    unsigned i;

    for (i = 0; i < c->n_view; i++) {
        if (c->view[i].id == id) {
            return &c->view[i];
        }
    }
    return NULL;
}

static PeerView *view_add(TClient *c, unsigned id)
{
    PeerView *v;

    fuzz_check(c->n_view < MAX_VIEW, "client knows too many peers");
    v = &c->view[c->n_view++];
    v->id = id;
    v->n = 0;
    return v;
}

static void view_remove(TClient *c, PeerView *v)
{
    unsigned i;

    for (i = 0; i < v->n; i++) {
        close(v->fds[i]);
    }
    *v = c->view[--c->n_view];
}

/*
 * What the spec requires of the marker: an ID that is neither the
 * client's own nor one announced to it.  (The server picks the lowest ID
 * no client holds, which skips peers not announced yet.)
 */
static bool is_marker_id(TClient *c, int64_t val)
{
    return val >= 0 && val <= IVSHMEM_MAX_PEER_ID && val != c->id &&
           !view_find(c, val);
}

/* A vector fd for @id; enforces runs of exactly cfg.vectors messages. */
static void take_vector(Fuzz *f, TClient *c, int64_t val, int fd)
{
    PeerView *v;

    fuzz_check(fd >= 0, "client %d: peer message %" PRId64 " without an "
               "fd during a run of vectors", c->id, val);
    fuzz_check(val >= 0 && val <= IVSHMEM_MAX_PEER_ID,
               "client %d: peer ID %" PRId64 " out of range", c->id, val);
    if (c->run_left) {
        fuzz_check(val == c->run_id, "client %d: vector of %" PRId64
                   " inside the run of %d", c->id, val, c->run_id);
        v = view_find(c, val);
    } else {
        fuzz_check(!view_find(c, val), "client %d: peer %" PRId64
                   " announced twice", c->id, val);
        v = view_add(c, val);
        c->run_id = val;
        c->run_left = f->cfg.vectors;
    }
    v->fds[v->n++] = fd;
    c->run_left--;
}

static void check_shm(Fuzz *f, TClient *c, int fd)
{
    struct stat st;

    fuzz_check(fstat(fd, &st) == 0, "fstat: %s", strerror(errno));
    fuzz_check((uint64_t)st.st_size == ivshmem_server_shm_size(f->s),
               "client %d: shared memory of %" PRId64 " bytes, the server "
               "has %" PRIu64, c->id, (int64_t)st.st_size,
               ivshmem_server_shm_size(f->s));
    if (!f->have_shm_id) {
        f->shm_dev = st.st_dev;
        f->shm_ino = st.st_ino;
        f->have_shm_id = true;
    }
    fuzz_check(st.st_dev == f->shm_dev && st.st_ino == f->shm_ino,
               "client %d: not the same shared memory as the others", c->id);
}

static void handle_msg(Fuzz *f, TClient *c, int64_t val, int fd)
{
    PeerView *v;

    switch (c->phase) {
    case PH_VERSION:
        fuzz_check(val == IVSHMEM_PROTOCOL_VERSION && fd < 0,
                   "version %" PRId64 " fd %d", val, fd);
        c->phase = PH_ID;
        break;
    case PH_ID:
        fuzz_check(val >= 0 && val <= IVSHMEM_MAX_PEER_ID && fd < 0,
                   "own ID %" PRId64 " fd %d", val, fd);
        c->id = val;
        c->phase = PH_SHM;
        break;
    case PH_SHM:
        fuzz_check(val == IVSHMEM_MSG_SHM && fd >= 0,
                   "client %d: shm message %" PRId64 " fd %d", c->id, val,
                   fd);
        check_shm(f, c, fd);
        c->shm_fd = fd;
        c->phase = PH_SETUP;
        break;
    case PH_SETUP:
        take_vector(f, c, val, fd);
        if (val == c->id && !c->run_left) {
            c->phase = f->cfg.setup_marker ? PH_MARKER : PH_RUNNING;
        }
        break;
    case PH_MARKER:
        fuzz_check(fd < 0 && is_marker_id(c, val), "client %d: marker "
                   "%" PRId64 " fd %d, expected an unknown ID without fd",
                   c->id, val, fd);
        c->phase = PH_RUNNING;
        break;
    case PH_RUNNING:
        if (c->run_left || fd >= 0) {
            fuzz_check(val != c->id, "client %d: own ID with an fd after "
                       "setup", c->id);
            take_vector(f, c, val, fd);
            break;
        }
        v = val >= 0 && val <= IVSHMEM_MAX_PEER_ID ? view_find(c, val) : NULL;
        fuzz_check(val != c->id, "client %d: told that it left", c->id);
        fuzz_check(v, "client %d: unknown peer %" PRId64 " left", c->id, val);
        view_remove(c, v);
        break;
    }
}

/* One recvmsg() of at most @len bytes of the current message. */
static bool client_read_once(Fuzz *f, TClient *c, size_t len)
{
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    uint8_t buf[8];
    struct iovec iov = { .iov_base = buf };
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
    };
    struct cmsghdr *cmsg;
    ssize_t ret;
    int fd = -1, n;

    iov.iov_len = MIN(len, sizeof(c->msg) - c->have);
    ret = recvmsg(c->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (ret < 0) {
        fuzz_check(errno == EAGAIN || errno == ECONNRESET, "recvmsg: %s",
                   strerror(errno));
        if (errno == ECONNRESET) {
            c->eof = true;
        }
        return false;
    }
    fuzz_check(!(mh.msg_flags & MSG_CTRUNC), "client %d: fds truncated",
               c->id);
    for (cmsg = CMSG_FIRSTHDR(&mh); cmsg; cmsg = CMSG_NXTHDR(&mh, cmsg)) {
        fuzz_check(cmsg->cmsg_level == SOL_SOCKET &&
                   cmsg->cmsg_type == SCM_RIGHTS, "odd control message");
        n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        fuzz_check(n == 1 && fd < 0, "client %d: %d fds on one message",
                   c->id, n);
        memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
        note_fd(f, fd);
    }
    if (ret == 0) {
        fuzz_check(fd < 0, "an fd with end of file");
        fuzz_check(c->have == 0, "client %d: end of file inside a message",
                   c->id);
        c->eof = true;
        return false;
    }
    if (fd >= 0) {
        fuzz_check(c->have == 0, "client %d: fd on byte %zu of a message",
                   c->id, c->have);
        c->msg_fd = fd;
    }
    memcpy(c->msg + c->have, buf, ret);
    c->have += ret;
    c->bytes += ret;
    if (c->have == sizeof(c->msg)) {
        c->have = 0;
        fd = c->msg_fd;
        c->msg_fd = -1;
        handle_msg(f, c, ldq_le_p(c->msg), fd);
    }
    return true;
}

/* Read up to @max pieces of up to @chunk bytes; false once drained. */
static bool client_read(Fuzz *f, TClient *c, unsigned max, size_t chunk)
{
    unsigned i;

    if (!c->used || c->eof || c->shut_rd) {
        return false;
    }
    for (i = 0; i < max; i++) {
        if (!client_read_once(f, c, chunk)) {
            return false;
        }
    }
    return true;
}

/* Clients */

/*
 * A connected socket, or -1 if the listen backlog is full: the server
 * runs in this thread, so a blocking connect() would wait forever.
 */
static int client_socket(Fuzz *f)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                      0);

    fuzz_check(sock >= 0, "socket: %s", strerror(errno));
    note_fd(f, sock);
    strcpy(addr.sun_path, sock_path);
    if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        fuzz_check(errno == EAGAIN, "connect: %s", strerror(errno));
        close(sock);
        return -1;
    }
    return sock;
}

static void client_connect(Fuzz *f, TClient *c, bool settled)
{
    *c = (TClient) {
        .used = true, .msg_fd = -1, .id = -1, .shm_fd = -1, .run_id = -1,
        .settled = settled,
    };
    if (settled) {
        /* The server's state is known: it refuses iff it is full. */
        settle(f);
        c->expect_refusal =
            ivshmem_server_num_peers(f->s) >= f->cfg.max_peers;
    }
    c->sock = client_socket(f);
    if (c->sock < 0) {
        c->used = false;
        return;
    }
    if (settled) {
        settle(f);
    }
}

static void client_close(TClient *c)
{
    unsigned i, j;

    if (!c->used) {
        return;
    }
    close(c->sock);
    if (c->msg_fd >= 0) {
        close(c->msg_fd);
    }
    if (c->shm_fd >= 0) {
        close(c->shm_fd);
    }
    for (i = 0; i < c->n_view; i++) {
        for (j = 0; j < c->view[i].n; j++) {
            close(c->view[i].fds[j]);
        }
    }
    c->used = false;
}

static void client_send(Fuzz *f, TClient *c, FuzzIn *in, bool with_fd)
{
    uint8_t buf[64];
    size_t len = 1 + fin_u8(in) % sizeof(buf);
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    struct cmsghdr *cmsg;
    ssize_t ret;
    int fd = -1;

    memset(buf, 0, sizeof(buf));
    fin_bytes(in, buf, len);
    if (with_fd) {
        fd = eventfd(0, EFD_CLOEXEC);
        fuzz_check(fd >= 0, "eventfd: %s", strerror(errno));
        note_fd(f, fd);
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        cmsg = CMSG_FIRSTHDR(&mh);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    }
    ret = sendmsg(c->sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (fd >= 0) {
        close(fd);
    }
    /* The server may have closed it already (refused, or dropped). */
    fuzz_check(ret == (ssize_t)len || errno == EPIPE ||
               errno == ECONNRESET || errno == EAGAIN, "send: %s",
               strerror(errno));
    c->misbehaved = true;
}

/* Read everything from every client, running the server meanwhile. */
static void drain_all(Fuzz *f)
{
    bool busy = true;
    int i, round;

    for (round = 0; busy; round++) {
        fuzz_check(round < MAX_POLLS, "clients never stop receiving");
        settle(f);
        busy = false;
        for (i = 0; i < MAX_CLIENTS; i++) {
            while (client_read(f, &f->c[i], 64, 8)) {
                busy = true;
            }
        }
    }
    settle(f);
}

/* The final checks: see the header comment. */
static void check_final(Fuzz *f)
{
    TClient *by_id[64] = { 0 };
    unsigned n_srv = 0, n_shut_rd = 0, n_matched = 0, id, i, j, k;
    TClient *c, *o;
    PeerView *v, *ov;

    drain_all(f);
    for (i = 0; i < MAX_CLIENTS; i++) {
        c = &f->c[i];
        if (!c->used) {
            continue;
        }
        if (c->shut_rd) {
            n_shut_rd++;
            continue;
        }
        if (c->expect_refusal) {
            fuzz_check(c->eof && c->bytes == 0, "slot %u: a connection "
                       "beyond --max-peers %u was not refused", i,
                       f->cfg.max_peers);
            continue;
        }
        if (c->misbehaved) {
            fuzz_check(c->eof, "slot %u (ID %d): misbehaved but is still "
                       "connected", i, c->id);
            continue;
        }
        if (c->eof) {
            /*
             * Only a refusal is fine: no bytes at all, and only when
             * the server may have been full when it accepted.
             */
            fuzz_check(c->bytes == 0 && !c->settled, "slot %u (ID %d): "
                       "dropped without a reason", i, c->id);
            continue;
        }
        fuzz_check(c->phase == PH_RUNNING && !c->run_left && !c->have,
                   "slot %u (ID %d): setup incomplete after draining "
                   "(phase %d)", i, c->id, c->phase);
        fuzz_check(c->id < 64 && !by_id[c->id], "slot %u: ID %d is taken "
                   "twice or too high", i, c->id);
        by_id[c->id] = c;
        fuzz_check(ivshmem_server_peer_backlog(f->s, c->id) == 0,
                   "ID %d: backlog %ld after draining", c->id,
                   ivshmem_server_peer_backlog(f->s, c->id));
    }

    /* The server's peers are the live clients and the deaf ones. */
    for (id = 0; id < 64; id++) {
        if (ivshmem_server_peer_backlog(f->s, id) >= 0) {
            n_srv++;
            n_matched += !!by_id[id];
        } else {
            fuzz_check(!by_id[id], "ID %u: connected, unknown to the server",
                       id);
        }
    }
    fuzz_check(n_srv == ivshmem_server_num_peers(f->s), "%u peers found, "
               "the server counts %u", n_srv, ivshmem_server_num_peers(f->s));
    fuzz_check(n_srv - n_matched <= n_shut_rd, "%u server peers are no "
               "client's", n_srv - n_matched - n_shut_rd);

    /* Everybody sees everybody, with the owners' very eventfds. */
    for (id = 0; id < 64; id++) {
        c = by_id[id];
        if (!c) {
            continue;
        }
        fuzz_check(c->n_view == n_srv, "ID %u knows %u peers (own "
                   "included), the server has %u", id, c->n_view, n_srv);
        for (j = 0; j < c->n_view; j++) {
            v = &c->view[j];
            fuzz_check(v->n == f->cfg.vectors, "ID %u: peer %u has %u "
                       "vectors", id, v->id, v->n);
            fuzz_check(v->id >= 64 ||
                       ivshmem_server_peer_backlog(f->s, v->id) >= 0,
                       "ID %u: knows peer %u, who is gone", id, v->id);
            o = v->id < 64 ? by_id[v->id] : NULL;
            if (!o || o == c) {
                continue;
            }
            ov = view_find(o, o->id);
            for (k = 0; k < v->n; k++) {
                fuzz_check(fuzz_same_file(v->fds[k], ov->fds[k]) != 0,
                           "ID %u: vector %u of peer %u is not the "
                           "peer's own eventfd", id, k, v->id);
            }
        }
    }
}

static void run_one(const uint8_t *data, size_t size)
{
    static const unsigned vector_choice[8] = { 1, 2, 3, 4, 1, 2, 8, 32 };
    static const uint64_t size_choice[4] = { 4096, 8192, 65536, 4096 };
    FuzzIn in = { data, size };
    uint8_t h0 = fin_u8(&in), h1 = fin_u8(&in);
    g_autofree Fuzz *f = g_new0(Fuzz, 1);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    Error *err = NULL;
    int records = 0, i, lfd = -1;
    struct stat st;

    fuzz_fd_begin();
    ivshmem_server_config_init(&f->cfg);
    f->cfg.socket_path = sock_path;
    f->cfg.vectors = vector_choice[h0 & 7];
    f->cfg.setup_marker = !(h0 & 8);
    f->cfg.max_peers = 1 + ((h0 >> 4) & 7);
    f->cfg.shm_size = size_choice[(h1 >> 2) & 3];
    f->cfg.log = server_log;
    if (h1 & 2) {
        f->cfg.shm_kind = IVSHMEM_SERVER_SHM_DIR;
        f->cfg.shm_path = shm_dir;
    }
    if (h1 & 1) {
        /* Socket activation: the server gets a listening socket. */
        strcpy(addr.sun_path, sock_path);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        fuzz_check(lfd >= 0 &&
                   bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
                   listen(lfd, 64) == 0, "listen: %s", strerror(errno));
        note_fd(f, lfd);
        f->cfg.listen_fd = lfd;
    }
    f->s = ivshmem_server_new(&f->cfg, &err);
    fuzz_check(f->s, "ivshmem_server_new: %s", error_get_pretty(err));

    while (!fin_empty(&in) && records++ < MAX_RECORDS) {
        uint8_t op = fin_u8(&in);
        TClient *c = &f->c[(op >> 3) % MAX_CLIENTS];

        switch (op & 7) {
        case 0:     /* connect, or read from the one connected */
            if (!c->used) {
                client_connect(f, c, !(op & 0x80));
            } else {
                uint8_t r = fin_u8(&in);

                client_read(f, c, 1 + (r >> 3), 1 + (r & 7));
            }
            break;
        case 1:     /* send bytes, maybe with an fd */
            if (c->used) {
                client_send(f, c, &in, op & 0x80);
            }
            break;
        case 2:     /* half-close: no more sending */
            if (c->used && shutdown(c->sock, SHUT_WR) == 0) {
                c->misbehaved = true;
            }
            break;
        case 3:     /* half-close: no more receiving */
            if (c->used && !c->shut_rd && shutdown(c->sock, SHUT_RD) == 0) {
                c->shut_rd = true;
            }
            break;
        case 4:     /* disconnect */
            client_close(c);
            break;
        case 5:     /* connect and vanish before the server looks */
            if (!c->used) {
                i = client_socket(f);
                if (i >= 0) {
                    close(i);
                }
            }
            break;
        case 6:     /* one turn of the server's loop */
            step(f);
            break;
        default:    /* run the server until idle */
            settle(f);
            break;
        }
    }

    check_final(f);
    ivshmem_server_free(f->s);
    for (i = 0; i < MAX_CLIENTS; i++) {
        client_close(&f->c[i]);
    }
    fuzz_check((lstat(sock_path, &st) < 0 && errno == ENOENT) || lfd >= 0,
               "the socket file is left behind");
    if (lfd >= 0) {
        /* An inherited socket is the caller's to unlink. */
        unlink(sock_path);
    }
    fuzz_fd_check(f->max_fd_seen + MAX_CLIENTS * (f->cfg.vectors + 2) + 64,
                  "after ivshmem_server_free");
}

static void cleanup_dir(void)
{
    if (sock_path) {
        unlink(sock_path);
    }
    if (shm_dir) {
        rmdir(shm_dir);
    }
    if (tmp_dir) {
        rmdir(tmp_dir);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* Two clients that connect and read; vectors 2, max 2 peers. */
    static const uint8_t warmup[] = {
        0x11, 0x00,
        0x00, 0x08, 0x07, 0x00, 0x3f, 0x08, 0x3f,
    };
    struct sockaddr_un addr;

    tmp_dir = g_dir_make_tmp("ivshmem-fuzz-server-XXXXXX", NULL);
    fuzz_check(tmp_dir, "cannot make a temporary directory");
    sock_path = g_build_filename(tmp_dir, "sock", NULL);
    shm_dir = g_build_filename(tmp_dir, "shm", NULL);
    fuzz_check(mkdir(shm_dir, 0700) == 0, "mkdir: %s", strerror(errno));
    fuzz_check(strlen(sock_path) < sizeof(addr.sun_path), "path too long");
    atexit(cleanup_dir);
    fuzz_cleanup = cleanup_dir;

    run_one(warmup, sizeof(warmup));
    fuzz_fd_snapshot();
    run_one(warmup, sizeof(warmup));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_one(data, size);
    return 0;
}
