/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the ivshmem-client library: incremental parsing (byte by
 * byte, and short reads on a real socket), every kind of malformed
 * message, and ring/wait/shared memory through a real ivshmem-server
 * running in a thread; plus the ivshmem-client command line tool, its
 * text and its --json output.
 *
 * Poll timeouts are upper bounds only: nothing waits for time to pass.
 * A failing test aborts; a signal handler then removes its socket and
 * temporary directory.
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/memfd.h"
#include "../../contrib/ivshmem-client/ivshmem-client.h"
#include "../../contrib/ivshmem-server/ivshmem-server.h"

#define TIMEOUT_MS      10000
#define SHM_SIZE        (64 * KiB)

typedef struct Fixture {
    char *dir;
    char *sock_path;
    IvshmemServer *server;
    GThread *thread;
    int stop_fd;
    unsigned max_peers;         /* for server_start(); 0: the default */
} Fixture;

/* A scripted server stream: values, each maybe with an fd. */
typedef struct Script {
    GByteArray *bytes;
    GArray *fds;                /* fd sent with message i, or -1 */
} Script;

/* What the abort handler removes; plain arrays, async-signal-safe. */
static char abort_sock[PATH_MAX];
static char abort_dir[PATH_MAX];

static void remove_on_abort(int sig)
{
    if (abort_sock[0]) {
        unlink(abort_sock);
    }
    if (abort_dir[0]) {
        rmdir(abort_dir);
    }
    /* SA_RESETHAND restored the default action: die as intended. */
    raise(sig);
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    f->dir = g_dir_make_tmp("ivshmem-client-test-XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    f->sock_path = g_build_filename(f->dir, "sock", NULL);
    f->stop_fd = -1;
    pstrcpy(abort_sock, sizeof(abort_sock), f->sock_path);
    pstrcpy(abort_dir, sizeof(abort_dir), f->dir);
}

static gpointer server_thread(gpointer opaque)
{
    Fixture *f = opaque;

    g_assert_true(ivshmem_server_run(f->server, f->stop_fd, &error_abort));
    return NULL;
}

static void server_start(Fixture *f, unsigned vectors, bool marker)
{
    IvshmemServerConfig cfg;

    ivshmem_server_config_init(&cfg);
    cfg.socket_path = f->sock_path;
    cfg.shm_size = SHM_SIZE;
    cfg.vectors = vectors;
    cfg.setup_marker = marker;
    if (f->max_peers) {
        cfg.max_peers = f->max_peers;
    }
    f->server = ivshmem_server_new(&cfg, &error_abort);
    f->stop_fd = eventfd(0, EFD_CLOEXEC);
    g_assert_cmpint(f->stop_fd, >=, 0);
    f->thread = g_thread_new("ivshmem-server", server_thread, f);
}

static void server_stop(Fixture *f)
{
    uint64_t one = 1;

    if (!f->thread) {
        return;
    }
    g_assert_cmpint(write(f->stop_fd, &one, sizeof(one)), ==, sizeof(one));
    g_thread_join(f->thread);
    f->thread = NULL;
    close(f->stop_fd);
    f->stop_fd = -1;
    g_clear_pointer(&f->server, ivshmem_server_free);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    server_stop(f);
    unlink(f->sock_path);
    g_assert_cmpint(rmdir(f->dir), ==, 0);
    abort_sock[0] = 0;
    abort_dir[0] = 0;
    g_free(f->sock_path);
    g_free(f->dir);
}

static int count_fds(void)
{
    g_autoptr(GDir) dir = g_dir_open("/proc/self/fd", 0, NULL);
    int n = 0;

    g_assert_nonnull(dir);
    while (g_dir_read_name(dir)) {
        n++;
    }
    return n;
}

/* Scripts */

static Script *script_new(void)
{
    Script *s = g_new0(Script, 1);

    s->bytes = g_byte_array_new();
    s->fds = g_array_new(false, false, sizeof(int));
    return s;
}

static void script_free(Script *s)
{
    unsigned i;

    for (i = 0; i < s->fds->len; i++) {
        if (g_array_index(s->fds, int, i) >= 0) {
            close(g_array_index(s->fds, int, i));
        }
    }
    g_byte_array_free(s->bytes, true);
    g_array_free(s->fds, true);
    g_free(s);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Script, script_free)

/* @fd stays the test's; the client gets a duplicate. */
static void script_add(Script *s, int64_t val, int fd)
{
    uint8_t le[IVSHMEM_MSG_SIZE];
    int copy = fd >= 0 ? dup(fd) : -1;

    g_assert_true(fd < 0 || copy >= 0);
    stq_le_p(le, val);
    g_byte_array_append(s->bytes, le, sizeof(le));
    g_array_append_val(s->fds, copy);
}

static unsigned script_len(Script *s)
{
    return s->fds->len;
}

/* The fd of message @i, handed over (the script forgets it). */
static int script_take_fd(Script *s, unsigned i)
{
    int fd = g_array_index(s->fds, int, i);

    g_array_index(s->fds, int, i) = -1;
    return fd;
}

/* Feed messages [@from, @to) one byte at a time. */
static void feed_bytes(IvshmemClient *c, Script *s, unsigned from,
                       unsigned to)
{
    unsigned i, b;

    for (i = from; i < to; i++) {
        for (b = 0; b < IVSHMEM_MSG_SIZE; b++) {
            g_assert_true(ivshmem_client_feed(
                c, s->bytes->data + i * IVSHMEM_MSG_SIZE + b, 1,
                b == 0 ? script_take_fd(s, i) : -1, &error_abort));
        }
    }
}

static int new_shm(uint64_t size)
{
    return qemu_memfd_create("ivshmem-client-test", size, false, 0, 0,
                             &error_abort);
}

static int new_eventfd(void)
{
    int fd = eventfd(0, EFD_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    return fd;
}

static bool fd_readable(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    return poll(&pfd, 1, 0) == 1;
}

/* Peer 2 (ourselves) joins peers 0 and 1, with two vectors each. */
typedef struct Setup {
    int shm;
    int vec[4][2];              /* [peer][vector], the test's copies */
} Setup;

static Script *setup_script(Setup *st, bool marker)
{
    Script *s = script_new();
    unsigned p, v;

    st->shm = new_shm(SHM_SIZE);
    script_add(s, IVSHMEM_PROTOCOL_VERSION, -1);
    script_add(s, 2, -1);
    script_add(s, IVSHMEM_MSG_SHM, st->shm);
    for (p = 0; p < 3; p++) {
        for (v = 0; v < 2; v++) {
            st->vec[p][v] = new_eventfd();
            script_add(s, p, st->vec[p][v]);
        }
    }
    if (marker) {
        script_add(s, 3, -1);
    }
    return s;
}

static void setup_close(Setup *st, unsigned npeers)
{
    unsigned p, v;

    close(st->shm);
    for (p = 0; p < npeers; p++) {
        for (v = 0; v < 2; v++) {
            close(st->vec[p][v]);
        }
    }
}

static void assert_peers(IvshmemClient *c, const unsigned *want, unsigned n)
{
    unsigned ids[8], i;

    g_assert_cmpuint(ivshmem_client_get_peers(c, ids, G_N_ELEMENTS(ids)),
                     ==, n);
    for (i = 0; i < n; i++) {
        g_assert_cmpuint(ids[i], ==, want[i]);
    }
}

/* Tests: parsing */

static void test_byte_by_byte(Fixture *f, gconstpointer data)
{
    int before = count_fds();
    g_autoptr(IvshmemClient) c = ivshmem_client_new();
    Setup st;
    g_autoptr(Script) s = setup_script(&st, true);
    unsigned marker = script_len(s) - 1;
    uint64_t size, one = 1;
    uint8_t *shm, byte;

    feed_bytes(c, s, 0, 2);
    g_assert_cmpint(ivshmem_client_get_id(c), ==, 2);
    g_assert_null(ivshmem_client_get_shm(c, NULL));
    feed_bytes(c, s, 2, 3);
    shm = ivshmem_client_get_shm(c, &size);
    g_assert_nonnull(shm);
    g_assert_cmpuint(size, ==, SHM_SIZE);
    shm[SHM_SIZE - 1] = 0x5a;
    g_assert_cmpint(pread(st.shm, &byte, 1, SHM_SIZE - 1), ==, 1);
    g_assert_cmpint(byte, ==, 0x5a);

    feed_bytes(c, s, 3, marker);
    g_assert_false(ivshmem_client_setup_done(c));
    g_assert_cmpint(ivshmem_client_peer_vectors(c, 0), ==, 2);
    g_assert_cmpint(ivshmem_client_peer_vectors(c, 2), ==, 2);
    /* The last byte of the marker completes the setup, not before. */
    g_assert_true(ivshmem_client_feed(c, s->bytes->data + marker * 8, 7, -1,
                                      &error_abort));
    g_assert_false(ivshmem_client_setup_done(c));
    g_assert_true(ivshmem_client_feed(c, s->bytes->data + marker * 8 + 7, 1,
                                      -1, &error_abort));
    g_assert_true(ivshmem_client_setup_done(c));
    assert_peers(c, (unsigned[]){ 0, 1 }, 2);

    /* Ring peer 1 vector 1: its eventfd, not another, gets it. */
    g_assert_true(ivshmem_client_ring(c, 1, 1, &error_abort));
    g_assert_false(fd_readable(st.vec[1][0]));
    g_assert_true(fd_readable(st.vec[1][1]));
    /* Own vector 0 rung by someone: wait sees it once. */
    g_assert_cmpint(write(st.vec[2][0], &one, sizeof(one)), ==, 8);
    g_assert_cmpint(ivshmem_client_wait(c, 0, TIMEOUT_MS, &error_abort), ==,
                    1);
    g_assert_cmpint(ivshmem_client_wait(c, 0, 0, &error_abort), ==, 0);

    /* Later: peer 0 leaves, peer 3 comes with two vectors. */
    st.vec[3][0] = new_eventfd();
    st.vec[3][1] = new_eventfd();
    script_add(s, 0, -1);
    script_add(s, 3, st.vec[3][0]);
    script_add(s, 3, st.vec[3][1]);
    feed_bytes(c, s, marker + 1, script_len(s));
    assert_peers(c, (unsigned[]){ 1, 3 }, 2);
    g_assert_cmpint(ivshmem_client_peer_vectors(c, 0), ==, -1);
    g_assert_cmpint(ivshmem_client_peer_vectors(c, 3), ==, 2);

    g_clear_pointer(&c, ivshmem_client_free);
    setup_close(&st, 4);
    g_assert_cmpint(count_fds(), ==, before);
}

static int listen_at(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    pstrcpy(addr.sun_path, sizeof(addr.sun_path), path);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(fd, 1), ==, 0);
    return fd;
}

static void send_part(int sock, const uint8_t *buf, size_t len, int fd)
{
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl = { 0 };
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    struct cmsghdr *cmsg;

    if (fd >= 0) {
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        cmsg = CMSG_FIRSTHDR(&mh);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    }
    g_assert_cmpint(sendmsg(sock, &mh, 0), ==, len);
}

/* A scripted server on a real socket: a client and the server's end. */
static IvshmemClient *scripted_connect(Fixture *f, int *server_sock)
{
    IvshmemClient *c = ivshmem_client_new();
    int lfd = listen_at(f->sock_path);

    g_assert_true(ivshmem_client_connect(c, f->sock_path, &error_abort));
    *server_sock = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    g_assert_cmpint(*server_sock, >=, 0);
    close(lfd);
    unlink(f->sock_path);
    return c;
}

/* Every message in pieces of 1, 3 and 4 bytes: reads are short. */
static void test_short_reads(Fixture *f, gconstpointer data)
{
    static const size_t pieces[] = { 1, 3, 4 };
    int before = count_fds(), sock, fd;
    Setup st;
    g_autoptr(Script) s = setup_script(&st, true);
    IvshmemClient *c = scripted_connect(f, &sock);
    unsigned i, p, off;

    for (i = 0; i < script_len(s); i++) {
        fd = script_take_fd(s, i);
        for (p = 0, off = 0; p < G_N_ELEMENTS(pieces); off += pieces[p++]) {
            send_part(sock, s->bytes->data + i * 8 + off, pieces[p],
                      off ? -1 : fd);
            g_assert_true(ivshmem_client_handle_readable(c, &error_abort));
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    g_assert_true(ivshmem_client_setup_done(c));
    g_assert_cmpint(ivshmem_client_get_id(c), ==, 2);
    assert_peers(c, (unsigned[]){ 0, 1 }, 2);
    g_assert_cmpint(ivshmem_client_peer_vectors(c, 2), ==, 2);

    /* The server goes away: a clear error, no crash. */
    close(sock);
    g_assert_true(fd_readable(ivshmem_client_get_fd(c)));
    {
        Error *err = NULL;

        g_assert_false(ivshmem_client_handle_readable(c, &err));
        g_assert_nonnull(strstr(error_get_pretty(err), "closed"));
        error_free(err);
    }
    ivshmem_client_free(c);
    setup_close(&st, 3);
    g_assert_cmpint(count_fds(), ==, before);
}

/* One value and whether an fd comes with it. */
typedef struct BadMsg {
    int64_t val;
    bool fd;
} BadMsg;

typedef struct BadCase {
    const char *what;
    const char *error;
    BadMsg msgs[8];
    unsigned n;
} BadCase;

static const BadCase bad_cases[] = {
    { "version 1", "unsupported protocol version 1", { { 1, false } }, 1 },
    { "version with fd", "carries an fd", { { 0, true } }, 1 },
    { "own ID too big", "invalid own ID 65536",
      { { 0, false }, { 65536, false } }, 2 },
    { "own ID negative", "invalid own ID -2",
      { { 0, false }, { -2, false } }, 2 },
    { "own ID with fd", "carries an fd", { { 0, false }, { 1, true } }, 2 },
    { "shm without fd", "expected the shared memory",
      { { 0, false }, { 1, false }, { -1, false } }, 3 },
    { "peer instead of shm", "expected the shared memory",
      { { 0, false }, { 1, false }, { 0, true } }, 3 },
    { "peer ID too big", "invalid peer ID 65536",
      { { 0, false }, { 1, false }, { -1, true },
        { 65536, true } }, 4 },
    { "second shm", "invalid peer ID -1",
      { { 0, false }, { 1, false }, { -1, true },
        { -1, true } }, 4 },
    { "unknown peer leaves", "unknown peer 7",
      { { 0, false }, { 1, false }, { -1, true },
        { 1, true }, { 0, false }, { 7, false } }, 6 },
    { "own ID leaves", "our own ID",
      { { 0, false }, { 1, false }, { -1, true },
        { 1, true }, { 0, false }, { 1, false } }, 6 },
};

static void run_bad_case(const BadCase *bc, int shm)
{
    g_autoptr(IvshmemClient) c = ivshmem_client_new();
    g_autoptr(Script) s = script_new();
    Error *err = NULL;
    unsigned i;
    int efd = new_eventfd();
    bool ok = true;

    for (i = 0; i < bc->n; i++) {
        script_add(s, bc->msgs[i].val, !bc->msgs[i].fd ? -1 :
                   bc->msgs[i].val == IVSHMEM_MSG_SHM ? shm : efd);
    }
    close(efd);
    for (i = 0; i < bc->n && ok; i++) {
        ok = ivshmem_client_feed(c, s->bytes->data + i * 8, 8,
                                 script_take_fd(s, i), &err);
    }
    g_assert_false(ok);
    g_assert_cmpuint(i, ==, bc->n);
    if (!strstr(error_get_pretty(err), bc->error)) {
        g_printerr("%s: %s\n", bc->what, error_get_pretty(err));
        g_assert_not_reached();
    }
    error_free(err);
    err = NULL;
    /* Stopped for good: later input fails too, and its fd is closed. */
    g_assert_false(ivshmem_client_feed(c, s->bytes->data, 8, dup(shm),
                                       &err));
    g_assert_nonnull(strstr(error_get_pretty(err), bc->error));
    error_free(err);
    for (i = 0; i < bc->n; i++) {
        g_assert_cmpint(g_array_index(s->fds, int, i), ==, -1);
    }
}

/*
 * A handshake with @shm_size bytes of shared memory, then, if @vector_fd
 * >= 0, peer 1's first vector on that fd: the last message fed must be
 * refused with an error containing @what.
 */
static void expect_refused(uint64_t shm_size, int vector_fd, const char *what)
{
    g_autoptr(IvshmemClient) c = ivshmem_client_new();
    g_autoptr(Script) s = script_new();
    Error *err = NULL;
    int shm = new_shm(shm_size);
    unsigned last;

    script_add(s, 0, -1);
    script_add(s, 0, -1);
    script_add(s, IVSHMEM_MSG_SHM, shm);
    if (vector_fd >= 0) {
        script_add(s, 1, vector_fd);
    }
    close(shm);
    last = script_len(s) - 1;
    feed_bytes(c, s, 0, last);
    g_assert_false(ivshmem_client_feed(c, s->bytes->data +
                                       last * IVSHMEM_MSG_SIZE,
                                       IVSHMEM_MSG_SIZE,
                                       script_take_fd(s, last), &err));
    g_assert_nonnull(strstr(error_get_pretty(err), what));
    error_free(err);
}

static void test_malformed(Fixture *f, gconstpointer data)
{
    int before = count_fds(), shm = new_shm(SHM_SIZE);
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        if (g_test_verbose()) {
            g_printerr("case: %s\n", bad_cases[i].what);
        }
        run_bad_case(&bad_cases[i], shm);
    }
    close(shm);

    /* Empty shared memory cannot be mapped. */
    expect_refused(0, -1, "empty");
    /* Shared memory whose size is not a power of two. */
    expect_refused(3 * 4096, -1, "is not a power of two");
    /*
     * A vector that is not an eventfd (here a memfd): ringing it could
     * block or raise SIGPIPE, so it is refused when it arrives.
     */
    {
        int not_eventfd = new_shm(4096);

        expect_refused(SHM_SIZE, not_eventfd, "not an eventfd");
        close(not_eventfd);
    }
    g_assert_cmpint(count_fds(), ==, before);
}

/* Two fds on one message through a socket. */
static void test_two_fds(Fixture *f, gconstpointer data)
{
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } ctl = { 0 };
    uint8_t msg[8];
    struct iovec iov = { .iov_base = msg, .iov_len = sizeof(msg) };
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
    };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&mh);
    int before = count_fds(), sock, fds[2];
    IvshmemClient *c = scripted_connect(f, &sock);
    Error *err = NULL;

    fds[0] = new_eventfd();
    fds[1] = new_eventfd();
    stq_le_p(msg, 0);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(fds));
    memcpy(CMSG_DATA(cmsg), fds, sizeof(fds));
    g_assert_cmpint(sendmsg(sock, &mh, 0), ==, sizeof(msg));
    g_assert_false(ivshmem_client_handle_readable(c, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "several fds"));
    error_free(err);
    ivshmem_client_free(c);
    close(sock);
    close(fds[0]);
    close(fds[1]);
    g_assert_cmpint(count_fds(), ==, before);
}

