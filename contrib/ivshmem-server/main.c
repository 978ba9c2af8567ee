/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ivshmem-server: command line, logging, daemon mode, signals and
 * systemd socket activation around the ivshmem-server library.
 *
 * docs/tools/ivshmem-server.rst is the user documentation.
 */

#include "qemu/osdep.h"
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/un.h>
#include <syslog.h>
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu-version.h"
#include "ivshmem-server.h"

/* The first fd that systemd passes (SD_LISTEN_FDS_START). */
#define SYSTEMD_FIRST_FD 3
/* What an ivshmem-doorbell device accepts: the MSI-X maximum. */
#define MAX_DEVICE_VECTORS 2048
/* Identical log messages are counted for this long or this often. */
#define LOG_REPEAT_US (10 * G_USEC_PER_SEC)
#define LOG_REPEAT_MAX 1000
/* A write of this much to a pipe that polls writable does not block. */
#define LOG_MAX_LINE 4000
/* Fds the server needs besides its peers', with some room. */
#define SERVER_OWN_FDS 16

enum {
    OPT_SHM_NAME = 256,
    OPT_SHM_DIR,
    OPT_SHM_FILE,
    OPT_MAX_PEERS,
    OPT_DAEMON,
    OPT_SETUP_MARKER,
    OPT_NO_SETUP_MARKER,
    OPT_REUSE_IDS,
    OPT_VERSION,
    OPT_SOCKET_MODE,
    OPT_SOCKET_GROUP,
};

typedef struct Options {
    IvshmemServerConfig cfg;
    const char *pidfile;
    int pid_fd;                 /* the pid file, locked; -1: none */
    dev_t pid_dev;
    ino_t pid_ino;
    int ready_fd;               /* --daemon: tells the parent, or -1 */
    char *notify_path;          /* $NOTIFY_SOCKET, or NULL */
    /* The last message logged, and how often it came again since. */
    char *log_last;
    IvshmemServerLogLevel log_last_level;
    int64_t log_last_time;
    unsigned log_repeats;
    unsigned log_dropped;       /* lines stderr could not take */
    bool daemon;
    bool verbose;
    bool use_syslog;
    bool shm_given;
    /* Absolute versions of the paths given, owned here. */
    char *socket_abs;
    char *shm_abs;
    char *pidfile_abs;
} Options;

static const char *progname = "ivshmem-server";

