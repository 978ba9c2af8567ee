/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inter-VM shared memory PCI devices: the core that ivshmem-plain and
 * ivshmem-doorbell share.
 *
 * The core owns what the guest sees the same way on both devices: the PCI
 * identity, the BAR0 registers, BAR2 (the shared memory), the "master"
 * decision and what follows from it for migration.  A front end obtains
 * the shared memory (from a memory backend, or from an ivshmem server) and
 * hands it to ivshmem_common_realize(); the core never knows where it came
 * from.
 */

#ifndef HW_MISC_IVSHMEM_COMMON_H
#define HW_MISC_IVSHMEM_COMMON_H

#include "hw/pci/pci_device.h"
#include "hw/misc/ivshmem.h"
#include "qapi/qapi-types-common.h"
#include "qom/object.h"

#define TYPE_IVSHMEM_COMMON     "ivshmem-common"
#define TYPE_IVSHMEM_PLAIN      "ivshmem-plain"
#define TYPE_IVSHMEM_DOORBELL   "ivshmem-doorbell"

OBJECT_DECLARE_TYPE(IvshmemState, IvshmemClass, IVSHMEM_COMMON)

struct IvshmemState {
    PCIDevice parent_obj;

    /* properties */
    OnOffAuto master;

    MemoryRegion regs;          /* BAR0 */
    MemoryRegion *shm;          /* BAR2; owned by the front end */
    int shm_fd;                 /* fd behind @shm, or -1; not owned */
    bool master_locked;         /* we hold the master lock on @shm_fd */
    bool is_master;
    Error *migration_blocker;

    /* guest-visible registers */
    uint32_t intrmask;
    uint32_t intrstatus;
    uint32_t ivposition;        /* own peer ID; 0 on ivshmem-plain */
    uint32_t migrated_ivposition;   /* the source's, while migrating */
};

struct IvshmemClass {
    PCIDeviceClass parent_class;

    /*
     * A guest write to DOORBELL.  NULL on a device without interrupts,
     * where the ABI says the write is ignored.
     */
    void (*doorbell)(IvshmemState *s, uint16_t peer, uint16_t vector);
};

/*
 * Check that a shared memory of @size bytes can be BAR2: a power of two.
 * @shm_desc names the memory for the error, as below.
 */
bool ivshmem_check_size(uint64_t size, const char *shm_desc, Error **errp);

/*
 * Finish realizing a device whose front end has obtained its shared
 * memory: check the size, decide master, map BAR0 and BAR2 and set up
 * migration.  @shm_desc names where the memory came from, for errors
 * ("memdev 'm0'", "the shared memory from chardev 'c0'").  @may_master is
 * false when the front end knows this device cannot be master, and then
 * @why_not says why, for the error when master=on.
 *
 * On failure nothing is left registered.
 */
bool ivshmem_common_realize(IvshmemState *s, MemoryRegion *shm, int shm_fd,
                            const char *shm_desc, bool may_master,
                            const char *why_not, Error **errp);

/* Undo ivshmem_common_realize(). */
void ivshmem_common_unrealize(IvshmemState *s);

/* The device's id, or its type name when it has none: for messages. */
const char *ivshmem_device_name(IvshmemState *s);

/* Put the registers to their reset values. */
void ivshmem_common_reset(IvshmemState *s);

/* The registers every device migrates, for the front ends' vmstate. */
extern const VMStateDescription vmstate_ivshmem_registers;

#endif /* HW_MISC_IVSHMEM_COMMON_H */
