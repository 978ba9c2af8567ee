/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ivshmem-server library: shared memory, listening socket, peers and
 * the epoll loop that serves them the ivshmem version 0 protocol plus the
 * setup-end marker (docs/tools/ivshmem-server.rst).
 *
 * Every peer has an output queue.  Messages are appended to it and
 * written when the socket accepts them, so a peer that does not read
 * never blocks the others and never loses or reorders a message.
 */

#include "qemu/osdep.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include "qapi/error.h"
#include "qemu/bitmap.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/host-utils.h"
#include "qemu/memfd.h"
#include "qemu/queue.h"
#include "ivshmem-server.h"

#define SERVER_MAX_EVENTS   64
/* Accept at most this many connections per wakeup, to stay fair. */
#define SERVER_ACCEPT_BURST 64
/* Of a setup, the messages that are not a peer's vector. */
#define SERVER_SETUP_EXTRA  4

typedef enum SourceKind {
    SOURCE_LISTEN,
    SOURCE_STOP,
    SOURCE_PEER,
} SourceKind;

/* What an epoll event points to. */
typedef struct Source {
    SourceKind kind;
} Source;

/*
 * The eventfds of one peer.  Queued messages hold a reference, so an fd
 * number stays valid (and is not reused for another file) until every
 * message carrying it has been sent, even after its peer has left.
 */
typedef struct Vectors {
    unsigned refcnt;
    unsigned n;
    int fds[];
} Vectors;

typedef struct Msg {
    QSIMPLEQ_ENTRY(Msg) next;
    uint8_t data[IVSHMEM_MSG_SIZE];     /* little-endian int64 */
    int fd;                             /* -1: no fd */
    Vectors *ref;                       /* owner of @fd, or NULL */
} Msg;

typedef struct Peer {
    Source src;                 /* must stay first */
    IvshmemServer *s;
    QTAILQ_ENTRY(Peer) next;    /* in s->peers, ascending ID */
    int sock;
    unsigned id;
    Vectors *vectors;
    QSIMPLEQ_HEAD(, Msg) queue;
    long backlog;               /* messages in @queue */
    long setup_left;            /* of its setup burst, still in @queue */
    bool announced;             /* the other peers were told it joined */
    size_t sent;                /* bytes of the head message already sent */
    bool want_out;              /* EPOLLOUT is registered */
    bool dirty;                 /* in s->dirty: needs a flush */
    bool dead;                  /* dropped, waiting to be freed */
} Peer;

struct IvshmemServer {
    IvshmemServerConfig cfg;
    char *socket_path;
    char *shm_path;

    int epoll_fd;
    int listen_fd;
    bool own_socket;            /* we bound it: remove it at exit */
    dev_t socket_dev;
    ino_t socket_ino;
    /* Spare fd, given up to accept and refuse when out of fds. */
    int reserve_fd;
    Source listen_src;
    Source stop_src;
    bool stop;
    bool closing;               /* in ivshmem_server_free() */

    int shm_fd;
    int shm_lock_fd;            /* holds our flock on the memory, or -1 */
    uint64_t shm_size;
    bool shm_created;           /* a --shm-file we created */

    QTAILQ_HEAD(, Peer) peers;
    unsigned num_peers;
    unsigned long *ids;         /* bitmap of IDs in use */
    unsigned next_id;           /* where the search for a free ID starts */
    GQueue dirty;               /* peers whose queue needs a flush */
    GSList *zombies;            /* dropped peers, freed after dispatch */
};

