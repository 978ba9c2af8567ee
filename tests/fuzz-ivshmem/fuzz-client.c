/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the ivshmem-client library's incremental parser
 * (contrib/ivshmem-client): arbitrary server byte streams with arbitrary
 * file descriptors attached, fed either directly through
 * ivshmem_client_feed() or over a real unix socket through
 * ivshmem_client_handle_readable() (SCM_RIGHTS, several fds per message,
 * truncated control data, end of file).
 *
 * Besides crashes and ASan/UBSan reports, every iteration checks:
 * - the library against a model of the protocol of
 *   docs/specs/ivshmem-spec.rst as the client implements it (own ID,
 *   shared memory, peers and their vector counts, the setup-end marker,
 *   the failed state, the return values of feed, ring, wait and
 *   wait_setup) and the notifications it sends, in order;
 * - that every fd the target created, and every fd the client received,
 *   is closed once the client is freed, and that the shared memory is
 *   unmapped;
 * - memory leaks (LeakSanitizer).
 *
 * Input: a header byte, then records; see README.rst.  The shared memory
 * must have a power-of-two size, as the spec says and the library checks.
 */

#include "qemu/osdep.h"
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/un.h>
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "ivshmem-client.h"
#include "fuzz-common.h"

#define MAX_RECORDS     400
#define MAX_EVENTS      4096
#define MAX_TRACKED     2048

/* What a fuzzer-made fd is; decides what the client can do with it. */
enum {
    FD_NONE,
    FD_EVENTFD,
    FD_MEMFD_4K,
    FD_MEMFD_64K,
    FD_MEMFD_ODD,       /* 3000 bytes: not a power of two */
    FD_MEMFD_EMPTY,
    FD_PIPE_READ,       /* read end, write end closed */
    FD_SOCKET_ALONE,    /* unix socket whose peer is closed */
};

/* Header bits */
#define H_SOCKET        0x01    /* over a socket, not ivshmem_client_feed */
#define H_NOTIFY        0x02    /* install and check the notify callback */
#define H_EOF           0x04    /* socket mode: end with end of file */
#define H_COMPARE_ALL   0x08    /* compare every query after each record */

typedef struct Event {
    IvshmemClientEvent event;
    unsigned id, vector;
} Event;

typedef struct MPeer {
    unsigned id;
    GArray *kinds;          /* fd kind per vector */
    GArray *rung;           /* eventfd counter per vector (own only) */
} MPeer;

typedef enum MState { M_VERSION, M_ID, M_SHM, M_PEERS, M_FAILED } MState;

/* The model of the client, mirroring the documented behaviour. */
typedef struct Model {
    MState state;
    uint8_t msg[8];
    size_t have;
    int msg_fd_kind;        /* kind of the fd pending for @msg, or -1 */
    int id;
    bool shm;
    uint64_t shm_size;
    bool setup_done;
    GPtrArray *peers;       /* MPeer, in no particular order */
    Event expect[MAX_EVENTS];
    unsigned n_expect;
} Model;

static char *sock_dir, *sock_path;
static int listen_fd = -1;

/* Notifications the library sent, and the client they came from. */
static IvshmemClient *cur_client;
static Event got[MAX_EVENTS];
static unsigned n_got;

/* The fds this iteration created, to bound the leak check. */
static int max_fd_seen;
static int n_fds_sent;

static void note_fd(int fd)
{
    if (fd > max_fd_seen) {
        max_fd_seen = fd;
    }
}

static int make_memfd(size_t size)
{
    int fd = memfd_create("fuzz-shm", MFD_CLOEXEC);

    fuzz_check(fd >= 0, "memfd_create: %s", strerror(errno));
    fuzz_check(ftruncate(fd, size) == 0, "ftruncate: %s", strerror(errno));
    return fd;
}

