/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ivshmem-plain: inter-VM shared memory from a memory backend object, with
 * no interrupts.
 *
 *   -object memory-backend-file,id=m0,mem-path=/dev/shm/x,size=4M,share=on
 *   -device ivshmem-plain,memdev=m0
 *
 * The backend's RAM becomes BAR2.  Everything the device needs exists
 * before realize starts, so realize either completes or fails; there is no
 * state in between.  DOORBELL writes are ignored (see ivshmem-common.c).
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "hw/misc/ivshmem-common.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "qemu/module.h"
#include "system/hostmem.h"

OBJECT_DECLARE_SIMPLE_TYPE(IvshmemPlainState, IVSHMEM_PLAIN)

struct IvshmemPlainState {
    IvshmemState parent_obj;

    HostMemoryBackend *hostmem;
};

static bool ivshmem_plain_check_memdev(IvshmemPlainState *s,
                                       const char *name, Error **errp)
{
    ERRP_GUARD();

    if (host_memory_backend_is_mapped(s->hostmem)) {
        error_setg(errp, "memdev '%s' is already in use by another device",
                   name);
        return false;
    }
    /*
     * A private mapping would give this VM a copy of the memory that no
     * other process sees: the device would realize and share nothing.
     */
    if (!s->hostmem->share) {
        error_setg(errp, "memdev '%s' is not shared", name);
        error_append_hint(errp, "ivshmem needs memory other processes can "
                          "map: create the backend with share=on.\n");
        return false;
    }
    return true;
}

static void ivshmem_plain_realize(PCIDevice *pdev, Error **errp)
{
    ERRP_GUARD();
    IvshmemPlainState *s = IVSHMEM_PLAIN(pdev);
    g_autofree char *name = NULL;
    g_autofree char *desc = NULL;
    MemoryRegion *mr;

    if (!s->hostmem) {
        error_setg(errp, "property 'memdev' is required");
        error_append_hint(errp, "Name a memory backend object with "
                          "memdev=ID.\n");
        return;
    }
    name = host_memory_backend_get_name(s->hostmem);
    if (!ivshmem_plain_check_memdev(s, name, errp)) {
        return;
    }

    mr = host_memory_backend_get_memory(s->hostmem);
    desc = g_strdup_printf("memdev '%s'", name);
    if (!ivshmem_check_size(memory_region_size(mr), desc, errp) ||
        !ivshmem_common_realize(IVSHMEM_COMMON(s), mr, &ivshmem_reg_ops,
                                errp)) {
        return;
    }
    host_memory_backend_set_mapped(s->hostmem, true);
}

static void ivshmem_plain_exit(PCIDevice *pdev)
{
    IvshmemPlainState *s = IVSHMEM_PLAIN(pdev);

    ivshmem_common_unrealize(IVSHMEM_COMMON(s));
    /* Lets the backend be deleted, or given to a device plugged later. */
    host_memory_backend_set_mapped(s->hostmem, false);
}

/* The original device's section, field for field. */
static const VMStateDescription vmstate_ivshmem_plain = {
    .name = TYPE_IVSHMEM_PLAIN,
    .version_id = 0,
    .minimum_version_id = 0,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, IvshmemState),
        VMSTATE_UINT32(intrstatus, IvshmemState),
        VMSTATE_UINT32(intrmask, IvshmemState),
        VMSTATE_END_OF_LIST()
    },
};

static const Property ivshmem_plain_properties[] = {
    DEFINE_PROP_LINK("memdev", IvshmemPlainState, hostmem,
                     TYPE_MEMORY_BACKEND, HostMemoryBackend *),
};

static void ivshmem_plain_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = ivshmem_plain_realize;
    k->exit = ivshmem_plain_exit;
    device_class_set_props(dc, ivshmem_plain_properties);
    object_class_property_set_description(klass, "memdev",
        "ID of the memory backend (share=on, power-of-two size) whose "
        "memory becomes BAR2");
    dc->vmsd = &vmstate_ivshmem_plain;
    dc->desc = "Inter-VM shared memory from a memory backend";
}

static const TypeInfo ivshmem_plain_info = {
    .name = TYPE_IVSHMEM_PLAIN,
    .parent = TYPE_IVSHMEM_COMMON,
    .instance_size = sizeof(IvshmemPlainState),
    .class_init = ivshmem_plain_class_init,
};

static void ivshmem_plain_register_types(void)
{
    type_register_static(&ivshmem_plain_info);
}

type_init(ivshmem_plain_register_types)