static void G_GNUC_PRINTF(3, 4)
server_log(IvshmemServer *s, IvshmemServerLogLevel level,
           const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    if (!s->cfg.log) {
        return;
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    s->cfg.log(s->cfg.log_opaque, level, msg);
}

void ivshmem_server_config_init(IvshmemServerConfig *cfg)
{
    *cfg = (IvshmemServerConfig) {
        .socket_path = IVSHMEM_SERVER_DEFAULT_SOCKET,
        .listen_fd = -1,
        .socket_mode = -1,
        .socket_gid = -1,
        .shm_kind = IVSHMEM_SERVER_SHM_MEMFD,
        .shm_size = 0,
        .vectors = IVSHMEM_SERVER_DEFAULT_VECTORS,
        .max_peers = IVSHMEM_SERVER_DEFAULT_MAX_PEERS,
        .max_backlog = IVSHMEM_SERVER_DEFAULT_MAX_BACKLOG,
        /*
         * Off by default: an unmodified QEMU ivshmem device frees a
         * peer's eventfds on a disconnect without forgetting them, so
         * the marker (a disconnect of a free ID) makes it write into
         * freed memory when a peer gets that ID; QEMU's original
         * ivshmem-client reconnects on it, again and again.
         */
        .setup_marker = false,
    };
}

/* Sizes */

/* @size exactly: in the largest binary unit that divides it. */
static char *size_str(uint64_t size)
{
    static const char *const units[] = {
        "bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB",
    };
    int i;

    for (i = G_N_ELEMENTS(units) - 1; i > 0; i--) {
        uint64_t unit = 1ULL << (10 * i);

        if (size >= unit && !(size % unit)) {
            return g_strdup_printf("%" PRIu64 " %s", size / unit, units[i]);
        }
    }
    return g_strdup_printf("%" PRIu64 " bytes", size);
}

bool ivshmem_server_check_size(uint64_t size, Error **errp)
{
    g_autofree char *str = size_str(size);
    g_autofree char *min = size_str(IVSHMEM_SERVER_MIN_SIZE);
    g_autofree char *max = size_str(IVSHMEM_SERVER_MAX_SIZE);
    g_autofree char *lo = NULL;
    g_autofree char *hi = NULL;
    uint64_t below, above;

    if (size < IVSHMEM_SERVER_MIN_SIZE) {
        error_setg(errp, "shared memory size %s is too small: the minimum "
                   "is %s", str, min);
        return false;
    }
    if (size > IVSHMEM_SERVER_MAX_SIZE) {
        error_setg(errp, "shared memory size %s is too large: the maximum "
                   "is %s (every peer maps all of it)", str, max);
        return false;
    }
    if (is_power_of_2(size)) {
        return true;
    }
    /* The device maps it as a PCI BAR, and those are powers of two. */
    below = pow2floor(size);
    above = below << 1;
    lo = size_str(below);
    hi = above <= IVSHMEM_SERVER_MAX_SIZE ? size_str(above) :
         g_strdup("none above");
    error_setg(errp, "shared memory size %s is not a power of two; the "
               "nearest valid sizes are %s and %s", str, lo, hi);
    return false;
}

bool ivshmem_server_parse_size(const char *str, uint64_t *size, Error **errp)
{
    g_autofree char *max = size_str(IVSHMEM_SERVER_MAX_SIZE);
    uint64_t val;
    int ret;

    ret = qemu_strtosz(str, NULL, &val);
    if (ret == -ERANGE) {
        error_setg(errp, "size '%s' is too large: the maximum is %s", str,
                   max);
        return false;
    }
    if (ret < 0) {
        error_setg(errp, "invalid size '%s': use a number with an optional "
                   "K, M, G or T suffix", str);
        return false;
    }
    if (!ivshmem_server_check_size(val, errp)) {
        return false;
    }
    *size = val;
    return true;
}

/* Shared memory */

static bool shm_resize(int fd, uint64_t size, const char *what, Error **errp)
{
    if (ftruncate(fd, size) < 0) {
        g_autofree char *str = size_str(size);

        error_setg_errno(errp, errno, "cannot resize %s to %s", what, str);
        return false;
    }
    return true;
}

static uint64_t shm_default_size(IvshmemServer *s)
{
    return s->cfg.shm_size ? s->cfg.shm_size : IVSHMEM_SERVER_DEFAULT_SIZE;
}

static int shm_open_memfd(IvshmemServer *s, Error **errp)
{
    /* Sealed so that no peer can shrink it under the others' mappings. */
    return qemu_memfd_create("ivshmem", s->shm_size, false, 0,
                             F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL,
                             errp);
}

/*
 * A server holds an flock on the memory it serves, through an fd of its
 * own (the peers get another one, so the lock goes with the server): a
 * memory that cannot be locked is served by another server.  @lock_fd
 * is a second open of the object of @fd, or -1 with errno set.
 */
static bool shm_lock(IvshmemServer *s, int fd, int lock_fd, const char *what,
                     Error **errp)
{
    struct stat a, b;

    if (lock_fd < 0) {
        error_setg_errno(errp, errno, "cannot open %s again to lock it",
                         what);
        return false;
    }
    if (fstat(fd, &a) < 0 || fstat(lock_fd, &b) < 0) {
        error_setg_errno(errp, errno, "cannot stat %s", what);
        close(lock_fd);
        return false;
    }
    if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
        error_setg(errp, "%s was replaced while it was opened", what);
        close(lock_fd);
        return false;
    }
    if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) {
            error_setg(errp, "%s is in use by another ivshmem-server", what);
        } else {
            error_setg_errno(errp, errno, "cannot lock %s", what);
        }
        close(lock_fd);
        return false;
    }
    s->shm_lock_fd = lock_fd;
    return true;
}

static bool shm_lock_posix(IvshmemServer *s, int fd, const char *what,
                           Error **errp)
{
    return shm_lock(s, fd, shm_open(s->shm_path, O_RDONLY | O_NOFOLLOW, 0),
                    what, errp);
}

/*
 * An existing POSIX object left by a server that is gone: adopt it only
 * if it is ours alone and of the size asked for (resizing could harm
 * whoever still maps it).
 */
static bool shm_adopt_posix(IvshmemServer *s, int fd, const char *what,
                            Error **errp)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "cannot stat %s", what);
        return false;
    }
    if (st.st_uid != geteuid()) {
        error_setg(errp, "%s belongs to user %u, not to us; refusing to "
                   "serve it", what, (unsigned)st.st_uid);
        return false;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        error_setg(errp, "%s is open to other users (mode %04o); refusing "
                   "to serve it", what, (unsigned)(st.st_mode & 07777));
        return false;
    }
    if (!shm_lock_posix(s, fd, what, errp)) {
        return false;
    }
    if (st.st_size == 0) {
        return shm_resize(fd, s->shm_size, what, errp);
    }
    if (st.st_size != s->shm_size) {
        g_autofree char *have = size_str(st.st_size);
        g_autofree char *want = size_str(s->shm_size);

        error_setg(errp, "%s exists and is %s, not %s; remove it or give "
                   "its size", what, have, want);
        return false;
    }
    server_log(s, IVSHMEM_SERVER_LOG_INFO, "serving the existing %s, left "
               "by a server that is gone", what);
    return true;
}

static int shm_open_posix(IvshmemServer *s, Error **errp)
{
    g_autofree char *what = g_strdup_printf("POSIX shared memory '%s'",
                                            s->shm_path);
    int fd = shm_open(s->shm_path, O_RDWR | O_CREAT | O_EXCL, 0600);

    if (fd >= 0) {
        if (!shm_lock_posix(s, fd, what, errp) ||
            !shm_resize(fd, s->shm_size, what, errp)) {
            close(fd);
            shm_unlink(s->shm_path);
            return -1;
        }
        return fd;
    }
    if (errno == EEXIST) {
        fd = shm_open(s->shm_path, O_RDWR | O_NOFOLLOW, 0);
    }
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot open %s", what);
        return -1;
    }
    if (!shm_adopt_posix(s, fd, what, errp)) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * A directory on hugetlbfs: a huge-page memfd of the same page size
 * instead of a file there, since a memfd can be sealed and a file cannot.
 * The pages come from the kernel's pool for that size, not from the
 * mount's own limits.
 */