/* Tests: through a real server */

static IvshmemClient *join(Fixture *f, bool marker)
{
    IvshmemClient *c = ivshmem_client_new();

    g_assert_true(ivshmem_client_connect(c, f->sock_path, &error_abort));
    g_assert_true(ivshmem_client_wait_setup(c, TIMEOUT_MS, 50,
                                            &error_abort));
    g_assert_cmpint(ivshmem_client_setup_done(c), ==, marker);
    return c;
}

/* Handle server messages until peer @id has @n vectors (-1: is gone). */
static void wait_peer(IvshmemClient *c, unsigned id, int n)
{
    int64_t deadline = g_get_monotonic_time() + TIMEOUT_MS * 1000LL;
    struct pollfd pfd = { .fd = ivshmem_client_get_fd(c), .events = POLLIN };

    while (ivshmem_client_peer_vectors(c, id) != n) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_assert_cmpint(poll(&pfd, 1, 100), >=, 0);
        g_assert_true(ivshmem_client_handle_readable(c, &error_abort));
    }
}

static void count_events(void *opaque, IvshmemClientEvent event, unsigned id,
                         unsigned vector)
{
    unsigned *gone = opaque;

    if (event == IVSHMEM_CLIENT_PEER_GONE) {
        (*gone)++;
    }
}

