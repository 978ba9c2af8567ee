/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inter-VM shared memory: definitions shared by the ivshmem-plain and
 * ivshmem-doorbell device models, ivshmem-server and ivshmem-client.
 *
 * docs/specs/ivshmem-spec.rst is the reference for everything here: the
 * guest-visible registers and the server-to-client wire protocol.
 */

#ifndef HW_MISC_IVSHMEM_H
#define HW_MISC_IVSHMEM_H

/* PCI identity, unchanged since the original ivshmem device. */
#define IVSHMEM_PCI_VENDOR_ID       0x1af4      /* PCI_VENDOR_ID_IVSHMEM */
#define IVSHMEM_PCI_DEVICE_ID       0x1110
#define IVSHMEM_PCI_REVISION        1

/* BAR numbers */
#define IVSHMEM_REG_BAR             0
#define IVSHMEM_MSIX_BAR            1
#define IVSHMEM_SHM_BAR             2

/* BAR0: 256 bytes of 32-bit little-endian registers. */
#define IVSHMEM_REG_BAR_SIZE        0x100
#define IVSHMEM_REG_INTRMASK        0x00
#define IVSHMEM_REG_INTRSTATUS      0x04
#define IVSHMEM_REG_IVPOSITION      0x08
#define IVSHMEM_REG_DOORBELL        0x0c

/* DOORBELL: destination peer in bits 31..16, vector in bits 15..0. */
#define IVSHMEM_DOORBELL_PEER(val)      (((val) >> 16) & 0xffff)
#define IVSHMEM_DOORBELL_VECTOR(val)    ((val) & 0xffff)
#define IVSHMEM_DOORBELL_VALUE(peer, vector) \
    ((((uint32_t)(peer) & 0xffff) << 16) | ((uint32_t)(vector) & 0xffff))

/*
 * Wire protocol (server to client only).  Every message is one
 * little-endian int64, optionally with one file descriptor passed as
 * SCM_RIGHTS ancillary data.
 */
#define IVSHMEM_PROTOCOL_VERSION    0
#define IVSHMEM_MSG_SIZE            8
#define IVSHMEM_MSG_SHM             (-1)    /* carries the shared memory fd */

/* Peer IDs are 16 bits wide: they travel in the DOORBELL register. */
#define IVSHMEM_MAX_PEER_ID         0xffff
#define IVSHMEM_PEER_ID_COUNT       (IVSHMEM_MAX_PEER_ID + 1)

/* Interrupt vectors per peer: the DOORBELL register carries 16 bits. */
#define IVSHMEM_MAX_VECTORS         0x10000

#endif /* HW_MISC_IVSHMEM_H */