static int shm_open_hugetlb(IvshmemServer *s, uint64_t page, Error **errp)
{
    g_autofree char *str = size_str(s->shm_size);
    g_autofree char *pg = size_str(page);

    if (!is_power_of_2(page) || s->shm_size % page) {
        error_setg(errp, "'%s' is a hugetlbfs of %s pages: the size %s "
                   "must be a multiple of that", s->shm_path, pg, str);
        return -1;
    }
    return qemu_memfd_create("ivshmem", s->shm_size, true, page,
                             F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL,
                             errp);
}

static int shm_open_dir(IvshmemServer *s, Error **errp)
{
    g_autofree char *path = g_build_filename(s->shm_path, "ivshmem.XXXXXX",
                                             NULL);
    struct statfs sfs;
    int fd;

    if (statfs(s->shm_path, &sfs) == 0 && sfs.f_type == HUGETLBFS_MAGIC) {
        return shm_open_hugetlb(s, sfs.f_bsize, errp);
    }
    fd = mkostemp(path, O_CLOEXEC);

    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create a file in '%s'",
                         s->shm_path);
        return -1;
    }
    /* Nobody needs the name: the memory goes away with the last user. */
    if (unlink(path) < 0) {
        error_setg_errno(errp, errno, "cannot unlink '%s'", path);
        close(fd);
        return -1;
    }
    if (!shm_resize(fd, s->shm_size, path, errp)) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * A user file keeps its contents: adopt its size when none was asked
 * for, refuse a different one rather than truncate the user's data.
 */
static bool shm_file_size(IvshmemServer *s, int fd, Error **errp)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "cannot stat '%s'", s->shm_path);
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        error_setg(errp, "'%s' is not a regular file", s->shm_path);
        return false;
    }
    if (st.st_size == 0) {
        return shm_resize(fd, s->shm_size, s->shm_path, errp);
    }
    if (!s->cfg.shm_size) {
        if (!ivshmem_server_check_size(st.st_size, errp)) {
            error_prepend(errp, "'%s': ", s->shm_path);
            return false;
        }
        s->shm_size = st.st_size;
        return true;
    }
    if (st.st_size != s->shm_size) {
        g_autofree char *have = size_str(st.st_size);
        g_autofree char *want = size_str(s->shm_size);

        error_setg(errp, "'%s' is %s, not %s; give its size or remove it",
                   s->shm_path, have, want);
        return false;
    }
    return true;
}

static int shm_open_file(IvshmemServer *s, Error **errp)
{
    g_autofree char *what = g_strdup_printf("'%s'", s->shm_path);
    int flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC;
    int fd = open(s->shm_path, flags | O_CREAT | O_EXCL, 0600);

    if (fd >= 0) {
        s->shm_created = true;
    } else if (errno == EEXIST) {
        fd = open(s->shm_path, flags);
    }
    if (fd < 0 && errno == ELOOP) {
        error_setg(errp, "'%s' is a symbolic link; refusing to follow it",
                   s->shm_path);
        return -1;
    }
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot open '%s'", s->shm_path);
        return -1;
    }
    if (!shm_lock(s, fd, open(s->shm_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC),
                  what, errp) ||
        !shm_file_size(s, fd, errp)) {
        close(fd);
        if (s->shm_created) {
            unlink(s->shm_path);
            s->shm_created = false;
        }
        return -1;
    }
    return fd;
}

static bool shm_init(IvshmemServer *s, Error **errp)
{
    s->shm_size = shm_default_size(s);
    if (!ivshmem_server_check_size(s->shm_size, errp)) {
        return false;
    }
    switch (s->cfg.shm_kind) {
    case IVSHMEM_SERVER_SHM_MEMFD:
        s->shm_fd = shm_open_memfd(s, errp);
        break;
    case IVSHMEM_SERVER_SHM_POSIX:
        s->shm_fd = shm_open_posix(s, errp);
        break;
    case IVSHMEM_SERVER_SHM_DIR:
        s->shm_fd = shm_open_dir(s, errp);
        break;
    case IVSHMEM_SERVER_SHM_FILE:
        s->shm_fd = shm_open_file(s, errp);
        break;
    default:
        g_assert_not_reached();
    }
    return s->shm_fd >= 0;
}

static void shm_release(IvshmemServer *s)
{
    if (s->shm_lock_fd >= 0) {
        close(s->shm_lock_fd);
        s->shm_lock_fd = -1;
    }
    if (s->shm_fd < 0) {
        return;
    }
    close(s->shm_fd);
    s->shm_fd = -1;
    if (s->cfg.shm_kind == IVSHMEM_SERVER_SHM_POSIX &&
        shm_unlink(s->shm_path) < 0) {
        server_log(s, IVSHMEM_SERVER_LOG_WARNING,
                   "cannot remove POSIX shared memory '%s': %s",
                   s->shm_path, strerror(errno));
    }
}

/* Listening socket */

static bool socket_address(const char *path, struct sockaddr_un *addr,
                           Error **errp)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(addr->sun_path)) {
        error_setg(errp, "socket path '%s' is too long (at most %zu bytes)",
                   path, sizeof(addr->sun_path) - 1);
        return false;
    }
    pstrcpy(addr->sun_path, sizeof(addr->sun_path), path);
    return true;
}

/*
 * bind() found a file at @path.  It is ours to replace only if it is a
 * socket that nobody listens on, left behind by a server that died.
 */
