/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inter-VM shared memory PCI devices: the core shared by ivshmem-plain and
 * ivshmem-doorbell.
 *
 * This file is the guest's view that both devices have in common: the PCI
 * identity drivers bind to, the BAR0 registers, BAR2, and the "master"
 * role, which decides whether the shared memory migrates with the VM.  The
 * front ends (ivshmem-plain.c, ivshmem-doorbell.c) obtain the memory and,
 * for the doorbell, the interrupts.
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
#include "qemu/module.h"
#include "trace.h"

uint64_t ivshmem_reg_read(void *opaque, hwaddr addr, unsigned size)
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

void ivshmem_reg_write(void *opaque, hwaddr addr, uint64_t val,
                       unsigned size)
{
    IvshmemState *s = opaque;

    trace_ivshmem_reg_write(s, addr, val);
    /* A write inside a register reaches it, as it always did. */
    switch (addr & ~3) {
    case IVSHMEM_REG_INTRMASK:
        s->intrmask = val;
        break;
    case IVSHMEM_REG_INTRSTATUS:
        s->intrstatus = val;
        break;
    case IVSHMEM_REG_DOORBELL:
        trace_ivshmem_doorbell_ignored(s, IVSHMEM_DOORBELL_PEER(val),
                                       IVSHMEM_DOORBELL_VECTOR(val),
                                       "device has no interrupts");
        break;
    default:
        /* IVPOSITION is read-only; the rest is reserved. */
        break;
    }
}

/*
 * The registers are 32 bits wide.  Other access sizes are left to the
 * memory core, as they always were: it widens a narrower access to 32
 * bits at the same address (which the handlers round down for writes
 * only, as the original device did) and splits a wider one.
 */