static int make_fd(int kind)
{
    int fds[2], fd = -1;

    switch (kind) {
    case FD_EVENTFD:
        fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        break;
    case FD_MEMFD_4K:
        fd = make_memfd(4096);
        break;
    case FD_MEMFD_64K:
        fd = make_memfd(65536);
        break;
    case FD_MEMFD_ODD:
        fd = make_memfd(3000);
        break;
    case FD_MEMFD_EMPTY:
        fd = make_memfd(0);
        break;
    case FD_PIPE_READ:
        fuzz_check(pipe2(fds, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
        note_fd(fds[1]);
        close(fds[1]);
        fd = fds[0];
        break;
    case FD_SOCKET_ALONE:
        fuzz_check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
                              fds) == 0, "socketpair: %s", strerror(errno));
        note_fd(fds[1]);
        close(fds[1]);
        fd = fds[0];
        break;
    default:
        return -1;
    }
    fuzz_check(fd >= 0, "cannot make an fd of kind %d: %s", kind,
               strerror(errno));
    note_fd(fd);
    return fd;
}

/* Model */

static MPeer *model_peer(Model *m, unsigned id)
{
    unsigned i;

    for (i = 0; i < m->peers->len; i++) {
        MPeer *p = g_ptr_array_index(m->peers, i);

        if (p->id == id) {
            return p;
        }
    }
    return NULL;
}

static void mpeer_free(gpointer data)
{
    MPeer *p = data;

    g_array_free(p->kinds, true);
    g_array_free(p->rung, true);
    g_free(p);
}

static void model_event(Model *m, IvshmemClientEvent ev, unsigned id,
                        unsigned vector)
{
    if (m->n_expect < MAX_EVENTS) {
        m->expect[m->n_expect++] = (Event) { ev, id, vector };
    }
}

static bool shm_kind_ok(int kind)
{
    switch (kind) {
    case FD_MEMFD_4K:
    case FD_MEMFD_64K:
        return true;
    case FD_MEMFD_ODD:
        /* The spec wants a power of two, and so does the library. */
        return false;
    default:
        return false;
    }
}

static uint64_t shm_kind_size(int kind)
{
    return kind == FD_MEMFD_4K ? 4096 : kind == FD_MEMFD_64K ? 65536 : 3000;
}

static bool model_msg(Model *m, int64_t val, int kind)
{
    MPeer *p;
    int zero = 0;

    switch (m->state) {
    case M_VERSION:
        if (kind >= 0 || val != IVSHMEM_PROTOCOL_VERSION) {
            return false;
        }
        m->state = M_ID;
        return true;
    case M_ID:
        if (kind >= 0 || val < 0 || val > IVSHMEM_MAX_PEER_ID) {
            return false;
        }
        m->id = val;
        m->state = M_SHM;
        return true;
    case M_SHM:
        if (val != IVSHMEM_MSG_SHM || kind < 0 || !shm_kind_ok(kind)) {
            return false;
        }
        m->shm = true;
        m->shm_size = shm_kind_size(kind);
        m->state = M_PEERS;
        return true;
    case M_PEERS:
        if (val < 0 || val > IVSHMEM_MAX_PEER_ID) {
            return false;
        }
        p = model_peer(m, val);
        if (kind >= 0) {
            /* The library refuses a vector that is not an eventfd. */
            if (kind != FD_EVENTFD) {
                return false;
            }
            if (!p) {
                p = g_new0(MPeer, 1);
                p->id = val;
                p->kinds = g_array_new(false, false, sizeof(int));
                p->rung = g_array_new(false, false, sizeof(int));
                g_ptr_array_add(m->peers, p);
            }
            if (p->kinds->len >= IVSHMEM_MAX_VECTORS) {
                return false;
            }
            g_array_append_val(p->kinds, kind);
            g_array_append_val(p->rung, zero);
            model_event(m, IVSHMEM_CLIENT_PEER_VECTOR, val,
                        p->kinds->len - 1);
            return true;
        }
        if (val == m->id) {
            return false;
        }
        if (p) {
            g_ptr_array_remove_fast(m->peers, p);
            model_event(m, IVSHMEM_CLIENT_PEER_GONE, val, 0);
            return true;
        }
        if (m->setup_done) {
            return false;
        }
        m->setup_done = true;
        model_event(m, IVSHMEM_CLIENT_SETUP_DONE, m->id, 0);
        return true;
    default:
        g_assert_not_reached();
    }
}