static void test_ring_wait(Fixture *f, gconstpointer data)
{
    g_autoptr(IvshmemClient) a = NULL;
    IvshmemClient *b;
    Error *err = NULL;
    unsigned gone = 0;
    uint8_t *pa, *pb;

    server_start(f, 2, true);
    a = join(f, true);
    b = join(f, true);
    g_assert_cmpint(ivshmem_client_get_id(a), ==, 0);
    g_assert_cmpint(ivshmem_client_get_id(b), ==, 1);
    g_assert_cmpint(ivshmem_client_peer_vectors(b, 0), ==, 2);
    wait_peer(a, 1, 2);

    g_assert_true(ivshmem_client_ring(a, 1, 1, &error_abort));
    g_assert_cmpint(ivshmem_client_wait(b, 0, 0, &error_abort), ==, 0);
    g_assert_cmpint(ivshmem_client_wait(b, 1, TIMEOUT_MS, &error_abort), ==,
                    1);
    g_assert_cmpint(ivshmem_client_wait(b, 1, 0, &error_abort), ==, 0);
    g_assert_true(ivshmem_client_ring(b, 0, 0, &error_abort));
    g_assert_cmpint(ivshmem_client_wait(a, 0, TIMEOUT_MS, &error_abort), ==,
                    1);

    /* Both see the same memory. */
    pa = ivshmem_client_get_shm(a, NULL);
    pb = ivshmem_client_get_shm(b, NULL);
    strcpy((char *)pa + 100, "hello");
    g_assert_cmpstr((char *)pb + 100, ==, "hello");

    g_assert_false(ivshmem_client_ring(a, 5, 0, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "no peer 5"));
    error_free(err);
    err = NULL;
    g_assert_false(ivshmem_client_ring(a, 1, 2, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "has no vector 2"));
    error_free(err);
    err = NULL;
    g_assert_cmpint(ivshmem_client_wait(a, 2, 0, &err), ==, -1);
    error_free(err);

    ivshmem_client_set_notify(a, count_events, &gone);
    ivshmem_client_free(b);
    wait_peer(a, 1, -1);
    g_assert_cmpuint(gone, ==, 1);
    assert_peers(a, NULL, 0);
}