static void usage(void)
{
    printf("Usage: %s [OPTION]...\n"
           "Serve shared memory and interrupts to ivshmem-doorbell devices "
           "and\nivshmem-client peers.\n\n"
           "  -S, --socket PATH      Unix socket to listen on\n"
           "                         (default %s; ignored under systemd\n"
           "                         socket activation)\n"
           "      --socket-mode MODE permission bits of the socket, in octal "
           "(default:\n"
           "                         from the umask)\n"
           "      --socket-group GROUP  group of the socket, a name or a "
           "number\n"
           "                         (default: the server's)\n"
           "      --shm-name NAME    use POSIX shared memory NAME, removed "
           "at exit\n"
           "                         (default: an anonymous memfd)\n"
           "      --shm-dir DIR      create the memory as a file in DIR, "
           "e.g. a\n"
           "                         hugetlbfs mount; the name is removed at "
           "once\n"
           "      --shm-file PATH    use the file PATH, created if missing "
           "and kept\n"
           "                         at exit (persistent contents)\n"
           "                         (only memfds are sealed: the default "
           "and a --shm-dir\n"
           "                         on hugetlbfs; otherwise every peer "
           "can resize it)\n"
           "  -M NAME                same as --shm-name\n"
           "  -m DIR|NAME            --shm-dir if DIR is a directory, else "
           "--shm-name\n"
           "  -l, --size SIZE        memory size, a power of two with an "
           "optional\n"
           "                         K, M, G or T suffix (default 4M, or "
           "the size of\n"
           "                         an existing --shm-file)\n"
           "  -n, --vectors N        interrupt vectors per peer, 1 to %d "
           "(default %d);\n"
           "                         every device on this server must use "
           "vectors=N\n"
           "      --max-peers N      refuse connections beyond N peers "
           "(default %d,\n"
           "                         the maximum)\n"
           "      --reuse-ids        give a new peer the lowest free ID "
           "(default: IDs\n"
           "                         increase, skip those in use and wrap "
           "after 65535);\n"
           "                         safe only if every client forgets a "
           "peer that\n"
           "                         left, as this series' ivshmem-doorbell "
           "and\n"
           "                         ivshmem-client do: unmodified QEMU "
           "ivshmem\n"
           "                         devices write into freed memory when "
           "an ID\n"
           "                         comes back\n"
           "      --setup-marker     end a client's setup with a "
           "disconnect for an\n"
           "                         unused ID (default: off); only when "
           "every client\n"
           "                         is this series' ivshmem-doorbell or "
           "ivshmem-client:\n"
           "                         an unmodified QEMU ivshmem device "
           "frees that\n"
           "                         ID's eventfds without forgetting them "
           "and writes\n"
           "                         into freed memory when a peer with "
           "the ID joins;\n"
           "                         QEMU's original ivshmem-client "
           "reconnects\n"
           "                         without end\n"
           "      --no-setup-marker  do not send it (the default)\n"
           "      --daemon           detach and log to syslog (default: "
           "stay in the\n"
           "                         foreground and log to stderr)\n"
           "  -F, --foreground       stay in the foreground (the default; "
           "accepted\n"
           "                         for compatibility)\n"
           "  -p, --pidfile PATH     write the process ID to PATH before "
           "anything else,\n"
           "                         atomically, and remove it at exit; "
           "refused if\n"
           "                         PATH is a symbolic link or held by a "
           "running\n"
           "                         server (default: none)\n"
           "  -v, --verbose          log debug messages too (default: off)\n"
           "  -h, --help             show this help and exit\n"
           "      --version          show the version and exit\n",
           progname, IVSHMEM_SERVER_DEFAULT_SOCKET, MAX_DEVICE_VECTORS,
           IVSHMEM_SERVER_DEFAULT_VECTORS, IVSHMEM_SERVER_DEFAULT_MAX_PEERS);
}

static void version(void)
{
    printf("%s of the ivshmem series, built in a QEMU %s tree\n"
           "ivshmem protocol version %d, setup-end marker on request\n",
           progname, QEMU_FULL_VERSION, IVSHMEM_PROTOCOL_VERSION);
}

/* Startup errors: report on stderr and exit. */
static void G_GNUC_PRINTF(1, 2) G_NORETURN die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vreport(fmt, ap);
    va_end(ap);
    exit(EXIT_FAILURE);
}

static void G_NORETURN die_error(Error *err)
{
    error_report_err(err);
    exit(EXIT_FAILURE);
}

/*
 * Write one line to stderr only if that cannot block (a pipe that nobody
 * reads must not stop the server): count what had to be dropped, and say
 * so once writing works again.  A pipe that polls writable takes a write
 * of up to a page whole.
 */
static void log_write(Options *o, const char *line)
{
    struct pollfd pfd = { .fd = STDERR_FILENO, .events = POLLOUT };
    g_autofree char *note = NULL;

    if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT)) {
        o->log_dropped++;
        return;
    }
    if (o->log_dropped) {
        note = g_strdup_printf("%s: warning: %u log line(s) dropped: "
                               "standard error was not writable\n",
                               progname, o->log_dropped);
        o->log_dropped = 0;
        if (write(STDERR_FILENO, note, strlen(note)) < 0 ||
            poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT)) {
            o->log_dropped++;
            return;
        }
    }
    if (write(STDERR_FILENO, line, MIN(strlen(line), LOG_MAX_LINE)) < 0) {
        o->log_dropped++;
    }
}