/* Mirror of ivshmem_client_feed(): @kind is the fd's kind or -1. */
static bool model_feed(Model *m, const uint8_t *buf, size_t len, int kind)
{
    size_t n;
    int msg_kind;

    if (m->state == M_FAILED) {
        return false;
    }
    if (kind >= 0 && m->msg_fd_kind >= 0) {
        m->state = M_FAILED;
        m->msg_fd_kind = -1;
        return false;
    }
    if (kind >= 0) {
        m->msg_fd_kind = kind;
    }
    while (len) {
        n = MIN(len, sizeof(m->msg) - m->have);
        memcpy(m->msg + m->have, buf, n);
        m->have += n;
        buf += n;
        len -= n;
        if (m->have < sizeof(m->msg)) {
            break;
        }
        m->have = 0;
        msg_kind = m->msg_fd_kind;
        m->msg_fd_kind = -1;
        if (!model_msg(m, ldq_le_p(m->msg), msg_kind)) {
            m->state = M_FAILED;
            return false;
        }
    }
    return true;
}

/* Notifications */

static void on_notify(void *opaque, IvshmemClientEvent event, unsigned id,
                      unsigned vector)
{
    IvshmemClient *c = opaque;

    fuzz_check(c == cur_client, "notify with a foreign opaque");
    /* "Called after the state is updated." */
    switch (event) {
    case IVSHMEM_CLIENT_PEER_VECTOR:
        fuzz_check(ivshmem_client_peer_vectors(c, id) == (int)vector + 1,
                   "peer %u vector %u announced, %d known", id, vector,
                   ivshmem_client_peer_vectors(c, id));
        break;
    case IVSHMEM_CLIENT_PEER_GONE:
        fuzz_check(ivshmem_client_peer_vectors(c, id) == -1,
                   "peer %u gone but still known", id);
        break;
    case IVSHMEM_CLIENT_SETUP_DONE:
        fuzz_check(ivshmem_client_setup_done(c) &&
                   ivshmem_client_get_id(c) == (int)id,
                   "setup done for %u, own ID %d", id,
                   ivshmem_client_get_id(c));
        break;
    default:
        fuzz_check(false, "unknown event %d", event);
    }
    if (n_got < MAX_EVENTS) {
        got[n_got++] = (Event) { event, id, vector };
    }
}

static void check_events(Model *m, bool notify)
{
    unsigned i;

    if (!notify) {
        return;
    }
    fuzz_check(n_got == m->n_expect, "%u notifications, expected %u",
               n_got, m->n_expect);
    for (i = 0; i < n_got; i++) {
        fuzz_check(got[i].event == m->expect[i].event &&
                   got[i].id == m->expect[i].id &&
                   got[i].vector == m->expect[i].vector,
                   "notification %u is (%d, %u, %u), expected (%d, %u, %u)",
                   i, got[i].event, got[i].id, got[i].vector,
                   m->expect[i].event, m->expect[i].id,
                   m->expect[i].vector);
    }
}

static int cmp_uint(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

    return x < y ? -1 : x > y;
}

/* Everything the query API says must match the model. */
static void compare_all(IvshmemClient *c, Model *m)
{
    g_autofree unsigned *want = g_new(unsigned, m->peers->len + 1);
    g_autofree unsigned *ids = g_new(unsigned, m->peers->len + 1);
    unsigned n_want = 0, n, i;
    uint64_t size = 0;
    void *shm;
    MPeer *own;

    fuzz_check(ivshmem_client_get_id(c) == m->id, "own ID %d, expected %d",
               ivshmem_client_get_id(c), m->id);
    fuzz_check(ivshmem_client_setup_done(c) == m->setup_done,
               "setup done %d, expected %d", ivshmem_client_setup_done(c),
               m->setup_done);
    shm = ivshmem_client_get_shm(c, &size);
    fuzz_check(!!shm == m->shm, "shm %p, expected %s", shm,
               m->shm ? "a mapping" : "none");
    if (m->shm) {
        fuzz_check(size == m->shm_size, "shm size %" PRIu64 ", expected %"
                   PRIu64, size, m->shm_size);
        /* The mapping must be usable: read and write its ends. */
        ((volatile uint8_t *)shm)[0] ^= 0;
        ((volatile uint8_t *)shm)[size - 1] ^= 0;
    }
    for (i = 0; i < m->peers->len; i++) {
        MPeer *p = g_ptr_array_index(m->peers, i);

        fuzz_check(ivshmem_client_peer_vectors(c, p->id) == (int)p->kinds->len,
                   "peer %u has %d vectors, expected %u", p->id,
                   ivshmem_client_peer_vectors(c, p->id), p->kinds->len);
        if ((int)p->id != m->id) {
            want[n_want++] = p->id;
        }
    }
    qsort(want, n_want, sizeof(*want), cmp_uint);
    n = ivshmem_client_get_peers(c, ids, m->peers->len + 1);
    fuzz_check(n == n_want, "%u peers, expected %u", n, n_want);
    for (i = 0; i < n; i++) {
        fuzz_check(ids[i] == want[i], "peer #%u is %u, expected %u", i,
                   ids[i], want[i]);
    }
    own = m->id >= 0 ? model_peer(m, m->id) : NULL;
    for (i = 0; i < 5; i++) {
        int fd = ivshmem_client_get_vector_fd(c, i);

        fuzz_check((fd >= 0) == (own && i < own->kinds->len),
                   "own vector %u fd %d", i, fd);
    }
}