/* An old server: no marker, the setup ends by silence. */
static void test_no_marker(Fixture *f, gconstpointer data)
{
    g_autoptr(IvshmemClient) a = NULL;
    g_autoptr(IvshmemClient) b = NULL;

    server_start(f, 1, false);
    a = join(f, false);
    b = join(f, false);
    g_assert_cmpint(ivshmem_client_peer_vectors(b, 0), ==, 1);
    g_assert_cmpint(ivshmem_client_peer_vectors(b, 1), ==, 1);
    wait_peer(a, 1, 1);
    g_assert_true(ivshmem_client_ring(b, 0, 0, &error_abort));
    g_assert_cmpint(ivshmem_client_wait(a, 0, TIMEOUT_MS, &error_abort), ==,
                    1);
}

static void test_server_stops(Fixture *f, gconstpointer data)
{
    g_autoptr(IvshmemClient) a = NULL;
    Error *err = NULL;

    server_start(f, 1, true);
    a = join(f, true);
    server_stop(f);
    g_assert_cmpint(ivshmem_client_wait(a, 0, TIMEOUT_MS, &err), ==, -1);
    g_assert_nonnull(strstr(error_get_pretty(err), "closed the connection"));
    error_free(err);
}

/* Tests: the command line tool */

static char *client_binary(void)
{
    return g_test_build_filename(G_TEST_BUILT, "..", "..", "contrib",
                                 "ivshmem-client", "ivshmem-client", NULL);
}

