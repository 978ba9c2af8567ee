/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An "MSI sink" for the ivshmem qtests: route every MSI-X vector of one or
 * more PCI devices to something the test can read back as delivered by
 * the target's interrupt path, one observable per target:
 *
 *   x86_64 (pc, q35)  a word of guest RAM per vector (see ivshmem-msi.c
 *                     for why not the local APIC)
 *   aarch64 (virt, GICv3 with ITS)
 *                     an LPI per vector, translated by the ITS from the
 *                     device's requester ID and the event ID; observed as
 *                     its bit in the redistributor's LPI pending table
 *   ppc64 (pseries, ic-mode=xics)
 *                     the interrupt source that RTAS ibm,change-msi gives
 *                     each vector, kept masked; observed as its "masked
 *                     pending" status in HMP's "info pic"
 *
 * A message with the wrong address or data (for the ITS also from the
 * wrong requester ID) does not reach the vector's observable: it is not
 * delivered, or on x86 it fails the test.
 */

#ifndef TESTS_QTEST_IVSHMEM_MSI_H
#define TESTS_QTEST_IVSHMEM_MSI_H

#include "libqtest.h"
#include "libqos/pci.h"

typedef struct IvsMsi IvsMsi;

/*
 * The -machine option (and -cpu where needed) the sink works with on this
 * target, for a test's command line.
 */
const char *ivs_msi_machine(void);

/*
 * NULL if the sink can observe messages in the QEMU behind @qts, else
 * why not, for g_test_skip().
 */
const char *ivs_msi_unobservable(QTestState *qts);

/*
 * A sink for devices on @bus; ivs_msi_unobservable() must be NULL.  On
 * ppc64 @bus must have a guest allocator (ivs_pci_bus()'s has one),
 * for the RTAS calls' arguments.
 */
IvsMsi *ivs_msi_new(QTestState *qts, QPCIBus *bus);

/*
 * Enable MSI-X on @pdev (which must be enabled as bus master), route its
 * vectors 0..@nvectors-1 to the sink, and unmask them.  Once per device;
 * any number of devices.
 */
void ivs_msi_route(IvsMsi *m, QPCIDevice *pdev, int nvectors);

/*
 * Drop @pdev from the sink, without touching the machine: for a device
 * that was unplugged or reset, so that its slot can be routed again.
 * Nothing if @pdev is not routed.
 */
void ivs_msi_forget(IvsMsi *m, QPCIDevice *pdev);

/*
 * True if vector @vector of @pdev was delivered since the last take (or
 * since routing), and consume it.  Like an interrupt, several messages
 * before a take count once.
 */
bool ivs_msi_take(IvsMsi *m, QPCIDevice *pdev, int vector);

/*
 * Poll until vector @vector of @pdev is delivered, and take it; fail the
 * test after IVS_TIMEOUT_MS.
 */
void ivs_msi_wait(IvsMsi *m, QPCIDevice *pdev, int vector);

/* Assert that no routed vector of any device was delivered. */
void ivs_msi_assert_quiet(IvsMsi *m);

void ivs_msi_free(IvsMsi *m);

#endif