/* Query records: ring, wait, wait_setup, compare. */
static void do_query(IvshmemClient *c, Model *m, FuzzIn *in)
{
    uint8_t q = fin_u8(in);
    Error *err = NULL;
    MPeer *p;
    unsigned id, vector;
    int kind, ret, quiet, *rung;
    bool ok, want;

    switch (q & 3) {
    case 0:
        id = (q & 4) && m->id >= 0 ? (unsigned)m->id : fin_u16(in);
        vector = (q >> 3) & 3;
        p = model_peer(m, id);
        kind = p && vector < p->kinds->len ?
               g_array_index(p->kinds, int, vector) : FD_NONE;
        ok = ivshmem_client_ring(c, id, vector, &err);
        /* Only eventfds become vectors. */
        want = kind == FD_EVENTFD;
        fuzz_check(ok == want, "ring %u/%u (kind %d): %s", id, vector, kind,
                   err ? error_get_pretty(err) : "ok");
        fuzz_check(ok == !err, "ring: return value and error disagree");
        if (ok && kind == FD_EVENTFD) {
            g_array_index(p->rung, int, vector)++;
        }
        break;
    case 1:
        vector = (q >> 3) & 3;
        p = m->id >= 0 ? model_peer(m, m->id) : NULL;
        kind = p && vector < p->kinds->len ?
               g_array_index(p->kinds, int, vector) : FD_NONE;
        ret = ivshmem_client_wait(c, vector, 0, &err);
        fuzz_check((ret < 0) == !!err, "wait: %d and error disagree", ret);
        if (kind == FD_NONE) {
            fuzz_check(ret == -1, "wait on missing vector %u: %d", vector,
                       ret);
        } else if (kind == FD_EVENTFD) {
            rung = &g_array_index(p->rung, int, vector);
            if (ret == -1) {
                /* Only the socket of a failed client can cause this. */
                fuzz_check(m->state == M_FAILED, "wait failed: %s",
                           error_get_pretty(err));
            } else {
                fuzz_check(ret == (*rung > 0), "wait: %d, rung %d times",
                           ret, *rung);
                *rung = 0;
            }
        }
        error_free(err);
        err = NULL;
        break;
    case 2:
        /* Quiet for 0 ms (done if own vectors arrived) or for ages. */
        quiet = (q & 4) ? 0 : 1000000;
        ok = ivshmem_client_wait_setup(c, 0, quiet, &err);
        p = m->id >= 0 ? model_peer(m, m->id) : NULL;
        fuzz_check(ok == (m->setup_done ||
                          (!quiet && p && p->kinds->len && !m->have)),
                   "wait_setup: %d", ok);
        fuzz_check(ok == !err, "wait_setup: return value and error "
                   "disagree");
        break;
    default:
        compare_all(c, m);
        break;
    }
    error_free(err);
}

/* Send @len bytes and @n fds over @sock; fds stay ours. */
static void send_unit(int sock, const uint8_t *buf, size_t len,
                      const int *fds, int n)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(8 * sizeof(int))];
    } ctl;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    struct cmsghdr *cmsg;
    ssize_t ret;

    if (n) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
        cmsg = CMSG_FIRSTHDR(&mh);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(cmsg), fds, n * sizeof(int));
    }
    ret = sendmsg(sock, &mh, MSG_NOSIGNAL);
    fuzz_check(ret == (ssize_t)len, "sendmsg: %zd: %s", ret,
               strerror(errno));
    n_fds_sent += n;
}