static void log_emit(Options *o, IvshmemServerLogLevel level,
                     const char *msg)
{
    static const char *const names[] = {
        [IVSHMEM_SERVER_LOG_ERROR] = "error",
        [IVSHMEM_SERVER_LOG_WARNING] = "warning",
        [IVSHMEM_SERVER_LOG_INFO] = "info",
        [IVSHMEM_SERVER_LOG_DEBUG] = "debug",
    };
    static const int prio[] = {
        [IVSHMEM_SERVER_LOG_ERROR] = LOG_ERR,
        [IVSHMEM_SERVER_LOG_WARNING] = LOG_WARNING,
        [IVSHMEM_SERVER_LOG_INFO] = LOG_INFO,
        [IVSHMEM_SERVER_LOG_DEBUG] = LOG_DEBUG,
    };
    g_autoptr(GDateTime) now = NULL;
    g_autofree char *stamp = NULL;
    g_autofree char *line = NULL;

    if (o->use_syslog) {
        syslog(prio[level], "%s", msg);
        return;
    }
    now = g_date_time_new_now_local();
    stamp = g_date_time_format(now, "%Y-%m-%d %H:%M:%S");
    line = g_strdup_printf("%s %s: %s: %s\n", stamp, progname, names[level],
                           msg);
    log_write(o, line);
}

/* Say how often the last message was suppressed, if it was. */
static void log_flush_repeats(Options *o)
{
    g_autofree char *msg = NULL;

    if (!o->log_repeats) {
        return;
    }
    msg = g_strdup_printf("the previous message was repeated %u more "
                          "time(s)", o->log_repeats);
    o->log_repeats = 0;
    log_emit(o, o->log_last_level, msg);
}

/*
 * A message identical to the previous one is counted, not written, for
 * up to LOG_REPEAT_US or LOG_REPEAT_MAX repeats (a condition that lasts,
 * like running out of fds, would otherwise log thousands of lines a
 * second).
 */
static void server_log(void *opaque, IvshmemServerLogLevel level,
                       const char *msg)
{
    Options *o = opaque;
    int64_t now = g_get_monotonic_time();

    if (level == IVSHMEM_SERVER_LOG_DEBUG && !o->verbose) {
        return;
    }
    if (o->log_last && level == o->log_last_level &&
        !strcmp(msg, o->log_last) && o->log_repeats < LOG_REPEAT_MAX &&
        now - o->log_last_time < LOG_REPEAT_US) {
        o->log_repeats++;
        return;
    }
    log_flush_repeats(o);
    g_free(o->log_last);
    o->log_last = g_strdup(msg);
    o->log_last_level = level;
    o->log_last_time = now;
    log_emit(o, level, msg);
}

static void G_GNUC_PRINTF(3, 4)
log_msg(Options *o, IvshmemServerLogLevel level, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    server_log(o, level, msg);
}

static unsigned parse_count(const char *opt, const char *arg,
                            unsigned long max)
{
    unsigned long val;

    if (qemu_strtoul(arg, NULL, 10, &val) < 0 || val < 1 || val > max) {
        die("%s: '%s' is not a number between 1 and %lu", opt, arg, max);
    }
    return val;
}

static int parse_mode(const char *arg)
{
    unsigned int val;

    if (qemu_strtoui(arg, NULL, 8, &val) < 0 || val > 0777) {
        die("--socket-mode: '%s' is not an octal mode from 0 to 0777", arg);
    }
    return val;
}

static int64_t parse_group(const char *arg)
{
    struct group *gr = getgrnam(arg);
    unsigned int gid;

    if (gr) {
        return gr->gr_gid;
    }
    if (qemu_strtoui(arg, NULL, 10, &gid) < 0 || gid == (gid_t)-1) {
        die("--socket-group: no group '%s'", arg);
    }
    return gid;
}

static void set_shm(Options *o, IvshmemServerShmKind kind, const char *path)
{
    if (o->shm_given) {
        die("give at most one of --shm-name, --shm-dir, --shm-file, -m, -M");
    }
    o->shm_given = true;
    o->cfg.shm_kind = kind;
    o->cfg.shm_path = path;
}