static bool socket_is_stale(const struct sockaddr_un *addr, Error **errp)
{
    struct stat st;
    int fd, ret;

    if (lstat(addr->sun_path, &st) < 0) {
        if (errno == ENOENT) {
            /* Gone in the meantime: nothing to replace, bind again. */
            return true;
        }
        error_setg_errno(errp, errno, "cannot stat '%s'", addr->sun_path);
        return false;
    }
    if (!S_ISSOCK(st.st_mode)) {
        error_setg(errp, "'%s' exists and is not a socket", addr->sun_path);
        return false;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create a socket");
        return false;
    }
    do {
        ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
    } while (ret < 0 && errno == EINTR);
    if (ret < 0 && errno == ECONNREFUSED) {
        close(fd);
        return true;
    }
    if (ret == 0 || errno == EAGAIN) {
        error_setg(errp, "another server is running on '%s' (it accepts "
                   "connections); stop it or choose another --socket",
                   addr->sun_path);
    } else {
        error_setg_errno(errp, errno, "cannot tell whether '%s' is in use",
                         addr->sun_path);
    }
    close(fd);
    return false;
}

/* bind() failed on @fd: replace a stale socket file and try again. */
static bool socket_rebind(int fd, const struct sockaddr_un *addr,
                          Error **errp)
{
    if (errno != EADDRINUSE) {
        error_setg_errno(errp, errno, "cannot bind '%s'", addr->sun_path);
        return false;
    }
    if (!socket_is_stale(addr, errp)) {
        return false;
    }
    if (unlink(addr->sun_path) < 0 && errno != ENOENT) {
        error_setg_errno(errp, errno, "cannot remove stale socket '%s'",
                         addr->sun_path);
        return false;
    }
    if (bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0) {
        error_setg_errno(errp, errno, "cannot bind '%s'", addr->sun_path);
        return false;
    }
    return true;
}

static int socket_bind(const struct sockaddr_un *addr, Error **errp)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create a socket");
        return -1;
    }
    if (bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 &&
        !socket_rebind(fd, addr, errp)) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * Give the socket file we just bound (still mode 0) its group, then its
 * mode: --socket-mode, or what the umask would have given.
 */
static bool socket_set_access(IvshmemServer *s, const struct stat *st,
                              mode_t old_umask, Error **errp)
{
    mode_t mode = s->cfg.socket_mode >= 0 ? s->cfg.socket_mode :
                  0777 & ~old_umask;

    if (s->cfg.socket_gid >= 0 &&
        fchownat(AT_FDCWD, s->socket_path, -1, s->cfg.socket_gid,
                 AT_SYMLINK_NOFOLLOW) < 0) {
        error_setg_errno(errp, errno, "cannot give '%s' to group %" PRId64,
                         s->socket_path, s->cfg.socket_gid);
        return false;
    }
    /*
     * chmod() would follow a symbolic link; the path was our socket when
     * socket_init() looked, and only someone who may write to its
     * directory could have replaced it since.
     */
    if (!S_ISSOCK(st->st_mode)) {
        error_setg(errp, "'%s' is not the socket just bound", s->socket_path);
        return false;
    }
    if (chmod(s->socket_path, mode) < 0) {
        error_setg_errno(errp, errno, "cannot set the mode of '%s' to %04o",
                         s->socket_path, (unsigned)mode);
        return false;
    }
    return true;
}

static bool socket_init(IvshmemServer *s, Error **errp)
{
    bool custom = s->cfg.socket_mode >= 0 || s->cfg.socket_gid >= 0;
    mode_t old_umask = 0;
    struct sockaddr_un addr;
    struct stat st;

    if (s->cfg.listen_fd >= 0) {
        if (custom) {
            server_log(s, IVSHMEM_SERVER_LOG_WARNING, "the socket comes "
                       "from socket activation: its mode and group are "
                       "set there (SocketMode=, SocketGroup=), not here");
        }
        s->listen_fd = s->cfg.listen_fd;
        if (!g_unix_set_fd_nonblocking(s->listen_fd, true, NULL)) {
            error_setg_errno(errp, errno, "cannot make the socket "
                             "non-blocking");
            return false;
        }
        return true;
    }
    if (!socket_address(s->socket_path, &addr, errp)) {
        return false;
    }
    if (custom) {
        /* Nobody may use the file until it has its mode and group. */
        old_umask = umask(0777);
    }
    s->listen_fd = socket_bind(&addr, errp);
    if (custom) {
        umask(old_umask);
    }
    if (s->listen_fd < 0) {
        return false;
    }
    s->own_socket = true;
    if (lstat(s->socket_path, &st) < 0) {
        error_setg_errno(errp, errno, "cannot stat '%s'", s->socket_path);
        return false;
    }
    s->socket_dev = st.st_dev;
    s->socket_ino = st.st_ino;
    if (custom && !socket_set_access(s, &st, old_umask, errp)) {
        return false;
    }
    if (listen(s->listen_fd, SOMAXCONN) < 0) {
        error_setg_errno(errp, errno, "cannot listen on '%s'",
                         s->socket_path);
        return false;
    }
    return true;
}

/* Remove the socket file, unless another server has replaced it since. */
static void socket_release(IvshmemServer *s)
{
    struct stat st;

    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    if (!s->own_socket) {
        return;
    }
    s->own_socket = false;
    if (lstat(s->socket_path, &st) < 0 || st.st_dev != s->socket_dev ||
        st.st_ino != s->socket_ino) {
        return;
    }
    if (unlink(s->socket_path) < 0) {
        server_log(s, IVSHMEM_SERVER_LOG_WARNING, "cannot remove '%s': %s",
                   s->socket_path, strerror(errno));
    }
}

/* Vectors */

static Vectors *vectors_new(unsigned n, Error **errp)
{
    Vectors *v = g_malloc(sizeof(*v) + n * sizeof(v->fds[0]));
    unsigned i;

    v->refcnt = 1;
    v->n = 0;
    for (i = 0; i < n; i++) {
        v->fds[i] = eventfd(0, EFD_CLOEXEC);
        if (v->fds[i] < 0) {
            error_setg_errno(errp, errno, "cannot create eventfd %u of %u",
                             i + 1, n);
            break;
        }
        v->n++;
    }
    if (v->n == n) {
        return v;
    }
    for (i = 0; i < v->n; i++) {
        close(v->fds[i]);
    }
    g_free(v);
    return NULL;
}