/*
 * Deliver one unit of the stream: @len bytes with the fds @fds[0..n)
 * (fds[0] of kind @kind0; the others eventfds).
 */
static void deliver(IvshmemClient *c, Model *m, int sock, const uint8_t *buf,
                    size_t len, const int *fds, int n, int kind0, bool notify)
{
    Error *err = NULL;
    bool ok, want;
    int i;

    if (sock >= 0) {
        if (!len) {
            /* A stream socket does not carry fds without bytes. */
            for (i = 0; i < n; i++) {
                close(fds[i]);
            }
            return;
        }
        if (m->state == M_FAILED) {
            /* A failed client reads no more: do not fill its socket. */
            n_fds_sent += n;
            for (i = 0; i < n; i++) {
                close(fds[i]);
            }
            want = false;
        } else {
            send_unit(sock, buf, len, fds, n);
            for (i = 0; i < n; i++) {
                close(fds[i]);
            }
            if (n > 1) {
                /* Several fds on one read fail the client. */
                m->state = M_FAILED;
                m->msg_fd_kind = -1;
                want = false;
            } else {
                want = model_feed(m, buf, len, n ? kind0 : -1);
            }
        }
        ok = ivshmem_client_handle_readable(c, &err);
        /* Reading stops at the first error; the rest stays unread. */
        fuzz_check(ok == want, "handle_readable: %d, expected %d (%s)", ok,
                   want, err ? error_get_pretty(err) : "no error");
    } else {
        /* Extra fds arrive ahead of the bytes, each on its own. */
        for (i = 1; i < n; i++) {
            want = model_feed(m, NULL, 0, FD_EVENTFD);
            ok = ivshmem_client_feed(c, NULL, 0, fds[i], &err);
            fuzz_check(ok == want, "feed of an extra fd: %d, expected %d",
                       ok, want);
            fuzz_check(ok == !err, "feed: return value and error disagree");
            error_free(err);
            err = NULL;
        }
        want = model_feed(m, buf, len, n ? kind0 : -1);
        ok = ivshmem_client_feed(c, buf, len, n ? fds[0] : -1, &err);
        fuzz_check(ok == want, "feed of %zu bytes: %d, expected %d (%s)",
                   len, ok, want, err ? error_get_pretty(err) : "no error");
    }
    fuzz_check(ok == !err, "return value and error disagree");
    error_free(err);
    check_events(m, notify);
}

static int connect_client(IvshmemClient *c)
{
    Error *err = NULL;
    int sock;

    fuzz_check(ivshmem_client_connect(c, sock_path, &err), "connect: %s",
               error_get_pretty(err));
    sock = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    fuzz_check(sock >= 0, "accept: %s", strerror(errno));
    note_fd(sock);
    note_fd(ivshmem_client_get_fd(c));
    return sock;
}

