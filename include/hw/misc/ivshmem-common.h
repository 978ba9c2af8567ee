/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inter-VM shared memory PCI devices: the core that ivshmem-plain and
 * ivshmem-doorbell share.
 *
 * The core owns what the guest sees the same way on both devices: the PCI
 * identity, the BAR0 registers, BAR2 (the shared memory) and the "master"
 * role, which decides whether that memory migrates with the VM.  A front
 * end obtains the shared memory (from a memory backend, or from an
 * ivshmem server) and hands it to ivshmem_common_realize().
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

OBJECT_DECLARE_SIMPLE_TYPE(IvshmemState, IVSHMEM_COMMON)

struct IvshmemState {
    PCIDevice parent_obj;

    /* properties */
    OnOffAuto master;
    bool use64;                 /* BAR2 is a 64-bit BAR */

    MemoryRegion regs;          /* BAR0 */
    MemoryRegion *shm;          /* BAR2, owned by the front end */
    Error *migration_blocker;

    /* guest-visible registers */
    uint32_t intrmask;
    uint32_t intrstatus;
    uint32_t ivposition;        /* own peer ID; 0 on ivshmem-plain */
};

/*
 * BAR0 accesses for the front ends' MemoryRegionOps.  The write handler
 * ignores DOORBELL: a front end with interrupts handles it first.
 */
uint64_t ivshmem_reg_read(void *opaque, hwaddr addr, unsigned size);
void ivshmem_reg_write(void *opaque, hwaddr addr, uint64_t val,
                       unsigned size);

/* BAR0 ops of a device without interrupts. */
extern const MemoryRegionOps ivshmem_reg_ops;

/*
 * Check that a shared memory of @size bytes can be BAR2: a power of two.
 * @shm_desc names the memory in the error ("memdev 'm0'").
 */
bool ivshmem_check_size(uint64_t size, const char *shm_desc, Error **errp);

/*
 * Finish realizing a device whose front end has obtained its shared
 * memory @shm (of a checked size) and set IVPOSITION: resolve
 * master=auto, set up BAR0 with @reg_ops and BAR2, and register the
 * memory for migration (master) or block migration (not master).  On
 * failure nothing is left registered.
 */
bool ivshmem_common_realize(IvshmemState *s, MemoryRegion *shm,
                            const MemoryRegionOps *reg_ops, Error **errp);

/* Undo ivshmem_common_realize(); harmless if it did not run. */
void ivshmem_common_unrealize(IvshmemState *s);

/* The device's id, or its type name when it has none: for messages. */
const char *ivshmem_device_name(IvshmemState *s);

/* Resettable hold phase: put the registers to their reset values. */
void ivshmem_common_reset_hold(Object *obj, ResetType type);

#endif /* HW_MISC_IVSHMEM_COMMON_H */