static void stdin_from(gpointer data)
{
    int fd = GPOINTER_TO_INT(data);

    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
    }
}

/*
 * Run the tool with @cmds as arguments and, if @input, with @input on
 * its standard input; returns its exit status, output and errors.
 */
static int run_cli_full(Fixture *f, const char *const *cmds,
                        const char *input, char **out, char **err)
{
    g_autofree char *bin = client_binary();
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) gerr = NULL;
    int status, pipefd[2] = { -1, -1 };

    g_ptr_array_add(argv, bin);
    g_ptr_array_add(argv, (char *)"-S");
    g_ptr_array_add(argv, f->sock_path);
    for (; *cmds; cmds++) {
        g_ptr_array_add(argv, (char *)*cmds);
    }
    g_ptr_array_add(argv, NULL);
    if (input) {
        /* Small enough for the pipe: written whole before the start. */
        g_assert_true(g_unix_open_pipe(pipefd, FD_CLOEXEC, NULL));
        g_assert_cmpint(write(pipefd[1], input, strlen(input)), ==,
                        strlen(input));
        close(pipefd[1]);
    }
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL,
                               err ? 0 : G_SPAWN_STDERR_TO_DEV_NULL,
                               stdin_from, GINT_TO_POINTER(pipefd[0]), out,
                               err, &status, &gerr));
    if (pipefd[0] >= 0) {
        close(pipefd[0]);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Run the tool with @cmds; returns its exit status and output. */
static int run_cli(Fixture *f, const char *const *cmds, char **out)
{
    return run_cli_full(f, cmds, NULL, out, NULL);
}

static void test_cli(Fixture *f, gconstpointer data)
{
    static const char *const write_read[] = {
        "write 0x10 hi there", "read 0x10 8", "dump", NULL
    };
    static const char *const bad[] = { "read 0 999999999", NULL };
    static const char *const timeout[] = { "wait 0 10", NULL };
    g_autofree char *bin = client_binary();
    g_autofree char *out = NULL;
    g_autoptr(IvshmemClient) a = NULL;

    if (!g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("ivshmem-client is not built");
        return;
    }
    server_start(f, 1, true);
    a = join(f, true);
    g_assert_cmpint(run_cli(f, write_read, &out), ==, 0);
    g_assert_nonnull(strstr(out, "00000010: 68 69 20 74 68 65 72 65"));
    g_assert_nonnull(strstr(out, "own ID 1, 1 vector(s)"));
    g_assert_nonnull(strstr(out, "peer 0: 1 vector(s)"));
    g_assert_cmpstr((char *)ivshmem_client_get_shm(a, NULL) + 0x10, ==,
                    "hi there");
    g_clear_pointer(&out, g_free);
    g_assert_cmpint(run_cli(f, bad, &out), ==, 1);
    g_clear_pointer(&out, g_free);
    g_assert_cmpint(run_cli(f, timeout, &out), ==, 2);
    g_assert_nonnull(strstr(out, "vector 0: timeout"));
}

/* Exit statuses that tell a failure, a timeout and no server apart. */
static void test_cli_exit_status(Fixture *f, gconstpointer data)
{
    static const char *const none[] = { NULL };
    static const char *const empty_write[] = { "write 0x10", NULL };
    g_autofree char *bin = client_binary();
    g_autoptr(IvshmemClient) a = NULL;
    char *out = NULL;

    if (!g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("ivshmem-client is not built");
        return;
    }
    /* Nobody listens. */
    g_assert_cmpint(run_cli(f, none, &out), ==, 3);
    g_free(out);
    server_start(f, 1, true);
    a = join(f, true);
    /* An empty write is an error, not a success that wrote nothing. */
    g_assert_cmpint(run_cli(f, empty_write, &out), ==, 1);
    g_free(out);
    /* From standard input, every command runs; the status says how. */
    g_assert_cmpint(run_cli_full(f, none, "read 0 999999999\ndump\n", &out,
                                 NULL), ==, 1);
    g_assert_nonnull(strstr(out, "peer(s)"));
    g_free(out);
    g_assert_cmpint(run_cli_full(f, none, "wait 0 10\ndump\n", &out, NULL),
                    ==, 2);
    g_assert_nonnull(strstr(out, "peer(s)"));
    g_free(out);
    g_assert_cmpint(run_cli_full(f, none, "wait 0 10\nwrite 0\n", &out,
                                 NULL), ==, 1);
    g_free(out);
    g_assert_cmpint(run_cli_full(f, none, "dump\n", &out, NULL), ==, 0);
    g_free(out);
}

/* Numbers are decimal, leading zeros and all, or 0x hexadecimal. */
static void test_cli_numbers(Fixture *f, gconstpointer data)
{
    static const char *const write_dec[] = { "write 010 abc", NULL };
    static const char *const read_hex[] = { "read 0x0a 3", NULL };
    static const char *const read_zero[] = { "read 08 1", NULL };
    static const char *const read_neg[] = { "read -1 1", NULL };
    static const char *const read_bad[] = { "read 0x 1", NULL };
    g_autofree char *bin = client_binary();
    g_autoptr(IvshmemClient) a = NULL;
    char *out = NULL;

    if (!g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("ivshmem-client is not built");
        return;
    }
    server_start(f, 1, true);
    a = join(f, true);
    g_assert_cmpint(run_cli(f, write_dec, &out), ==, 0);
    g_free(out);
    g_assert_cmpint(memcmp((char *)ivshmem_client_get_shm(a, NULL) + 10,
                           "abc", 3), ==, 0);
    g_assert_cmpint(run_cli(f, read_hex, &out), ==, 0);
    g_assert_nonnull(strstr(out, "0000000a: 61 62 63"));
    g_free(out);
    g_assert_cmpint(run_cli(f, read_zero, &out), ==, 0);
    g_assert_nonnull(strstr(out, "00000008:"));
    g_free(out);
    g_assert_cmpint(run_cli(f, read_neg, &out), ==, 1);
    g_free(out);
    g_assert_cmpint(run_cli(f, read_bad, &out), ==, 1);
    g_free(out);
}

/* A refusal at --max-peers is named as what it likely is. */
static void test_cli_refused(Fixture *f, gconstpointer data)
{
    static const char *const dump[] = { "dump", NULL };
    g_autofree char *bin = client_binary();
    g_autoptr(IvshmemClient) a = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    if (!g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("ivshmem-client is not built");
        return;
    }
    f->max_peers = 1;
    server_start(f, 1, true);
    a = join(f, true);
    g_assert_cmpint(run_cli_full(f, dump, NULL, &out, &err), ==, 3);
    g_assert_nonnull(strstr(err, "before giving this client an ID"));
    g_assert_nonnull(strstr(err, "--max-peers"));
}

/* --version names this series, not a QEMU release, and the protocol. */
static void test_cli_version(Fixture *f, gconstpointer data)
{
    g_autofree char *bin = client_binary();
    const char *argv[] = { bin, "--version", NULL };
    g_autofree char *out = NULL;
    int status;

    if (!g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("ivshmem-client is not built");
        return;
    }
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                               G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out,
                               NULL, &status, NULL));
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    g_assert_true(g_str_has_prefix(out, "ivshmem-client of the ivshmem "
                                   "series, built in a QEMU "));
    g_assert_nonnull(strstr(out, "ivshmem protocol version 0"));
}

