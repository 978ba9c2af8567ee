/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inter-VM shared memory PCI devices: the core shared by ivshmem-plain and
 * ivshmem-doorbell.
 *
 * This file is the guest's view that both devices have in common: the PCI
 * identity drivers bind to, the BAR0 registers, BAR2, and the "master"
 * role, which decides whether the shared memory migrates with the VM.  The
 * front ends (ivshmem-plain.c, ivshmem-doorbell.c) only obtain the memory
 * and, for the doorbell, the interrupts.
 *
 * The register ABI and the master rules are in docs/specs/ivshmem-spec.rst.
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/misc/ivshmem-common.h"
#include "hw/qdev-properties.h"
#include "migration/blocker.h"
#include "migration/vmstate.h"
#include "qemu/error-report.h"
#include "qemu/module.h"
#include "trace.h"

/*
 * The byte of the shared memory's file that the master holds an
 * open-file-description lock on.  Advisory: it protects masters from each
 * other across QEMU processes on one host, and does not get in the way of
 * anything that does not ask for it.
 */
#define IVSHMEM_MASTER_LOCK_BYTE    0

static uint64_t ivshmem_reg_read(void *opaque, hwaddr addr, unsigned size)
{
    IvshmemState *s = opaque;
    uint32_t val;

    switch (addr) {
    case IVSHMEM_REG_INTRMASK:
        val = s->intrmask;
        break;
    case IVSHMEM_REG_INTRSTATUS:
        /* Reading the status acknowledges it. */
        val = s->intrstatus;
        s->intrstatus = 0;
        break;
    case IVSHMEM_REG_IVPOSITION:
        val = s->ivposition;
        break;
    default:
        /* DOORBELL is write-only; the rest is reserved and reads 0. */
        val = 0;
        break;
    }
    trace_ivshmem_reg_read(s, addr, val);
    return val;
}

static void ivshmem_reg_write(void *opaque, hwaddr addr, uint64_t val64,
                              unsigned size)
{
    IvshmemState *s = opaque;
    IvshmemClass *ic = IVSHMEM_COMMON_GET_CLASS(s);
    uint32_t val = val64;

    trace_ivshmem_reg_write(s, addr, val);
    switch (addr) {
    case IVSHMEM_REG_INTRMASK:
        s->intrmask = val;
        break;
    case IVSHMEM_REG_INTRSTATUS:
        s->intrstatus = val;
        break;
    case IVSHMEM_REG_DOORBELL:
        if (ic->doorbell) {
            ic->doorbell(s, IVSHMEM_DOORBELL_PEER(val),
                         IVSHMEM_DOORBELL_VECTOR(val));
        } else {
            trace_ivshmem_doorbell_ignored(s,
                                           IVSHMEM_DOORBELL_PEER(val),
                                           IVSHMEM_DOORBELL_VECTOR(val),
                                           "device has no interrupts");
        }
        break;
    default:
        /* IVPOSITION is read-only; the rest is reserved. */
        break;
    }
}