static void parse_option(Options *o, int c, const char *arg)
{
    Error *err = NULL;

    switch (c) {
    case 'S':
        o->cfg.socket_path = arg;
        break;
    case OPT_SOCKET_MODE:
        o->cfg.socket_mode = parse_mode(arg);
        break;
    case OPT_SOCKET_GROUP:
        o->cfg.socket_gid = parse_group(arg);
        break;
    case 'M':
    case OPT_SHM_NAME:
        set_shm(o, IVSHMEM_SERVER_SHM_POSIX, arg);
        break;
    case 'm':
        /* The old server took a directory here, later also a name. */
        set_shm(o, g_file_test(arg, G_FILE_TEST_IS_DIR) ?
                IVSHMEM_SERVER_SHM_DIR : IVSHMEM_SERVER_SHM_POSIX, arg);
        break;
    case OPT_SHM_DIR:
        set_shm(o, IVSHMEM_SERVER_SHM_DIR, arg);
        break;
    case OPT_SHM_FILE:
        set_shm(o, IVSHMEM_SERVER_SHM_FILE, arg);
        break;
    case 'l':
        if (!ivshmem_server_parse_size(arg, &o->cfg.shm_size, &err)) {
            die_error(err);
        }
        break;
    case 'n':
        o->cfg.vectors = parse_count("--vectors", arg, MAX_DEVICE_VECTORS);
        break;
    case OPT_MAX_PEERS:
        o->cfg.max_peers = parse_count("--max-peers", arg,
                                       IVSHMEM_SERVER_MAX_PEERS);
        break;
    case OPT_REUSE_IDS:
        o->cfg.reuse_ids = true;
        break;
    case OPT_SETUP_MARKER:
        o->cfg.setup_marker = true;
        break;
    case OPT_NO_SETUP_MARKER:
        o->cfg.setup_marker = false;
        break;
    case OPT_DAEMON:
        o->daemon = true;
        break;
    case 'F':
        o->daemon = false;
        break;
    case 'p':
        o->pidfile = arg;
        break;
    case 'v':
        o->verbose = true;
        break;
    case 'h':
        usage();
        exit(EXIT_SUCCESS);
    case OPT_VERSION:
        version();
        exit(EXIT_SUCCESS);
    default:
        fprintf(stderr, "Try '%s --help' for more information.\n", progname);
        exit(EXIT_FAILURE);
    }
}

static void parse_args(Options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 'S' },
        { "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
        { "socket-group", required_argument, NULL, OPT_SOCKET_GROUP },
        { "shm-name", required_argument, NULL, OPT_SHM_NAME },
        { "shm-dir", required_argument, NULL, OPT_SHM_DIR },
        { "shm-file", required_argument, NULL, OPT_SHM_FILE },
        { "size", required_argument, NULL, 'l' },
        { "vectors", required_argument, NULL, 'n' },
        { "max-peers", required_argument, NULL, OPT_MAX_PEERS },
        { "reuse-ids", no_argument, NULL, OPT_REUSE_IDS },
        { "setup-marker", no_argument, NULL, OPT_SETUP_MARKER },
        { "no-setup-marker", no_argument, NULL, OPT_NO_SETUP_MARKER },
        { "daemon", no_argument, NULL, OPT_DAEMON },
        { "foreground", no_argument, NULL, 'F' },
        { "pidfile", required_argument, NULL, 'p' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 }
    };
    int c;

    while ((c = getopt_long(argc, argv, "S:M:m:l:n:Fp:vh", longopts,
                            NULL)) != -1) {
        parse_option(o, c, optarg);
    }
    if (optind < argc) {
        die("unexpected argument '%s'", argv[optind]);
    }
}

/*
 * systemd socket activation without libsystemd: LISTEN_PID names us and
 * LISTEN_FDS counts the sockets passed from fd 3 on.  Returns false on
 * error; *fd is -1 when nothing was passed.
 */
static bool is_listener(int fd, int *domain, int *type)
{
    int listening = 0;
    socklen_t len = sizeof(int);

    *domain = *type = -1;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 &&
           listening &&
           getsockopt(fd, SOL_SOCKET, SO_DOMAIN, domain, &len) == 0 &&
           getsockopt(fd, SOL_SOCKET, SO_TYPE, type, &len) == 0;
}

/*
 * LISTEN_PID names another process: the sockets passed are its own.  Do
 * not keep them listening here, where nobody would ever accept.
 */
static void systemd_foreign(Options *o, const char *pid_str,
                            const char *fds_str)
{
    unsigned long nfds;
    int fd, domain, type;

    if (qemu_strtoul(fds_str, NULL, 10, &nfds) < 0 || nfds > 1024) {
        return;
    }
    for (fd = SYSTEMD_FIRST_FD; fd < SYSTEMD_FIRST_FD + (int)nfds; fd++) {
        if (is_listener(fd, &domain, &type)) {
            log_msg(o, IVSHMEM_SERVER_LOG_WARNING, "LISTEN_PID=%s is not "
                    "us: closing fd %d, a socket passed to that process",
                    pid_str, fd);
            close(fd);
        }
    }
}