const MemoryRegionOps ivshmem_reg_ops = {
    .read = ivshmem_reg_read,
    .write = ivshmem_reg_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
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

void ivshmem_common_reset_hold(Object *obj, ResetType type)
{
    IvshmemState *s = IVSHMEM_COMMON(obj);

    s->intrmask = 0;
    s->intrstatus = 0;
}

bool ivshmem_check_size(uint64_t size, const char *shm_desc, Error **errp)
{
    ERRP_GUARD();

    /* BARs are naturally aligned powers of two; so is the ABI's BAR2. */
    if (is_power_of_2(size)) {
        return true;
    }
    error_setg(errp, "%s has size %" PRIu64 ", which is not a power of two",
               shm_desc, size);
    if (size > 1) {
        error_append_hint(errp, "The nearest valid sizes are %" PRIu64
                          " and %" PRIu64 " bytes.\n", pow2floor(size),
                          pow2floor(size) << 1);
    }
    return false;
}

/*
 * The largest power-of-two BAR that fits, naturally aligned, into the
 * machine's 32-bit PCI window.  That is the host bridge's "pci-hole-start"
 * to "pci-hole-end" where it knows them (pc; q35 once firmware has set up
 * MMCONFIG), else from its "below-4g-mem-size" to 4 GiB, else all of the
 * 32-bit space.  Firmware may use only part of the window.
 */
static uint64_t ivshmem_max_bar32(PCIDevice *pdev)
{
    Object *host = OBJECT(BUS(pci_device_root_bus(pdev))->parent);
    uint64_t start = 0, end = 0;

    if (object_property_find(host, "pci-hole-end")) {
        end = object_property_get_uint(host, "pci-hole-end", NULL);
        start = object_property_get_uint(host, "pci-hole-start", NULL);
    }
    /* q35 reports [0, 1) until firmware has set up MMCONFIG. */
    if (end < start + 1 * MiB) {
        end = 4 * GiB;
        start = object_property_find(host, "below-4g-mem-size") ?
            object_property_get_uint(host, "below-4g-mem-size", NULL) : 0;
    }
    for (uint64_t size = 2 * GiB; size; size >>= 1) {
        if (ROUND_UP(start, size) + size <= end) {
            return size;
        }
    }
    return 0;
}

static bool ivshmem_check_bar32(IvshmemState *s, uint64_t size, Error **errp)
{
    ERRP_GUARD();
    uint64_t max = ivshmem_max_bar32(PCI_DEVICE(s));

    if (size <= max) {
        return true;
    }
    error_setg(errp, "use64=off: a 32-bit BAR2 of %" PRIu64 " bytes does not "
               "fit below 4 GiB on this machine", size);
    error_append_hint(errp, "The largest that fits is %" PRIu64 " bytes; "
                      "use a smaller memory, or use64=on.\n", max);
    return false;
}

bool ivshmem_common_realize(IvshmemState *s, MemoryRegion *shm,
                            const MemoryRegionOps *reg_ops, Error **errp)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    bool master;

    if (!s->use64 && !ivshmem_check_bar32(s, memory_region_size(shm), errp)) {
        return false;
    }
    /*
     * auto: the first peer of a server, and every ivshmem-plain.  Like
     * the original device, the answer replaces "auto" in the property.
     */
    master = s->master == ON_OFF_AUTO_ON ||
             (s->master == ON_OFF_AUTO_AUTO && s->ivposition == 0);
    s->master = master ? ON_OFF_AUTO_ON : ON_OFF_AUTO_OFF;

    if (master) {
        vmstate_register_ram(shm, DEVICE(s));
    } else {
        error_setg(&s->migration_blocker,
                   "ivshmem device '%s' has master=off: the shared memory it "
                   "maps cannot migrate with it; give master=on to the one "
                   "device that should migrate it, or unplug this one",
                   ivshmem_device_name(s));
        if (migrate_add_blocker(&s->migration_blocker, errp) < 0) {
            return false;
        }
    }
    s->shm = shm;

    /* As the original device: visible until the first reset, on hot plug. */
    pdev->config[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY;
    memory_region_init_io(&s->regs, OBJECT(s), reg_ops, s, "ivshmem-mmio",
                          IVSHMEM_REG_BAR_SIZE);
    pci_register_bar(pdev, IVSHMEM_REG_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->regs);
    pci_register_bar(pdev, IVSHMEM_SHM_BAR,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_PREFETCH |
                     (s->use64 ? PCI_BASE_ADDRESS_MEM_TYPE_64
                               : PCI_BASE_ADDRESS_MEM_TYPE_32), shm);

    trace_ivshmem_realized(s, memory_region_size(shm), s->ivposition, master);
    return true;
}

void ivshmem_common_unrealize(IvshmemState *s)
{
    if (!s->shm) {
        return;
    }
    if (s->master == ON_OFF_AUTO_ON) {
        /* Frees the RAM block's name for a device plugged later. */
        vmstate_unregister_ram(s->shm, DEVICE(s));
    }
    migrate_del_blocker(&s->migration_blocker);
    s->shm = NULL;
}

static const Property ivshmem_common_properties[] = {
    DEFINE_PROP_ON_OFF_AUTO("master", IvshmemState, master, ON_OFF_AUTO_OFF),
    DEFINE_PROP_BOOL("use64", IvshmemState, use64, true),
};

static void ivshmem_common_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);

    k->vendor_id = IVSHMEM_PCI_VENDOR_ID;
    k->device_id = IVSHMEM_PCI_DEVICE_ID;
    k->revision = IVSHMEM_PCI_REVISION;
    k->class_id = PCI_CLASS_MEMORY_RAM;
    rc->phases.hold = ivshmem_common_reset_hold;
    device_class_set_props(dc, ivshmem_common_properties);
    object_class_property_set_description(klass, "master",
        "on: this device migrates the shared memory's contents; off: it "
        "does not, and blocks migration; auto: on for ivshmem-plain and for "
        "peer 0 of an ivshmem server");
    object_class_property_set_description(klass, "use64",
        "on: BAR2 is a 64-bit BAR, which firmware may place above 4 GiB; "
        "off: a 32-bit BAR below 4 GiB, for guests that cannot map a high "
        "BAR (must match on a migration destination)");
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo ivshmem_common_info = {
    .name = TYPE_IVSHMEM_COMMON,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(IvshmemState),
    .class_init = ivshmem_common_class_init,
    .abstract = true,
    .interfaces = (const InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    },
};

static void ivshmem_common_register_types(void)
{
    type_register_static(&ivshmem_common_info);
}

type_init(ivshmem_common_register_types)