static Vectors *vectors_ref(Vectors *v)
{
    v->refcnt++;
    return v;
}

static void vectors_unref(Vectors *v)
{
    unsigned i;

    if (!v || --v->refcnt) {
        return;
    }
    for (i = 0; i < v->n; i++) {
        close(v->fds[i]);
    }
    g_free(v);
}

/* Output queues */

static void peer_mark_dirty(Peer *peer)
{
    if (!peer->dirty) {
        peer->dirty = true;
        g_queue_push_tail(&peer->s->dirty, peer);
    }
}

/*
 * How many messages @peer may leave unread.  Announcements of departed
 * peers that were not sent are withdrawn (peer_forget), so what is
 * queued is one message per vector of every connected peer at most,
 * the rest of the setup, and the departures and vectors of peers that
 * left after @peer was sent part of their announcement: that last part
 * is what cfg.max_backlog bounds.
 */
static long peer_backlog_limit(Peer *peer)
{
    IvshmemServer *s = peer->s;

    return (long)s->num_peers * s->cfg.vectors + SERVER_SETUP_EXTRA +
           s->cfg.max_backlog;
}

/*
 * A new message needs a flush, unless the socket is known to be full:
 * then EPOLLOUT will tell when to go on, and trying now costs a syscall
 * per message for nothing.
 */
static void peer_queued(Peer *peer)
{
    peer->backlog++;
    if (!peer->want_out || peer->backlog > peer_backlog_limit(peer)) {
        peer_mark_dirty(peer);
    }
}

/* Append a message; takes the reference @ref that keeps @fd open. */
static void peer_queue_msg(Peer *peer, int64_t value, int fd, Vectors *ref)
{
    Msg *msg = g_new(Msg, 1);

    stq_le_p(msg->data, value);
    msg->fd = fd;
    msg->ref = ref;
    QSIMPLEQ_INSERT_TAIL(&peer->queue, msg, next);
    peer_queued(peer);
}

/* Append a message; @v and @vector name the fd to pass, if any. */
static void peer_queue(Peer *peer, int64_t value, Vectors *v, unsigned vector)
{
    if (v) {
        peer_queue_msg(peer, value, v->fds[vector], vectors_ref(v));
    } else {
        peer_queue_msg(peer, value, -1, NULL);
    }
}

/* The shared memory fd belongs to the server, which outlives every peer. */
static void peer_queue_shm(Peer *peer)
{
    peer_queue_msg(peer, IVSHMEM_MSG_SHM, peer->s->shm_fd, NULL);
}

static void msg_free(Msg *msg)
{
    vectors_unref(msg->ref);
    g_free(msg);
}

static ssize_t sock_send(int sock, const uint8_t *buf, size_t len, int fd)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct cmsghdr *cmsg;
    ssize_t ret;

    if (fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        cmsg = CMSG_FIRSTHDR(&mh);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    }
    do {
        ret = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (ret < 0 && errno == EINTR);
    return ret;
}

/*
 * Tell the other peers about @peer, once its setup burst is out of our
 * queue.  Until then its socket and ours are busy with the burst (8,200
 * messages at 1,024 peers of 8 vectors): sending the same number of
 * announcements first would only keep the new peer waiting.  A client
 * that never reads a burst too big for its socket is never announced.
 */
static void server_announce(Peer *peer)
{
    IvshmemServer *s = peer->s;
    Peer *other;
    unsigned i;

    peer->announced = true;
    QTAILQ_FOREACH(other, &s->peers, next) {
        if (other == peer) {
            continue;
        }
        for (i = 0; i < peer->vectors->n; i++) {
            peer_queue(other, peer->id, peer->vectors, i);
        }
    }
}

/* Ask for EPOLLOUT exactly while something is left to send. */
static bool peer_update_events(Peer *peer)
{
    bool want_out = !QSIMPLEQ_EMPTY(&peer->queue);
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLRDHUP | (want_out ? EPOLLOUT : 0),
        .data.ptr = &peer->src,
    };

    if (want_out == peer->want_out) {
        return true;
    }
    if (epoll_ctl(peer->s->epoll_fd, EPOLL_CTL_MOD, peer->sock, &ev) < 0) {
        return false;
    }
    peer->want_out = want_out;
    server_log(peer->s, IVSHMEM_SERVER_LOG_DEBUG, want_out ?
               "peer %u: socket full, %ld message(s) wait in its queue" :
               "peer %u: has read its queue (%ld left)", peer->id,
               peer->backlog);
    return true;
}

/*
 * Send as much of the queue as the socket takes.  Returns false with
 * @reason set when the peer must be dropped.
 */