static bool systemd_socket(Options *o, int *fd, Error **errp)
{
    const char *pid_str = getenv("LISTEN_PID");
    const char *fds_str = getenv("LISTEN_FDS");
    unsigned long pid, nfds;
    int domain, type;

    *fd = -1;
    if (!pid_str || !fds_str) {
        return true;
    }
    if (qemu_strtoul(pid_str, NULL, 10, &pid) < 0 || pid != getpid()) {
        systemd_foreign(o, pid_str, fds_str);
        return true;
    }
    /* The variables are for us alone, not for our children. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (qemu_strtoul(fds_str, NULL, 10, &nfds) < 0 || nfds != 1) {
        error_setg(errp, "socket activation: expected one socket, "
                   "LISTEN_FDS is '%s'", fds_str);
        return false;
    }
    /* The protocol needs SCM_RIGHTS: a Unix stream socket, nothing else. */
    if (!is_listener(SYSTEMD_FIRST_FD, &domain, &type) ||
        domain != AF_UNIX || type != SOCK_STREAM) {
        error_setg(errp, "socket activation: fd %d is not a listening Unix "
                   "stream socket (ListenStream= with a path)",
                   SYSTEMD_FIRST_FD);
        return false;
    }
    if (fcntl(SYSTEMD_FIRST_FD, F_SETFD, FD_CLOEXEC) < 0) {
        error_setg_errno(errp, errno, "socket activation: fd %d",
                         SYSTEMD_FIRST_FD);
        return false;
    }
    *fd = SYSTEMD_FIRST_FD;
    return true;
}

/*
 * Many peers need many fds: take all that we are allowed, and refuse to
 * start if that is not enough for a single peer (its socket and one
 * eventfd per vector).
 */
static void raise_fd_limit(Options *o)
{
    struct rlimit rl;
    uint64_t need = SERVER_OWN_FDS + 1 + (uint64_t)o->cfg.vectors;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        return;
    }
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            log_msg(o, IVSHMEM_SERVER_LOG_WARNING,
                    "cannot raise the fd limit: %s", strerror(errno));
            getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        die("--vectors %u needs %" PRIu64 " file descriptors for the first "
            "peer, but the limit is %" PRIu64 " (raise it, e.g. ulimit -n, "
            "or use fewer vectors)", o->cfg.vectors, need,
            (uint64_t)rl.rlim_cur);
    }
}

/* Stay in the server's directory only by absolute paths. */
static void absolute_paths(Options *o)
{
    if (o->cfg.socket_path) {
        o->socket_abs = g_canonicalize_filename(o->cfg.socket_path, NULL);
        o->cfg.socket_path = o->socket_abs;
    }
    if (o->cfg.shm_path && o->cfg.shm_kind != IVSHMEM_SERVER_SHM_POSIX) {
        o->shm_abs = g_canonicalize_filename(o->cfg.shm_path, NULL);
        o->cfg.shm_path = o->shm_abs;
    }
    if (o->pidfile) {
        o->pidfile_abs = g_canonicalize_filename(o->pidfile, NULL);
        o->pidfile = o->pidfile_abs;
    }
}

/*
 * Take the pid file: refuse one that a running server holds (it keeps
 * an flock on it) or that is a symbolic link, then write our pid into a
 * new file next to it and rename that over it, so that a reader sees
 * either no file or the whole pid, never an empty one.
 */
static void pidfile_take(Options *o)
{
    g_autofree char *tmp = g_strdup_printf("%s.XXXXXX", o->pidfile);
    g_autofree char *text = g_strdup_printf("%d\n", (int)getpid());
    struct stat st;
    int fd;

    fd = open(o->pidfile, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ELOOP) {
        die("pid file '%s' is a symbolic link; refusing to follow it",
            o->pidfile);
    }
    if (fd < 0 && errno != ENOENT) {
        die("cannot open pid file '%s': %s", o->pidfile, strerror(errno));
    }
    if (fd >= 0) {
        if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
            die("pid file '%s' is held by a running server", o->pidfile);
        }
        close(fd);
    }
    fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0) {
        die("cannot create a pid file next to '%s': %s", o->pidfile,
            strerror(errno));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0 ||
        qemu_write_full(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
        fstat(fd, &st) < 0 || rename(tmp, o->pidfile) < 0) {
        int err = errno;

        unlink(tmp);
        die("cannot write pid file '%s': %s", o->pidfile, strerror(err));
    }
    o->pid_fd = fd;
    o->pid_dev = st.st_dev;
    o->pid_ino = st.st_ino;
}