static void run_one(const uint8_t *data, size_t size)
{
    FuzzIn in = { data, size };
    uint8_t hdr = fin_u8(&in);
    bool sock_mode = hdr & H_SOCKET, notify = hdr & H_NOTIFY;
    Model m = { .state = M_VERSION, .msg_fd_kind = -1, .id = -1 };
    IvshmemClient *c = ivshmem_client_new();
    Error *err = NULL;
    int sock = -1, records = 0;
    void *shm;
    uint64_t shm_size;
    unsigned char vec;

    fuzz_fd_begin();
    m.peers = g_ptr_array_new_with_free_func(mpeer_free);
    cur_client = c;
    n_got = 0;
    max_fd_seen = 0;
    n_fds_sent = 0;
    if (notify) {
        ivshmem_client_set_notify(c, on_notify, c);
    }
    if (sock_mode) {
        sock = connect_client(c);
    }

    while (!fin_empty(&in) && records++ < MAX_RECORDS) {
        uint8_t ctrl = fin_u8(&in), buf[32], split = 0;
        int kind0 = (ctrl >> 2) & 7, kind1 = FD_NONE;
        int n_extra = (int[]){ 0, 1, 2, 5 }[(ctrl >> 5) & 3];
        int fds[8], n = 0, i;
        size_t len;
        int64_t val;

        switch (ctrl & 3) {
        case 0:     /* a small value as one message */
        case 3:     /* the same, split in two at a given byte */
            val = (int16_t)fin_u16(&in);
            stq_le_p(buf, val);
            len = 8;
            if ((ctrl & 3) == 3) {
                split = fin_u8(&in);
                kind1 = (split >> 4) & 7;
                split %= 9;
            }
            break;
        case 1:     /* any 8 bytes */
            memset(buf, 0, 8);
            fin_bytes(&in, buf, 8);
            len = 8;
            break;
        default:    /* a chunk of any length and content */
            len = fin_bytes(&in, buf, fin_u8(&in) % 20);
            break;
        }
        if (kind0 != FD_NONE) {
            fds[n++] = make_fd(kind0);
        }
        for (i = 0; kind0 != FD_NONE && i < n_extra; i++) {
            fds[n++] = make_fd(FD_EVENTFD);
        }
        if ((ctrl & 3) == 3) {
            deliver(c, &m, sock, buf, split, fds, n, kind0, notify);
            n = 0;
            if (kind1 != FD_NONE) {
                fds[n++] = make_fd(kind1);
            }
            deliver(c, &m, sock, buf + split, len - split, fds, n, kind1,
                    notify);
        } else {
            deliver(c, &m, sock, buf, len, fds, n, kind0, notify);
        }
        if (hdr & H_COMPARE_ALL) {
            compare_all(c, &m);
        }
        if (ctrl & 0x80) {
            do_query(c, &m, &in);
        }
    }

    if (sock_mode && (hdr & H_EOF)) {
        fuzz_check(shutdown(sock, SHUT_WR) == 0, "shutdown: %s",
                   strerror(errno));
        fuzz_check(!ivshmem_client_handle_readable(c, &err),
                   "end of file went unnoticed");
        error_free(err);
        err = NULL;
        m.state = M_FAILED;
    }
    compare_all(c, &m);
    check_events(&m, notify);
    if (m.state == M_FAILED) {
        int fd = make_fd(FD_EVENTFD);

        /* A failed client stays failed and still takes the fd. */
        fuzz_check(!ivshmem_client_feed(c, "\0\0\0\0\0\0\0\0", 8, fd, &err),
                   "a failed client accepted more input");
        fuzz_check(err, "no error from a failed client");
        error_free(err);
        err = NULL;
    }

    shm = ivshmem_client_get_shm(c, &shm_size);
    ivshmem_client_free(c);
    cur_client = NULL;
    if (sock >= 0) {
        close(sock);
    }
    if (shm) {
        /* The mapping must be gone. */
        fuzz_check(mincore(shm, 1, &vec) < 0 && errno == ENOMEM,
                   "shared memory still mapped after free");
    }
    fuzz_fd_check(max_fd_seen + n_fds_sent + 8, "after ivshmem_client_free");
    g_ptr_array_free(m.peers, true);
}

static void cleanup_dir(void)
{
    if (sock_path) {
        unlink(sock_path);
    }
    if (sock_dir) {
        rmdir(sock_dir);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const uint8_t warmup[] = {
        H_SOCKET | H_NOTIFY,
        0x00, 0x00, 0x00,               /* version 0 */
        0x00, 0x01, 0x00,               /* own ID 1 */
        FD_MEMFD_4K << 2, 0xff, 0xff,   /* -1 with a memfd */
        FD_EVENTFD << 2, 0x01, 0x00,    /* own vector 0 */
        0x00, 0x00, 0x00,               /* marker: 0 */
    };
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    /* A server can send a socket fd as a vector: ring must not kill us. */
    signal(SIGPIPE, SIG_IGN);

    sock_dir = g_dir_make_tmp("ivshmem-fuzz-client-XXXXXX", NULL);
    fuzz_check(sock_dir, "cannot make a temporary directory");
    sock_path = g_build_filename(sock_dir, "sock", NULL);
    atexit(cleanup_dir);
    fuzz_cleanup = cleanup_dir;
    fuzz_check(strlen(sock_path) < sizeof(addr.sun_path), "path too long");
    strcpy(addr.sun_path, sock_path);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    fuzz_check(listen_fd >= 0 &&
               bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
               listen(listen_fd, 16) == 0, "listen: %s", strerror(errno));

    /* Let every library allocate its lazy fds, then take the snapshot. */
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