/* Tests: the command line tool's --json output */

/* The tool running interactively, its stdin and stdout as pipes. */
typedef struct Cli {
    GPid pid;
    int in;
    int out;
    GString *buf;               /* stdout read but not yet taken */
} Cli;

static void cli_start(Fixture *f, Cli *cli, const char *const *opts)
{
    g_autofree char *bin = client_binary();
    g_autoptr(GPtrArray) argv = g_ptr_array_new();

    g_ptr_array_add(argv, bin);
    g_ptr_array_add(argv, (char *)"-S");
    g_ptr_array_add(argv, f->sock_path);
    for (; *opts; opts++) {
        g_ptr_array_add(argv, (char *)*opts);
    }
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_async_with_pipes(NULL, (char **)argv->pdata, NULL,
                                           G_SPAWN_DO_NOT_REAP_CHILD |
                                           G_SPAWN_STDERR_TO_DEV_NULL,
                                           NULL, NULL, &cli->pid, &cli->in,
                                           &cli->out, NULL, NULL));
    cli->buf = g_string_new(NULL);
}

/* The next line of output without its newline; NULL at end of file. */
static char *cli_line(Cli *cli)
{
    int64_t deadline = g_get_monotonic_time() + TIMEOUT_MS * 1000LL;
    struct pollfd pfd = { .fd = cli->out, .events = POLLIN };
    char chunk[1024], *nl, *line;
    ssize_t n;

    while (!(nl = memchr(cli->buf->str, '\n', cli->buf->len))) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        if (poll(&pfd, 1, 100) <= 0) {
            continue;
        }
        n = read(cli->out, chunk, sizeof(chunk));
        g_assert_cmpint(n, >=, 0);
        if (n == 0) {
            /* Every line ends with a newline: nothing may be left. */
            g_assert_cmpuint(cli->buf->len, ==, 0);
            return NULL;
        }
        g_string_append_len(cli->buf, chunk, n);
    }
    line = g_strndup(cli->buf->str, nl - cli->buf->str);
    g_string_erase(cli->buf, 0, nl - cli->buf->str + 1);
    /* JSON Lines: one object per line, its "event" key first. */
    g_assert_true(g_str_has_prefix(line, "{\"event\": \""));
    g_assert_true(g_str_has_suffix(line, "}"));
    return line;
}