/* Remove the pid file, unless it is not ours any more. */
static void pidfile_release(Options *o)
{
    struct stat st;

    if (o->pid_fd < 0) {
        return;
    }
    if (lstat(o->pidfile, &st) == 0 && st.st_dev == o->pid_dev &&
        st.st_ino == o->pid_ino && unlink(o->pidfile) < 0) {
        log_msg(o, IVSHMEM_SERVER_LOG_WARNING, "cannot remove %s: %s",
                o->pidfile, strerror(errno));
    }
    close(o->pid_fd);
    o->pid_fd = -1;
}

/*
 * --daemon, first half, before anything is created: fork.  The parent
 * exits only once the child serves (with 0) or has failed (with 1), so
 * that scripts can rely on the socket and the pid file; the child keeps
 * the terminal for its errors until daemon_ready().
 */
static void daemon_fork(Options *o)
{
    int pipefd[2];
    char c = 0;
    ssize_t n;
    pid_t pid;

    if (!g_unix_open_pipe(pipefd, FD_CLOEXEC, NULL)) {
        die("cannot create a pipe: %s", strerror(errno));
    }
    pid = fork();
    if (pid < 0) {
        die("cannot fork: %s", strerror(errno));
    }
    if (pid > 0) {
        close(pipefd[1]);
        do {
            n = read(pipefd[0], &c, 1);
        } while (n < 0 && errno == EINTR);
        _exit(n == 1 ? EXIT_SUCCESS : EXIT_FAILURE);
    }
    close(pipefd[0]);
    o->ready_fd = pipefd[1];
    if (setsid() < 0 || chdir("/") < 0) {
        die("cannot detach: %s", strerror(errno));
    }
}

/* Whether a syslog daemon listens where syslog() sends. */
static bool syslog_listens(void)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool ok;

    pstrcpy(addr.sun_path, sizeof(addr.sun_path), "/dev/log");
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

/* --daemon, second half, once serving: let go of the terminal. */
static void daemon_ready(Options *o)
{
    char c = 0;
    int devnull;

    if (!syslog_listens()) {
        error_report("warning: no syslog daemon listens on /dev/log, so the "
                     "log of --daemon is lost; run in the foreground (for "
                     "instance under a service manager) to keep it");
    }

    devnull = open("/dev/null", O_RDWR);
    if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
        dup2(devnull, STDOUT_FILENO) < 0 || dup2(devnull, STDERR_FILENO) < 0) {
        die("cannot redirect to /dev/null: %s", strerror(errno));
    }
    if (devnull > STDERR_FILENO) {
        close(devnull);
    }
    openlog(progname, LOG_PID, LOG_DAEMON);
    o->use_syslog = true;
    if (write(o->ready_fd, &c, 1) != 1) {
        log_msg(o, IVSHMEM_SERVER_LOG_WARNING, "cannot notify the parent: %s",
                strerror(errno));
    }
    close(o->ready_fd);
    o->ready_fd = -1;
}

/*
 * Started with fd 0, 1 or 2 closed, the next file we open would take
 * its place, and the log would be written into it (into the shared
 * memory, for instance).  Fill them with /dev/null first.
 */
static void open_std_fds(void)
{
    int fd;

    do {
        fd = open("/dev/null", O_RDWR);
    } while (fd >= 0 && fd <= STDERR_FILENO);
    if (fd < 0) {
        exit(EXIT_FAILURE);
    }
    close(fd);
}

/*
 * Tell the service manager (systemd's $NOTIFY_SOCKET: a datagram socket,
 * "@" for an abstract name) how we are: READY=1, STOPPING=1 and a STATUS.
 * The protocol is one datagram; no library needed.
 */
