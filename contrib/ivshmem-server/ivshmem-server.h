/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ivshmem-server library: serves the ivshmem version 0 protocol
 * (docs/specs/ivshmem-spec.rst) to ivshmem-doorbell devices and
 * ivshmem-client peers over a Unix stream socket.
 *
 * The library owns the listening socket, the shared memory and every
 * peer's eventfds, and runs one epoll loop.  It never prints: it reports
 * through the log callback of its configuration and through Error **.
 * docs/tools/ivshmem-server.rst describes the behaviour for users.
 */

#ifndef IVSHMEM_SERVER_H
#define IVSHMEM_SERVER_H

#include "hw/misc/ivshmem.h"
#include "qemu/units.h"

#define IVSHMEM_SERVER_DEFAULT_SOCKET     "/tmp/ivshmem_socket"
#define IVSHMEM_SERVER_DEFAULT_SIZE       (4 * MiB)
#define IVSHMEM_SERVER_DEFAULT_VECTORS    1
/* One ID always stays free so that the setup-end marker has a value. */
#define IVSHMEM_SERVER_MAX_PEERS          (IVSHMEM_PEER_ID_COUNT - 1)
#define IVSHMEM_SERVER_DEFAULT_MAX_PEERS  IVSHMEM_SERVER_MAX_PEERS
#define IVSHMEM_SERVER_MIN_SIZE           (4 * KiB)
/*
 * Every peer maps the whole memory: the largest power of two that fits
 * in the 47-bit user address space of x86-64 next to everything else.
 */
#define IVSHMEM_SERVER_MAX_SIZE           (64 * TiB)
#define IVSHMEM_SERVER_DEFAULT_MAX_BACKLOG 65536

typedef enum IvshmemServerShmKind {
    IVSHMEM_SERVER_SHM_MEMFD,   /* anonymous memfd (default) */
    IVSHMEM_SERVER_SHM_POSIX,   /* shm_open() name, unlinked at exit */
    IVSHMEM_SERVER_SHM_DIR,     /* temporary file in a directory */
    IVSHMEM_SERVER_SHM_FILE,    /* persistent file named by the user */
} IvshmemServerShmKind;

typedef enum IvshmemServerLogLevel {
    IVSHMEM_SERVER_LOG_ERROR,
    IVSHMEM_SERVER_LOG_WARNING,
    IVSHMEM_SERVER_LOG_INFO,
    IVSHMEM_SERVER_LOG_DEBUG,
} IvshmemServerLogLevel;

typedef void IvshmemServerLogFn(void *opaque, IvshmemServerLogLevel level,
                                const char *msg);

typedef struct IvshmemServerConfig {
    /* Path to bind; ignored when listen_fd >= 0. */
    const char *socket_path;
    /* An already listening socket (systemd socket activation), or -1. */
    int listen_fd;
    /*
     * Permission bits (0 to 0777) and group of the socket file we bind,
     * or -1: from the umask, and the process's group.  The file is never
     * more open than asked, not even for a moment.
     */
    int socket_mode;
    int64_t socket_gid;

    IvshmemServerShmKind shm_kind;
    /* POSIX name, directory or file path; unused for memfd. */
    const char *shm_path;
    /* Bytes, a power of two; 0 means "the size of an existing file". */
    uint64_t shm_size;

    unsigned vectors;
    unsigned max_peers;
    /*
     * Give a new peer the lowest free ID.  Off by default: IDs then
     * increase, skipping those still in use, and wrap from 65535 to 0,
     * so that an ID comes back as late as possible.  QEMU's ivshmem
     * device up to 10.x (and upstream's master) frees a departed peer's
     * eventfds without forgetting them and writes into the freed memory
     * when a later peer gets the same ID.
     */
    bool reuse_ids;
    /*
     * A peer may leave unread one message per vector of every connected
     * peer (itself included), the 4 other messages of its setup, and this
     * many more; past that it is dropped.
     */
    unsigned max_backlog;
    /* Send the setup-end marker after a new peer's own eventfds. */
    bool setup_marker;

    IvshmemServerLogFn *log;
    void *log_opaque;
} IvshmemServerConfig;

typedef struct IvshmemServer IvshmemServer;

/* Fill @cfg with the defaults that --help documents. */
void ivshmem_server_config_init(IvshmemServerConfig *cfg);

/*
 * Parse a size with an optional K/M/G/T suffix and check that it is a
 * power of two from IVSHMEM_SERVER_MIN_SIZE to IVSHMEM_SERVER_MAX_SIZE.
 */
bool ivshmem_server_parse_size(const char *str, uint64_t *size, Error **errp);
bool ivshmem_server_check_size(uint64_t size, Error **errp);

/*
 * Create the shared memory and start listening.  On failure nothing is
 * left behind (no socket file, no shared memory object).
 */
IvshmemServer *ivshmem_server_new(const IvshmemServerConfig *cfg,
                                  Error **errp);

/*
 * Stop serving: disconnect every peer, remove the socket file (unless it
 * came from socket activation) and release the shared memory (unless it
 * is a persistent user file).
 */
void ivshmem_server_free(IvshmemServer *s);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(IvshmemServer, ivshmem_server_free)

/* The epoll fd: readable when ivshmem_server_poll() has work to do. */
int ivshmem_server_get_fd(IvshmemServer *s);

/*
 * Wait up to @timeout_ms (-1: forever) for events and handle them.
 * Returns false only on a fatal error of the event loop itself.
 */
bool ivshmem_server_poll(IvshmemServer *s, int timeout_ms, Error **errp);

/*
 * Serve until @stop_fd (e.g. a signalfd) becomes readable.  The caller
 * reads and closes @stop_fd.
 */
bool ivshmem_server_run(IvshmemServer *s, int stop_fd, Error **errp);

/* Number of connected peers. */
unsigned ivshmem_server_num_peers(IvshmemServer *s);

/* Messages queued for peer @id but not yet sent, or -1 if no such peer. */
long ivshmem_server_peer_backlog(IvshmemServer *s, unsigned id);

/* Size of the shared memory in bytes. */
uint64_t ivshmem_server_shm_size(IvshmemServer *s);

#endif /* IVSHMEM_SERVER_H */