static bool peer_flush(Peer *peer, const char **reason)
{
    Msg *msg;
    ssize_t ret;

    while ((msg = QSIMPLEQ_FIRST(&peer->queue))) {
        /* The fd travels with the first byte of its message. */
        ret = sock_send(peer->sock, msg->data + peer->sent,
                        sizeof(msg->data) - peer->sent,
                        peer->sent ? -1 : msg->fd);
        if (ret < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (ret < 0) {
            *reason = strerror(errno);
            return false;
        }
        peer->sent += ret;
        if (peer->sent < sizeof(msg->data)) {
            continue;
        }
        peer->sent = 0;
        QSIMPLEQ_REMOVE_HEAD(&peer->queue, next);
        peer->backlog--;
        msg_free(msg);
        if (peer->setup_left && !--peer->setup_left) {
            server_announce(peer);
        }
    }
    if (peer->backlog > peer_backlog_limit(peer)) {
        server_log(peer->s, IVSHMEM_SERVER_LOG_WARNING, "peer %u: left more "
                   "than %ld messages unread (%u peer(s) of %u vector(s), "
                   "and %u more allowed); dropping it", peer->id,
                   peer_backlog_limit(peer), peer->s->num_peers,
                   peer->s->cfg.vectors, peer->s->cfg.max_backlog);
        *reason = "too many unread messages";
        return false;
    }
    if (!peer_update_events(peer)) {
        *reason = strerror(errno);
        return false;
    }
    return true;
}

/* Peers */

/* The setup-end marker: the lowest ID that no connected peer holds. */
static int64_t server_marker(IvshmemServer *s)
{
    /* One ID always stays free (max_peers < IVSHMEM_PEER_ID_COUNT). */
    return find_first_zero_bit(s->ids, IVSHMEM_PEER_ID_COUNT);
}

/*
 * The setup of @peer lost the vectors of a peer that left, whose ID is
 * free now: a marker still queued must not skip it, since @peer will
 * never know that ID.  Nothing after the withdrawn vectors was sent.
 */
static void peer_update_marker(Peer *peer)
{
    Msg *msg;
    long idx = 0;

    QSIMPLEQ_FOREACH(msg, &peer->queue, next) {
        if (++idx == peer->setup_left) {
            stq_le_p(msg->data, server_marker(peer->s));
            return;
        }
    }
}

/*
 * @gone has left: withdraw its vectors from @peer's queue if none of
 * them has been sent yet, so that @peer never hears of it and its
 * eventfds can be closed now.  A run of vectors that is partly out stays
 * whole (a client may learn the server's vector count from it).
 * Returns true if @peer has to be told that @gone left.
 */
static bool peer_forget(Peer *peer, Vectors *gone)
{
    QSIMPLEQ_HEAD(, Msg) keep = QSIMPLEQ_HEAD_INITIALIZER(keep);
    long idx = 0, in_setup = 0;
    unsigned queued = 0;
    Msg *msg;

    QSIMPLEQ_FOREACH(msg, &peer->queue, next) {
        if (msg->ref == gone) {
            if (idx == 0 && peer->sent) {
                return true;
            }
            queued++;
        }
        idx++;
    }
    if (queued < gone->n) {
        return true;
    }
    idx = 0;
    while ((msg = QSIMPLEQ_FIRST(&peer->queue))) {
        QSIMPLEQ_REMOVE_HEAD(&peer->queue, next);
        if (msg->ref != gone) {
            QSIMPLEQ_INSERT_TAIL(&keep, msg, next);
        } else {
            in_setup += idx < peer->setup_left;
            msg_free(msg);
        }
        idx++;
    }
    QSIMPLEQ_CONCAT(&peer->queue, &keep);
    peer->backlog -= queued;
    if (peer->setup_left) {
        peer->setup_left -= in_setup;
        if (!peer->setup_left) {
            server_announce(peer);
        } else if (in_setup && peer->s->cfg.setup_marker) {
            peer_update_marker(peer);
        }
    }
    peer_mark_dirty(peer);
    return false;
}

/*
 * Forget a peer now and tell the others.  The structure itself lives on
 * until the current batch of events is dispatched, since later events
 * of the batch may still point to it.
 */
static void peer_drop(Peer *peer, const char *reason)
{
    IvshmemServer *s = peer->s;
    Peer *other;
    Msg *msg;

    if (peer->dead) {
        return;
    }
    peer->dead = true;
    QTAILQ_REMOVE(&s->peers, peer, next);
    s->num_peers--;
    clear_bit(peer->id, s->ids);
    if (epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, peer->sock, NULL) < 0) {
        server_log(s, IVSHMEM_SERVER_LOG_WARNING,
                   "peer %u: cannot stop watching its socket: %s",
                   peer->id, strerror(errno));
    }
    close(peer->sock);
    peer->sock = -1;
    while ((msg = QSIMPLEQ_FIRST(&peer->queue))) {
        QSIMPLEQ_REMOVE_HEAD(&peer->queue, next);
        msg_free(msg);
    }
    peer->backlog = 0;
    server_log(s, IVSHMEM_SERVER_LOG_INFO,
               "peer %u left (%s); %u peer(s) remain", peer->id, reason,
               s->num_peers);
    /* Without an announcement there is nothing to withdraw or tell. */
    if (peer->announced && !s->closing) {
        QTAILQ_FOREACH(other, &s->peers, next) {
            if (peer_forget(other, peer->vectors)) {
                peer_queue(other, peer->id, NULL, 0);
            }
        }
    }
    vectors_unref(peer->vectors);
    peer->vectors = NULL;
    s->zombies = g_slist_prepend(s->zombies, peer);
}

static void server_flush_dirty(IvshmemServer *s)
{
    const char *reason = NULL;
    Peer *peer;

    /* Dropping a peer queues messages to others: loop until quiet. */
    while ((peer = g_queue_pop_head(&s->dirty))) {
        peer->dirty = false;
        if (!peer->dead && !peer_flush(peer, &reason)) {
            peer_drop(peer, reason);
        }
    }
}

static void server_reap(IvshmemServer *s)
{
    g_slist_free_full(s->zombies, g_free);
    s->zombies = NULL;
}

static void peer_insert_sorted(IvshmemServer *s, Peer *peer)
{
    Peer *other;

    QTAILQ_FOREACH(other, &s->peers, next) {
        if (other->id > peer->id) {
            QTAILQ_INSERT_BEFORE(other, peer, next);
            return;
        }
    }
    QTAILQ_INSERT_TAIL(&s->peers, peer, next);
}

/*
 * The setup burst of FACTS steps 1-5, then the setup-end marker.  It
 * names the peers that were announced; the others will be, later.
 */