static const MemoryRegionOps ivshmem_reg_ops = {
    .read = ivshmem_reg_read,
    .write = ivshmem_reg_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    /* 32-bit registers: other access sizes are not part of the ABI. */
    .valid = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
    .impl = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

const char *ivshmem_device_name(IvshmemState *s)
{
    DeviceState *dev = DEVICE(s);

    return dev->id ? dev->id : object_get_typename(OBJECT(s));
}

void ivshmem_common_reset(IvshmemState *s)
{
    s->intrmask = 0;
    s->intrstatus = 0;
}

/*
 * Take the master lock on @fd.  Returns 1 when we hold it, 0 when another
 * process (or another device of ours, through another open file) holds
 * it, and -1 when the memory cannot be locked at all, in which case
 * nothing can tell two masters apart and we do not pretend to.
 */
static int ivshmem_lock_master(int fd)
{
    int ret;

    if (fd < 0) {
        return -1;
    }
    ret = qemu_lock_fd(fd, IVSHMEM_MASTER_LOCK_BYTE, 1, true);
    if (ret == 0) {
        return 1;
    }
    if (ret == -EAGAIN || ret == -EACCES) {
        return 0;
    }
    return -1;
}

static bool ivshmem_decide_master(IvshmemState *s, const char *shm_desc,
                                  bool may_master, const char *why_not,
                                  Error **errp)
{
    int locked;

    s->is_master = false;
    if (s->master == ON_OFF_AUTO_OFF) {
        return true;
    }
    if (!may_master) {
        if (s->master == ON_OFF_AUTO_ON) {
            error_setg(errp, "master=on is not possible: %s", why_not);
            return false;
        }
        return true;
    }

    locked = ivshmem_lock_master(s->shm_fd);
    if (locked == 0) {
        if (s->master == ON_OFF_AUTO_ON) {
            error_setg(errp, "master=on: another ivshmem device is already "
                       "master of %s", shm_desc);
            error_append_hint(errp, "Only one device may migrate the shared "
                              "memory; make the others master=off.\n");
            return false;
        }
        return true;
    }
    if (locked < 0 && s->shm_fd >= 0) {
        warn_report("ivshmem: %s cannot be locked; a second master on it "
                    "in another process would go undetected", shm_desc);
    }
    s->master_locked = locked > 0;
    s->is_master = true;
    return true;
}

static void ivshmem_release_master(IvshmemState *s)
{
    if (s->master_locked) {
        qemu_unlock_fd(s->shm_fd, IVSHMEM_MASTER_LOCK_BYTE, 1);
        s->master_locked = false;
    }
    s->is_master = false;
}

bool ivshmem_check_size(uint64_t size, const char *shm_desc, Error **errp)
{
    uint64_t below;

    /* BARs are naturally aligned powers of two; so is the ABI's BAR2. */
    if (is_power_of_2(size)) {
        return true;
    }
    below = pow2floor(size);
    error_setg(errp, "%s has size %" PRIu64 ", which is not a power of two",
               shm_desc, size);
    if (below) {
        error_append_hint(errp, "The nearest valid sizes are %" PRIu64
                          " and %" PRIu64 " bytes.\n", below, below << 1);
    }
    return false;
}

bool ivshmem_common_realize(IvshmemState *s, MemoryRegion *shm, int shm_fd,
                            const char *shm_desc, bool may_master,
                            const char *why_not, Error **errp)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint64_t size = memory_region_size(shm);

    if (!ivshmem_check_size(size, shm_desc, errp)) {
        return false;
    }

    s->shm = shm;
    s->shm_fd = shm_fd;
    if (!ivshmem_decide_master(s, shm_desc, may_master, why_not, errp)) {
        goto fail;
    }

    if (!s->is_master) {
        error_setg(&s->migration_blocker,
                   "ivshmem device '%s' is not master of its shared memory, "
                   "so migrating it would lose that memory's contents; "
                   "migrate with master=on on exactly one device per shared "
                   "memory, or unplug this device first",
                   ivshmem_device_name(s));
        if (migrate_add_blocker(&s->migration_blocker, errp) < 0) {
            goto fail;
        }
    } else {
        vmstate_register_ram(shm, DEVICE(s));
    }

    memory_region_init_io(&s->regs, OBJECT(s), &ivshmem_reg_ops, s,
                          "ivshmem.regs", IVSHMEM_REG_BAR_SIZE);
    pci_register_bar(pdev, IVSHMEM_REG_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->regs);
    pci_register_bar(pdev, IVSHMEM_SHM_BAR,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_PREFETCH |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, shm);

    trace_ivshmem_realized(s, size, s->ivposition, s->is_master);
    return true;

fail:
    ivshmem_common_unrealize(s);
    return false;
}

void ivshmem_common_unrealize(IvshmemState *s)
{
    if (!s->shm) {
        return;
    }
    if (s->is_master) {
        vmstate_unregister_ram(s->shm, DEVICE(s));
    }
    migrate_del_blocker(&s->migration_blocker);
    ivshmem_release_master(s);
    s->shm = NULL;
    s->shm_fd = -1;
}

static int ivshmem_registers_pre_save(void *opaque)
{
    IvshmemState *s = opaque;

    s->migrated_ivposition = s->ivposition;
    return 0;
}

/*
 * The guest read its IVPOSITION on the source and must never see it
 * change.  On ivshmem-doorbell it is the ID the destination's server
 * assigned, which the device cannot choose, so a mismatch fails the
 * migration (the doorbell checks this early as well, see
 * ivshmem-doorbell.c, so that the source is still running when it does).
 */
static int ivshmem_registers_post_load(void *opaque, int version_id)
{
    IvshmemState *s = opaque;

    if (s->migrated_ivposition != s->ivposition) {
        error_report("ivshmem device '%s': the guest has peer ID %u, but "
                     "this device has peer ID %u", ivshmem_device_name(s),
                     s->migrated_ivposition, s->ivposition);
        return -EINVAL;
    }
    return 0;
}

const VMStateDescription vmstate_ivshmem_registers = {
    .name = "ivshmem-registers",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = ivshmem_registers_pre_save,
    .post_load = ivshmem_registers_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, IvshmemState),
        VMSTATE_UINT32(intrstatus, IvshmemState),
        VMSTATE_UINT32(intrmask, IvshmemState),
        VMSTATE_UINT32(migrated_ivposition, IvshmemState),
        VMSTATE_END_OF_LIST()
    },
};

static const Property ivshmem_common_properties[] = {
    DEFINE_PROP_ON_OFF_AUTO("master", IvshmemState, master, ON_OFF_AUTO_AUTO),
};

static void ivshmem_common_instance_init(Object *obj)
{
    IvshmemState *s = IVSHMEM_COMMON(obj);

    s->shm_fd = -1;
}

static void ivshmem_common_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->vendor_id = IVSHMEM_PCI_VENDOR_ID;
    k->device_id = IVSHMEM_PCI_DEVICE_ID;
    k->revision = IVSHMEM_PCI_REVISION;
    k->class_id = PCI_CLASS_MEMORY_RAM;
    device_class_set_props(dc, ivshmem_common_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo ivshmem_common_info = {
    .name = TYPE_IVSHMEM_COMMON,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(IvshmemState),
    .instance_init = ivshmem_common_instance_init,
    .class_size = sizeof(IvshmemClass),
    .class_init = ivshmem_common_class_init,
    .abstract = true,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    },
};

static void ivshmem_common_register_types(void)
{
    type_register_static(&ivshmem_common_info);
}

type_init(ivshmem_common_register_types)