static void cli_expect(Cli *cli, const char *want)
{
    g_autofree char *line = cli_line(cli);

    g_assert_cmpstr(line, ==, want);
}

static char *peer_vector(unsigned peer, unsigned vector)
{
    return g_strdup_printf("{\"event\": \"peer-vector\", \"peer\": %u, "
                           "\"vector\": %u}", peer, vector);
}

static void cli_send(Cli *cli, const char *cmd)
{
    g_assert_cmpint(write(cli->in, cmd, strlen(cmd)), ==, strlen(cmd));
}

/* Close its stdin, check that no output is left; its exit status. */
static int cli_finish(Cli *cli)
{
    int status;

    if (cli->in >= 0) {
        close(cli->in);
    }
    g_assert_null(cli_line(cli));
    close(cli->out);
    g_assert_cmpint(waitpid(cli->pid, &status, 0), ==, cli->pid);
    g_spawn_close_pid(cli->pid);
    g_string_free(cli->buf, true);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Lines up to setup-done, in any order: what the setup reported. */
static GStrv cli_setup_lines(Cli *cli, const char *setup_done)
{
    g_autoptr(GPtrArray) lines = g_ptr_array_new();
    char *line;

    while ((line = cli_line(cli)) && strcmp(line, setup_done)) {
        g_assert_true(g_str_has_prefix(line, "{\"event\": \"peer-vector\""));
        g_ptr_array_add(lines, line);
    }
    g_assert_nonnull(line);
    g_free(line);
    g_ptr_array_add(lines, NULL);
    return (GStrv)g_ptr_array_free(g_steal_pointer(&lines), false);
}

static void test_cli_json_events(Fixture *f, gconstpointer data)
{
    static const char *const opts[] = { "-v", "--json", NULL };
    g_autofree char *bin = client_binary();
    g_autoptr(IvshmemClient) a = NULL;
    g_auto(GStrv) setup = NULL;
    g_autofree char *line = NULL;
    IvshmemClient *b;
    unsigned i;
    Cli cli;

    if (!g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("ivshmem-client is not built");
        return;
    }
    server_start(f, 2, true);
    a = join(f, true);
    cli_start(f, &cli, opts);
    setup = cli_setup_lines(&cli, "{\"event\": \"setup-done\", \"id\": 1, "
                            "\"vectors\": 2, \"shm_size\": 65536, "
                            "\"marker\": true}");
    /* Peer 0's vectors and our own: four vector events. */
    g_assert_cmpuint(g_strv_length(setup), ==, 4);
    for (i = 0; i < 4; i++) {
        g_autofree char *want = peer_vector(i / 2, i % 2);

        g_assert_true(g_strv_contains((const char *const *)setup, want));
    }
    wait_peer(a, 1, 2);

    /* A peer joins: its vectors, then dump shows it. */
    b = join(f, true);
    for (i = 0; i < 2; i++) {
        g_free(line);
        line = peer_vector(2, i);
        cli_expect(&cli, line);
    }
    cli_send(&cli, "dump\n");
    cli_expect(&cli, "{\"event\": \"dump\", \"id\": 1, \"vectors\": 2, "
               "\"shm_size\": 65536, \"peers\": [{\"id\": 0, "
               "\"vectors\": 2}, {\"id\": 2, \"vectors\": 2}]}");

    /* It leaves: one event, and dump no longer lists it. */
    ivshmem_client_free(b);
    cli_expect(&cli, "{\"event\": \"peer-gone\", \"peer\": 2}");
    cli_send(&cli, "dump\n");
    cli_expect(&cli, "{\"event\": \"dump\", \"id\": 1, \"vectors\": 2, "
               "\"shm_size\": 65536, \"peers\": [{\"id\": 0, "
               "\"vectors\": 2}]}");

    /* An interrupt on our vector 1, and none on vector 0. */
    g_assert_true(ivshmem_client_ring(a, 1, 1, &error_abort));
    cli_send(&cli, "wait 1 10000\nwait 0 0\n");
    cli_expect(&cli, "{\"event\": \"interrupt\", \"vector\": 1}");
    cli_expect(&cli, "{\"event\": \"timeout\", \"vector\": 0}");

    /* Memory as hex digits. */
    strcpy((char *)ivshmem_client_get_shm(a, NULL) + 0x10, "hi");
    cli_send(&cli, "read 0x10 2\n");
    cli_expect(&cli, "{\"event\": \"read\", \"offset\": 16, \"length\": 2, "
               "\"data\": \"6869\"}");

    /* Errors name their command; quotes and backslashes are escaped. */
    cli_send(&cli, "read 0 \"x\\\nring 7 0\n");
    cli_expect(&cli, "{\"event\": \"error\", "
               "\"command\": \"read 0 \\\"x\\\\\", "
               "\"message\": \"invalid length '\\\"x\\\\'\"}");
    cli_expect(&cli, "{\"event\": \"error\", \"command\": \"ring 7 0\", "
               "\"message\": \"no peer 7 (vector 0)\"}");
    /* The output is ASCII; bytes that are not UTF-8 become U+FFFD. */
    cli_send(&cli, "read 0 \xc3\xa9\xff\n");
    cli_expect(&cli, "{\"event\": \"error\", "
               "\"command\": \"read 0 \\u00E9\\uFFFD\", "
               "\"message\": \"invalid length '\\u00E9\\uFFFD'\"}");
    g_assert_cmpint(cli_finish(&cli), ==, 1);
}

/* Without -v, only what the commands print; a lost server is an event. */
static void test_cli_json_quiet(Fixture *f, gconstpointer data)
{
    static const char *const opts[] = { "--json", NULL };
    static const char *const dump[] = { "--json", "dump", NULL };
    g_autofree char *bin = client_binary();
    g_autoptr(IvshmemClient) a = NULL;
    g_autofree char *out = NULL;
    Cli cli;

    if (!g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("ivshmem-client is not built");
        return;
    }
    server_start(f, 1, false);
    a = join(f, false);
    g_assert_cmpint(run_cli(f, dump, &out), ==, 0);
    g_assert_cmpstr(out, ==, "{\"event\": \"dump\", \"id\": 1, "
                    "\"vectors\": 1, \"shm_size\": 65536, \"peers\": [{\"id\": 0, "
                    "\"vectors\": 1}]}\n");

    cli_start(f, &cli, opts);
    cli_send(&cli, "dump\n");
    cli_expect(&cli, "{\"event\": \"dump\", \"id\": 2, \"vectors\": 1, "
               "\"shm_size\": 65536, \"peers\": [{\"id\": 0, "
               "\"vectors\": 1}]}");
    server_stop(f);
    {
        g_autofree char *line = cli_line(&cli);

        g_assert_true(g_str_has_prefix(line,
                                       "{\"event\": \"server-lost\", "
                                       "\"message\": \""));
    }
    g_assert_cmpint(cli_finish(&cli), ==, 3);
}

/* A failed join, refused or not, is one join-failed line. */
static void test_cli_json_join_failed(Fixture *f, gconstpointer data)
{
    static const char *const dump[] = { "--json", "dump", NULL };
    g_autofree char *bin = client_binary();
    g_autoptr(IvshmemClient) a = NULL;
    g_autofree char *prefix = NULL;
    char *out = NULL;

    if (!g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("ivshmem-client is not built");
        return;
    }
    prefix = g_strdup_printf("{\"event\": \"join-failed\", "
                             "\"socket\": \"%s\", "
                             "\"message\": \"cannot join the server at %s: ",
                             f->sock_path, f->sock_path);
    g_assert_cmpint(run_cli(f, dump, &out), ==, 3);
    g_assert_true(g_str_has_prefix(out, prefix));
    g_assert_true(g_str_has_suffix(out, "\", \"refused\": false}\n"));
    g_assert_true(strchr(out, '\n') + 1 == out + strlen(out));
    g_free(out);

    f->max_peers = 1;
    server_start(f, 1, true);
    a = join(f, true);
    g_assert_cmpint(run_cli(f, dump, &out), ==, 3);
    g_assert_true(g_str_has_prefix(out, prefix));
    g_assert_true(g_str_has_suffix(out, "\", \"refused\": true}\n"));
    g_assert_true(strchr(out, '\n') + 1 == out + strlen(out));
    g_free(out);
}

static void add_test(const char *path,
                     void (*fn)(Fixture *f, gconstpointer data))
{
    g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown);
}

