/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ivshmem-client library: joins an ivshmem-server as a peer from a host
 * process.  It maps the shared memory, tracks the peers as they come and
 * go, rings their vectors and exposes its own vectors' eventfds.
 *
 * The library is non-blocking and incremental: call
 * ivshmem_client_handle_readable() whenever the socket is readable (or
 * feed bytes yourself with ivshmem_client_feed()); short reads and
 * partial messages are fine.  Protocol errors are reported through
 * Error ** and leave the client in a failed state, never abort.
 */

#ifndef IVSHMEM_CLIENT_H
#define IVSHMEM_CLIENT_H

#include "hw/misc/ivshmem.h"

typedef struct IvshmemClient IvshmemClient;

typedef enum IvshmemClientEvent {
    IVSHMEM_CLIENT_SETUP_DONE,      /* @id: own ID */
    IVSHMEM_CLIENT_PEER_VECTOR,     /* @id gained vector @vector */
    IVSHMEM_CLIENT_PEER_GONE,       /* @id disconnected */
} IvshmemClientEvent;

typedef void IvshmemClientNotifyFn(void *opaque, IvshmemClientEvent event,
                                   unsigned id, unsigned vector);

IvshmemClient *ivshmem_client_new(void);
void ivshmem_client_free(IvshmemClient *c);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(IvshmemClient, ivshmem_client_free)

/* Called for every peer change, after the state is updated. */
void ivshmem_client_set_notify(IvshmemClient *c, IvshmemClientNotifyFn *fn,
                               void *opaque);

/* Connect to the server's socket; the socket is non-blocking. */
bool ivshmem_client_connect(IvshmemClient *c, const char *path,
                            Error **errp);

/* The socket, to poll for readability; -1 if not connected. */
int ivshmem_client_get_fd(IvshmemClient *c);

/*
 * Read what the socket has and handle every complete message.  Returns
 * false on a protocol error, a socket error or end of file.
 */
bool ivshmem_client_handle_readable(IvshmemClient *c, Error **errp);

/*
 * Handle @len bytes of the stream.  @fd (or -1) arrived with the first
 * of them; the client takes ownership of it in every case.  For
 * transports of your own and for tests.
 */
bool ivshmem_client_feed(IvshmemClient *c, const void *buf, size_t len,
                         int fd, Error **errp);

/*
 * Wait (up to @timeout_ms, -1 forever) until the setup-end marker has
 * arrived.  A server without the marker is detected as being silent for
 * @quiet_ms after our own vectors arrived.
 */
bool ivshmem_client_wait_setup(IvshmemClient *c, int timeout_ms,
                               int quiet_ms, Error **errp);

/* True once the setup-end marker has arrived. */
bool ivshmem_client_setup_done(IvshmemClient *c);

/* Own ID, or -1 before the server has sent it. */
int ivshmem_client_get_id(IvshmemClient *c);

/* The shared memory mapping, or NULL before it has arrived. */
void *ivshmem_client_get_shm(IvshmemClient *c, uint64_t *size);

/* Number of vectors of peer @id (own ID included), -1 if unknown. */
int ivshmem_client_peer_vectors(IvshmemClient *c, unsigned id);

/*
 * Copy up to @max known peer IDs (own ID excluded) in ascending order to
 * @ids; returns how many peers are known.
 */
unsigned ivshmem_client_get_peers(IvshmemClient *c, unsigned *ids,
                                  unsigned max);

/* The eventfd of own vector @vector, -1 if there is none. */
int ivshmem_client_get_vector_fd(IvshmemClient *c, unsigned vector);

/* Interrupt peer @id on @vector. */
bool ivshmem_client_ring(IvshmemClient *c, unsigned id, unsigned vector,
                         Error **errp);

/*
 * Wait up to @timeout_ms (-1: forever) for own vector @vector to be rung,
 * handling server messages meanwhile, and consume the interrupt.
 * Returns 1 if it was rung, 0 on timeout, -1 on error.
 */
int ivshmem_client_wait(IvshmemClient *c, unsigned vector, int timeout_ms,
                        Error **errp);

#endif /* IVSHMEM_CLIENT_H */