static void peer_queue_setup(Peer *peer)
{
    IvshmemServer *s = peer->s;
    Peer *other;
    unsigned i;

    peer_queue(peer, IVSHMEM_PROTOCOL_VERSION, NULL, 0);
    peer_queue(peer, peer->id, NULL, 0);
    peer_queue_shm(peer);
    QTAILQ_FOREACH(other, &s->peers, next) {
        if (!other->announced) {
            continue;
        }
        for (i = 0; i < other->vectors->n; i++) {
            peer_queue(peer, other->id, other->vectors, i);
        }
    }
    for (i = 0; i < peer->vectors->n; i++) {
        peer_queue(peer, peer->id, peer->vectors, i);
    }
    if (s->cfg.setup_marker) {
        /* Our ID is already taken in the bitmap. */
        peer_queue(peer, server_marker(s), NULL, 0);
    }
    peer->setup_left = peer->backlog;
}

/*
 * A free ID; the caller makes sure there is one (num_peers < max_peers).
 * By default the next one after the last handed out, wrapping at
 * IVSHMEM_PEER_ID_COUNT: an ID that a peer left comes back only after all
 * the others, which is what keeps unmodified QEMUs safe (see
 * IvshmemServerConfig.reuse_ids).
 */
static unsigned server_alloc_id(IvshmemServer *s)
{
    unsigned long id;

    if (s->cfg.reuse_ids) {
        return find_first_zero_bit(s->ids, IVSHMEM_PEER_ID_COUNT);
    }
    id = find_next_zero_bit(s->ids, IVSHMEM_PEER_ID_COUNT, s->next_id);
    if (id >= IVSHMEM_PEER_ID_COUNT) {
        id = find_first_zero_bit(s->ids, IVSHMEM_PEER_ID_COUNT);
    }
    g_assert(id < IVSHMEM_PEER_ID_COUNT);
    s->next_id = (id + 1) % IVSHMEM_PEER_ID_COUNT;
    return id;
}

/* Takes ownership of @sock. */
static void server_add_peer(IvshmemServer *s, int sock)
{
    Error *err = NULL;
    Peer *peer;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (s->num_peers >= s->cfg.max_peers) {
        server_log(s, IVSHMEM_SERVER_LOG_WARNING, "refusing a connection: "
                   "%u peers are connected (--max-peers %u)", s->num_peers,
                   s->cfg.max_peers);
        close(sock);
        return;
    }
    peer = g_new0(Peer, 1);
    peer->src.kind = SOURCE_PEER;
    peer->s = s;
    peer->sock = sock;
    QSIMPLEQ_INIT(&peer->queue);
    peer->vectors = vectors_new(s->cfg.vectors, &err);
    ev.data.ptr = &peer->src;
    if (peer->vectors &&
        epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, sock, &ev) < 0) {
        error_setg_errno(&err, errno, "cannot watch its socket");
    }
    if (err) {
        server_log(s, IVSHMEM_SERVER_LOG_ERROR, "refusing a connection: %s",
                   error_get_pretty(err));
        error_free(err);
        vectors_unref(peer->vectors);
        close(sock);
        g_free(peer);
        return;
    }
    peer->id = server_alloc_id(s);
    set_bit(peer->id, s->ids);
    peer_queue_setup(peer);
    peer_insert_sorted(s, peer);
    s->num_peers++;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        server_log(s, IVSHMEM_SERVER_LOG_INFO, "peer %u joined (pid and "
                   "uid unknown: %s); %u peer(s) connected", peer->id,
                   strerror(errno), s->num_peers);
        return;
    }
    server_log(s, IVSHMEM_SERVER_LOG_INFO, "peer %u joined (pid %d, uid %u, "
               "gid %u); %u peer(s) connected", peer->id, (int)cred.pid,
               (unsigned)cred.uid, (unsigned)cred.gid, s->num_peers);
}

/*
 * Out of fds: a pending connection would wake epoll again and again.
 * Give up the spare fd to accept it, refuse it, and take the spare back.
 */
static void server_shed_connection(IvshmemServer *s)
{
    int fd;

    if (s->reserve_fd < 0) {
        return;
    }
    close(s->reserve_fd);
    fd = accept(s->listen_fd, NULL, NULL);
    if (fd >= 0) {
        close(fd);
    }
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    server_log(s, IVSHMEM_SERVER_LOG_ERROR, "refusing a connection: out of "
               "file descriptors (raise the limit, e.g. ulimit -n)");
}

static void server_accept(IvshmemServer *s)
{
    int i, sock;

    for (i = 0; i < SERVER_ACCEPT_BURST; i++) {
        sock = accept4(s->listen_fd, NULL, NULL,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (sock >= 0) {
            server_add_peer(s, sock);
            continue;
        }
        switch (errno) {
        case EINTR:
        case ECONNABORTED:
            continue;
        case EMFILE:
        case ENFILE:
            server_shed_connection(s);
            return;
        case EAGAIN:
#if EAGAIN != EWOULDBLOCK
        case EWOULDBLOCK:
#endif
            return;
        default:
            server_log(s, IVSHMEM_SERVER_LOG_ERROR, "accept failed: %s",
                       strerror(errno));
            return;
        }
    }
}

/* Peers never send: any byte, EOF or error ends the peer. */
static void peer_event(Peer *peer, uint32_t events)
{
    char buf[64];
    ssize_t ret;

    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        do {
            ret = recv(peer->sock, buf, sizeof(buf), MSG_DONTWAIT);
        } while (ret < 0 && errno == EINTR);
        if (ret > 0) {
            peer_drop(peer, "it sent data; the protocol is server to client "
                      "only");
            return;
        }
        if (ret == 0) {
            peer_drop(peer, "connection closed");
            return;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            peer_drop(peer, strerror(errno));
            return;
        }
    }
    if (events & EPOLLOUT) {
        peer_mark_dirty(peer);
    }
}

static void server_dispatch(IvshmemServer *s, struct epoll_event *ev)
{
    Source *src = ev->data.ptr;

    switch (src->kind) {
    case SOURCE_LISTEN:
        server_accept(s);
        break;
    case SOURCE_STOP:
        s->stop = true;
        break;
    case SOURCE_PEER:
        if (!container_of(src, Peer, src)->dead) {
            peer_event(container_of(src, Peer, src), ev->events);
        }
        break;
    default:
        g_assert_not_reached();
    }
}