int main(int argc, char **argv)
{
    struct sigaction sa = {
        .sa_handler = remove_on_abort,
        .sa_flags = SA_RESETHAND,
    };

    g_test_init(&argc, &argv, NULL);
    sigaction(SIGABRT, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    add_test("/ivshmem-client/parse/byte-by-byte", test_byte_by_byte);
    add_test("/ivshmem-client/parse/short-reads", test_short_reads);
    add_test("/ivshmem-client/parse/malformed", test_malformed);
    add_test("/ivshmem-client/parse/two-fds", test_two_fds);
    add_test("/ivshmem-client/server/ring-wait", test_ring_wait);
    add_test("/ivshmem-client/server/no-marker", test_no_marker);
    add_test("/ivshmem-client/server/stops", test_server_stops);
    add_test("/ivshmem-client/cli", test_cli);
    add_test("/ivshmem-client/cli/version", test_cli_version);
    add_test("/ivshmem-client/cli/exit-status", test_cli_exit_status);
    add_test("/ivshmem-client/cli/numbers", test_cli_numbers);
    add_test("/ivshmem-client/cli/refused", test_cli_refused);
    add_test("/ivshmem-client/cli/json/events", test_cli_json_events);
    add_test("/ivshmem-client/cli/json/quiet", test_cli_json_quiet);
    add_test("/ivshmem-client/cli/json/join-failed",
             test_cli_json_join_failed);
    return g_test_run();
}