static void notify(Options *o, const char *state)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_autofree char *msg = NULL;
    size_t len;
    int fd;

    if (!o->notify_path) {
        return;
    }
    len = strlen(o->notify_path);
    if (len < 2 || len >= sizeof(addr.sun_path) ||
        (o->notify_path[0] != '/' && o->notify_path[0] != '@')) {
        log_msg(o, IVSHMEM_SERVER_LOG_WARNING, "NOTIFY_SOCKET '%s' is not "
                "a socket path", o->notify_path);
        return;
    }
    memcpy(addr.sun_path, o->notify_path, len);
    if (addr.sun_path[0] == '@') {
        addr.sun_path[0] = 0;
    }
    msg = g_strdup_printf("%s\nMAINPID=%d", state, (int)getpid());
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&addr,
               offsetof(struct sockaddr_un, sun_path) + len) < 0) {
        log_msg(o, IVSHMEM_SERVER_LOG_WARNING, "cannot notify '%s': %s",
                o->notify_path, strerror(errno));
    }
    if (fd >= 0) {
        close(fd);
    }
}

/* The signals that stop the server, cleanly. */
static const int stop_signals[] = {
    SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2,
};

/*
 * The stop signals become readable events of the loop.  Blocked before
 * anything is created, so that one that comes early is handled once the
 * loop runs, never by the default action that would leave files behind.
 */
static int signals_fd(void)
{
    sigset_t mask;
    size_t i;
    int fd;

    sigemptyset(&mask);
    for (i = 0; i < G_N_ELEMENTS(stop_signals); i++) {
        sigaddset(&mask, stop_signals[i]);
    }
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
        die("cannot block signals: %s", strerror(errno));
    }
    fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0) {
        die("cannot create a signalfd: %s", strerror(errno));
    }
    return fd;
}

static void log_signal(Options *o, int sfd)
{
    struct signalfd_siginfo info;

    if (read(sfd, &info, sizeof(info)) == sizeof(info)) {
        log_msg(o, IVSHMEM_SERVER_LOG_INFO, "%s received, shutting down",
                strsignal(info.ssi_signo));
    }
}

int main(int argc, char **argv)
{
    g_autoptr(IvshmemServer) server = NULL;
    Options o = { .pid_fd = -1, .ready_fd = -1 };
    Error *err = NULL;
    int sfd;
    bool ok;

    open_std_fds();
    error_init(argv[0]);
    progname = g_path_get_basename(argv[0]);
    ivshmem_server_config_init(&o.cfg);
    o.cfg.log = server_log;
    o.cfg.log_opaque = &o;
    parse_args(&o, argc, argv);
    /* For us, not for our children. */
    o.notify_path = g_strdup(getenv("NOTIFY_SOCKET"));
    unsetenv("NOTIFY_SOCKET");
    if (!systemd_socket(&o, &o.cfg.listen_fd, &err)) {
        die_error(err);
    }
    absolute_paths(&o);
    raise_fd_limit(&o);
    /* A peer that goes away must not kill us when we write to it. */
    signal(SIGPIPE, SIG_IGN);
    sfd = signals_fd();
    if (o.daemon) {
        daemon_fork(&o);
    }
    /* The pid file first: if it is refused, nothing else is created. */
    if (o.pidfile) {
        pidfile_take(&o);
    }
    server = ivshmem_server_new(&o.cfg, &err);
    if (!server) {
        pidfile_release(&o);
        die_error(err);
    }
    if (o.daemon) {
        daemon_ready(&o);
    }
    notify(&o, "READY=1\nSTATUS=serving");
    ok = ivshmem_server_run(server, sfd, &err);
    notify(&o, "STOPPING=1\nSTATUS=shutting down");
    if (ok) {
        log_signal(&o, sfd);
    } else {
        log_msg(&o, IVSHMEM_SERVER_LOG_ERROR, "%s", error_get_pretty(err));
        error_free(err);
    }
    close(sfd);
    g_clear_pointer(&server, ivshmem_server_free);
    pidfile_release(&o);
    g_free(o.socket_abs);
    g_free(o.shm_abs);
    g_free(o.pidfile_abs);
    log_flush_repeats(&o);
    g_free(o.log_last);
    g_free(o.notify_path);
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