bool ivshmem_server_poll(IvshmemServer *s, int timeout_ms, Error **errp)
{
    struct epoll_event events[SERVER_MAX_EVENTS];
    int n, i;

    n = epoll_wait(s->epoll_fd, events, SERVER_MAX_EVENTS, timeout_ms);
    if (n < 0 && errno == EINTR) {
        return true;
    }
    if (n < 0) {
        error_setg_errno(errp, errno, "epoll_wait failed");
        return false;
    }
    for (i = 0; i < n; i++) {
        server_dispatch(s, &events[i]);
        server_flush_dirty(s);
    }
    server_reap(s);
    return true;
}

bool ivshmem_server_run(IvshmemServer *s, int stop_fd, Error **errp)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->stop_src };
    bool ok = true;

    if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, stop_fd, &ev) < 0) {
        error_setg_errno(errp, errno, "cannot watch the stop fd");
        return false;
    }
    s->stop = false;
    while (ok && !s->stop) {
        ok = ivshmem_server_poll(s, -1, errp);
    }
    if (epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, stop_fd, NULL) < 0 && ok) {
        error_setg_errno(errp, errno, "cannot stop watching the stop fd");
        ok = false;
    }
    return ok;
}

static bool server_watch_listen(IvshmemServer *s, Error **errp)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->listen_src };

    s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epoll_fd < 0) {
        error_setg_errno(errp, errno, "cannot create an epoll instance");
        return false;
    }
    if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->listen_fd, &ev) < 0) {
        error_setg_errno(errp, errno, "cannot watch the listening socket");
        return false;
    }
    return true;
}

static bool server_check_config(const IvshmemServerConfig *cfg, Error **errp)
{
    if (cfg->vectors < 1 || cfg->vectors > IVSHMEM_MAX_VECTORS) {
        error_setg(errp, "the number of vectors must be between 1 and %d",
                   IVSHMEM_MAX_VECTORS);
        return false;
    }
    if (cfg->max_peers < 1 || cfg->max_peers > IVSHMEM_SERVER_MAX_PEERS) {
        error_setg(errp, "the maximum number of peers must be between 1 "
                   "and %d", IVSHMEM_SERVER_MAX_PEERS);
        return false;
    }
    if (cfg->shm_kind != IVSHMEM_SERVER_SHM_MEMFD && !cfg->shm_path) {
        error_setg(errp, "no shared memory name or path given");
        return false;
    }
    if (cfg->listen_fd < 0 && !cfg->socket_path) {
        error_setg(errp, "no socket path given");
        return false;
    }
    if (cfg->socket_mode > 0777) {
        error_setg(errp, "socket mode %o is not between 0 and 0777",
                   cfg->socket_mode);
        return false;
    }
    return true;
}

IvshmemServer *ivshmem_server_new(const IvshmemServerConfig *cfg,
                                  Error **errp)
{
    g_autofree char *size = NULL;
    IvshmemServer *s;

    if (!server_check_config(cfg, errp)) {
        return NULL;
    }
    s = g_new0(IvshmemServer, 1);
    s->cfg = *cfg;
    s->socket_path = g_strdup(cfg->socket_path);
    s->shm_path = g_strdup(cfg->shm_path);
    s->cfg.socket_path = s->socket_path;
    s->cfg.shm_path = s->shm_path;
    s->epoll_fd = -1;
    s->listen_fd = -1;
    s->shm_fd = -1;
    s->shm_lock_fd = -1;
    s->listen_src.kind = SOURCE_LISTEN;
    s->stop_src.kind = SOURCE_STOP;
    QTAILQ_INIT(&s->peers);
    g_queue_init(&s->dirty);
    s->ids = bitmap_new(IVSHMEM_PEER_ID_COUNT);
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    /*
     * The socket first: a server that is refused because another one
     * serves the socket must not touch a memory that one may serve.
     */
    if (!socket_init(s, errp) || !shm_init(s, errp) ||
        !server_watch_listen(s, errp)) {
        if (s->shm_created) {
            unlink(s->shm_path);
        }
        ivshmem_server_free(s);
        return NULL;
    }
    size = size_str(s->shm_size);
    server_log(s, IVSHMEM_SERVER_LOG_INFO, "serving %s of shared memory "
               "with %u vector(s) per peer on %s", size, s->cfg.vectors,
               s->own_socket ? s->socket_path : "an inherited socket");
    return s;
}

void ivshmem_server_free(IvshmemServer *s)
{
    Peer *peer;

    if (!s) {
        return;
    }
    /* Every peer goes: there is nobody to tell about the others. */
    s->closing = true;
    while ((peer = QTAILQ_FIRST(&s->peers))) {
        peer_drop(peer, "server shutting down");
    }
    g_queue_clear(&s->dirty);
    server_reap(s);
    socket_release(s);
    shm_release(s);
    if (s->epoll_fd >= 0) {
        close(s->epoll_fd);
    }
    if (s->reserve_fd >= 0) {
        close(s->reserve_fd);
    }
    g_free(s->ids);
    g_free(s->socket_path);
    g_free(s->shm_path);
    g_free(s);
}

int ivshmem_server_get_fd(IvshmemServer *s)
{
    return s->epoll_fd;
}

unsigned ivshmem_server_num_peers(IvshmemServer *s)
{
    return s->num_peers;
}

long ivshmem_server_peer_backlog(IvshmemServer *s, unsigned id)
{
    Peer *peer;

    QTAILQ_FOREACH(peer, &s->peers, next) {
        if (peer->id == id) {
            return peer->backlog;
        }
    }
    return -1;
}

uint64_t ivshmem_server_shm_size(IvshmemServer *s)
{
    return s->shm_size;
}
