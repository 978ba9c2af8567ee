/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ivshmem qtests' MSI sink (see ivshmem-msi.h): for each target, where
 * a routed vector's messages go and how the test reads them back.
 *
 * Under qtest no guest CPU runs, so nothing acknowledges an interrupt: the
 * sink reads the state the interrupt controller keeps for each routed
 * interrupt and resets it itself, the way a guest's handler would.
 */

#include "qemu/osdep.h"
#include "ivshmem-msi.h"
#include "ivshmem-utils.h"
#include "libqos/pci-spapr.h"
#include "qobject/qdict.h"
#include "hw/pci/pci_regs.h"

typedef enum IvsMsiKind {
    IVS_MSI_RAM,                /* x86_64 */
    IVS_MSI_ITS,                /* aarch64 virt */
    IVS_MSI_XICS,               /* ppc64 pseries */
} IvsMsiKind;

typedef struct IvsMsiDev {
    int devfn;                  /* libqos' bus << 8 | devfn */
    int nvectors;
    /*
     * Per vector: the RAM word's data (x86), the LPI (ITS) or the
     * interrupt source number (XICS).
     */
    uint32_t *id;
    uint64_t ram;               /* x86: the word of vector 0 */
    int index;                  /* x86: which block of RAM words */
} IvsMsiDev;

struct IvsMsi {
    QTestState *qts;
    QPCIBus *bus;
    IvsMsiKind kind;
    GPtrArray *devs;            /* of IvsMsiDev */
    /* ITS */
    uint32_t dt_entries;        /* device table size */
    uint32_t cmd_next;          /* next command queue slot */
    uint32_t cmd_unsent;        /* commands written since CWRITER moved */
    uint64_t itt_next;
    uint32_t lpi_next;
    /* XICS: guest memory for the RTAS calls' arguments */
    QGuestAllocator *alloc;
};

static bool kvm_enabled_in(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'query-kvm'}");
    QDict *ret = qdict_get_qdict(resp, "return");
    bool on = ret && qdict_get_bool(ret, "enabled");

    qobject_unref(resp);
    return on;
}

/* A string property of /machine, or NULL; g_free() it. */
static char *machine_prop(QTestState *qts, const char *name)
{
    QDict *resp = qtest_qmp(qts, "{'execute': 'qom-get', 'arguments': "
                            "{'path': '/machine', 'property': %s}}", name);
    char *val = NULL;

    if (qdict_haskey(resp, "return") &&
        qobject_type(qdict_get(resp, "return")) == QTYPE_QSTRING) {
        val = g_strdup(qdict_get_str(resp, "return"));
    }
    qobject_unref(resp);
    return val;
}

const char *ivs_msi_machine(void)
{
    if (ivs_arch_is("aarch64")) {
        /* 64-bit CPU: libqos' generic PCI host uses the high ECAM. */
        return "-machine virt,gic-version=3 -cpu max";
    }
    if (ivs_arch_is("ppc64")) {
        /* XICS only: see xics_route(). */
        return "-machine pseries,ic-mode=xics";
    }
    return "-machine pc";
}

/* ---- the MSI-X table ---- */

static uint64_t msix_entry(QPCIDevice *pdev, int vector)
{
    return pdev->msix_table_off + vector * PCI_MSIX_ENTRY_SIZE;
}

static void msix_set_entry(QPCIDevice *pdev, int vector, uint64_t addr,
                           uint32_t data)
{
    uint64_t e = msix_entry(pdev, vector);

    qpci_io_writel(pdev, pdev->msix_table_bar, e + PCI_MSIX_ENTRY_LOWER_ADDR,
                   (uint32_t)addr);
    qpci_io_writel(pdev, pdev->msix_table_bar, e + PCI_MSIX_ENTRY_UPPER_ADDR,
                   addr >> 32);
    qpci_io_writel(pdev, pdev->msix_table_bar, e + PCI_MSIX_ENTRY_DATA, data);
}

static void msix_unmask(QPCIDevice *pdev, int vector)
{
    uint64_t ctrl = msix_entry(pdev, vector) + PCI_MSIX_ENTRY_VECTOR_CTRL;
    uint32_t val = qpci_io_readl(pdev, pdev->msix_table_bar, ctrl);

    qpci_io_writel(pdev, pdev->msix_table_bar, ctrl,
                   val & ~PCI_MSIX_ENTRY_CTRL_MASKBIT);
    g_assert_false(qpci_msix_masked(pdev, vector));
}

/* ---- x86_64: a word of guest RAM per vector ---- */

/*
 * An MSI to the local APIC (0xfee00000) sets a bit in its IRR, but a
 * qtest cannot use that: the APIC's MMIO page answers only accesses from
 * a CPU, and qtest accesses come from none; only the CPU acknowledging the
 * interrupt clears the IRR bit; and a message for a bit already set
 * vanishes in it.  A message to any other address is a plain write of its
 * data there, so each vector writes data of its own to a word of its own:
 * the word shows which vector sent what, and the test clears it.
 * Low RAM that no firmware uses under qtest, clear of the words that
 * ivshmem-utils' own MSI-X helpers use (IVS_MSIX_RAM).
 */
#define X86_RAM                 0x800000ULL
#define X86_RAM_PER_DEV         (2048 * 4)
#define X86_MAX_DEVS            32
#define X86_DATA(dev, vector)   (0x6d000000u | ((dev) << 16) | (vector))

/* The lowest block of RAM words no routed device has. */
static int ram_free_index(IvsMsi *m)
{
    int index;
    guint i;

    for (index = 0; index < X86_MAX_DEVS; index++) {
        for (i = 0; i < m->devs->len; i++) {
            if (((IvsMsiDev *)g_ptr_array_index(m->devs, i))->index ==
                index) {
                break;
            }
        }
        if (i == m->devs->len) {
            return index;
        }
    }
    g_test_message("MSI sink: more than %d devices", X86_MAX_DEVS);
    g_assert_not_reached();
}

static void ram_route(IvsMsi *m, IvsMsiDev *d, QPCIDevice *pdev)
{
    /* A device forgotten leaves a gap: reuse it. */
    int index = ram_free_index(m);
    int v;

    d->index = index;
    d->ram = X86_RAM + index * X86_RAM_PER_DEV;
    qtest_memset(m->qts, d->ram, 0, d->nvectors * 4);
    for (v = 0; v < d->nvectors; v++) {
        d->id[v] = X86_DATA(index, v);
        msix_set_entry(pdev, v, d->ram + v * 4, d->id[v]);
    }
}

static bool ram_take(IvsMsi *m, IvsMsiDev *d, int vector)
{
    uint64_t addr = d->ram + vector * 4;
    uint32_t val = qtest_readl(m->qts, addr);

    if (!val) {
        return false;
    }
    /* Any other value is another vector's message, or garbage. */
    g_assert_cmphex(val, ==, d->id[vector]);
    qtest_writel(m->qts, addr, 0);
    return true;
}

/* ---- aarch64 virt: the GICv3 ITS, an LPI per vector ---- */

/*
 * Addresses from the virt machine's memory map (hw/arm/virt.c); the
 * registers are the GICv3 architecture's.  QEMU keeps an LPI's pending
 * state only in the pending table in guest memory (it sets and clears
 * the bit there, hw/intc/arm_gicv3_redist.c), so the table is what the
 * sink reads; the ITS command CLEAR takes an LPI back, as a guest's
 * handler acknowledging it would end its pending state.
 */
#define VIRT_ITS                0x08080000ULL
#define VIRT_GICR               0x080a0000ULL   /* CPU 0's RD_base frame */
#define VIRT_RAM                0x40000000ULL

#define GITS_CTLR               0x0000
#define GITS_CTLR_ENABLED       (1u << 0)
#define GITS_TYPER              0x0008
#define GITS_TYPER_PHYSICAL     (1ull << 0)
#define GITS_CBASER             0x0080
#define GITS_CWRITER            0x0088
#define GITS_CREADR             0x0090
#define GITS_CREADR_STALLED     (1ull << 0)
#define GITS_BASER(n)           (0x0100 + (n) * 8)
#define GITS_BASER_VALID        (1ull << 63)
#define GITS_BASER_TYPE(v)      (((v) >> 56) & 7)
#define GITS_BASER_ENTRY_SIZE(v) ((((v) >> 48) & 0x1f) + 1)
#define GITS_BASER_RO           ((7ull << 56) | (0x1full << 48))
#define GITS_BASER_64K          (2ull << 8)
#define GITS_BASER_DEVICE       1
#define GITS_BASER_COLLECTION   4
#define GITS_CBASER_VALID       (1ull << 63)
/* The translation frame follows the 64 KiB control frame. */
#define GITS_TRANSLATER         (VIRT_ITS + 0x10000 + 0x40)

#define GICR_CTLR               0x0000
#define GICR_CTLR_ENABLE_LPIS   (1u << 0)
#define GICR_TYPER              0x0008
#define GICR_TYPER_PLPIS        (1ull << 0)
#define GICR_TYPER_PROCNUM(v)   (((v) >> 8) & 0xffff)
#define GICR_PROPBASER          0x0070
#define GICR_PENDBASER          0x0078

#define ITS_CMD_CLEAR           0x04
#define ITS_CMD_SYNC            0x05
#define ITS_CMD_MAPD            0x08
#define ITS_CMD_MAPC            0x09
#define ITS_CMD_MAPTI           0x0a
#define ITS_CMD_INVALL          0x0d
#define ITS_CMD_SIZE            32
#define ITS_CMD_VALID           (1ull << 63)
/* The one collection, on CPU 0. */
#define ITS_ICID                0

/*
 * The tables, 64 MiB into RAM (the default 128 MiB of RAM holds them):
 * one 64 KiB page each for the device and collection tables, one 4 KiB
 * page of commands, the LPI configuration and pending tables for 14 bits
 * of interrupt IDs (8192 LPIs), and the devices' translation tables.
 */
#define ITS_TABLES              (VIRT_RAM + 64 * MiB)
#define ITS_DEVICE_TABLE        (ITS_TABLES + 0x00000)
#define ITS_COLLECTION_TABLE    (ITS_TABLES + 0x10000)
#define ITS_CMDQ                (ITS_TABLES + 0x20000)
#define ITS_CMDQ_ENTRIES        (0x1000 / ITS_CMD_SIZE)
#define LPI_PROP_TABLE          (ITS_TABLES + 0x30000)
#define LPI_PEND_TABLE          (ITS_TABLES + 0x40000)   /* 64 KiB aligned */
#define LPI_ID_BITS             14
#define LPI_FIRST               8192
#define LPI_END                 (1u << LPI_ID_BITS)
#define ITS_ITT                 (ITS_TABLES + 0x100000)
#define ITS_ITT_END             (ITS_TABLES + 0x200000)
#define ITS_ITT_ENTRY_SIZE      12      /* QEMU's GITS_TYPER.ITT_entry_size */
/* Priority 0xa0, enabled: the LPI configuration byte of every LPI used. */
#define LPI_CONFIG              0xa1

static uint64_t its_readq(IvsMsi *m, uint64_t reg)
{
    return qtest_readq(m->qts, VIRT_ITS + reg);
}

static void its_writeq(IvsMsi *m, uint64_t reg, uint64_t val)
{
    qtest_writeq(m->qts, VIRT_ITS + reg, val);
}

/* Hand the commands written so far to the ITS and wait until it ran them. */
static void its_flush(IvsMsi *m)
{
    int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;
    uint64_t want = m->cmd_next * ITS_CMD_SIZE;
    uint64_t creadr;

    its_writeq(m, GITS_CWRITER, want);
    for (;;) {
        creadr = its_readq(m, GITS_CREADR);
        /* Stalled: a command failed to read or write guest memory. */
        g_assert_false(creadr & GITS_CREADR_STALLED);
        if (creadr == want) {
            break;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
    m->cmd_unsent = 0;
}

static void its_cmd(IvsMsi *m, uint64_t dw0, uint64_t dw1, uint64_t dw2)
{
    uint64_t slot = ITS_CMDQ + m->cmd_next * ITS_CMD_SIZE;

    qtest_writeq(m->qts, slot, dw0);
    qtest_writeq(m->qts, slot + 8, dw1);
    qtest_writeq(m->qts, slot + 16, dw2);
    qtest_writeq(m->qts, slot + 24, 0);
    m->cmd_next = (m->cmd_next + 1) % ITS_CMDQ_ENTRIES;
    /* The queue is full when CWRITER would catch up with CREADR. */
    if (++m->cmd_unsent == ITS_CMDQ_ENTRIES - 1) {
        its_flush(m);
    }
}

static uint32_t its_rdbase(IvsMsi *m)
{
    /* GITS_TYPER.PTA is 0 in QEMU: a redistributor is its CPU's number. */
    return GICR_TYPER_PROCNUM(qtest_readq(m->qts, VIRT_GICR + GICR_TYPER));
}

static const char *its_unobservable(QTestState *qts)
{
    /* Unassigned addresses read 0: these bits say an ITS and LPIs exist. */
    if (!(qtest_readq(qts, VIRT_ITS + GITS_TYPER) & GITS_TYPER_PHYSICAL)) {
        return "no GICv3 ITS at the virt machine's address "
            "(needs gic-version=3 and its=on)";
    }
    if (!(qtest_readq(qts, VIRT_GICR + GICR_TYPER) & GICR_TYPER_PLPIS)) {
        return "the redistributor does not implement LPIs";
    }
    if (qtest_readl(qts, VIRT_ITS + GITS_CTLR) & GITS_CTLR_ENABLED) {
        /* Its tables cannot be moved any more: someone else owns it. */
        return "the ITS is already enabled";
    }
    return NULL;
}

static void its_init(IvsMsi *m)
{
    QTestState *qts = m->qts;
    uint64_t rdbase;
    int n;

    qtest_memset(qts, ITS_TABLES, 0, ITS_ITT_END - ITS_TABLES);

    for (n = 0; n < 8; n++) {
        uint64_t baser = its_readq(m, GITS_BASER(n));
        uint64_t table;

        switch (GITS_BASER_TYPE(baser)) {
        case GITS_BASER_DEVICE:
            table = ITS_DEVICE_TABLE;
            m->dt_entries = 0x10000 / GITS_BASER_ENTRY_SIZE(baser);
            break;
        case GITS_BASER_COLLECTION:
            table = ITS_COLLECTION_TABLE;
            break;
        default:
            continue;
        }
        /* One flat 64 KiB page; Size is the number of pages minus 1. */
        its_writeq(m, GITS_BASER(n), GITS_BASER_VALID |
                   (baser & GITS_BASER_RO) | GITS_BASER_64K | table);
        g_assert_cmphex(its_readq(m, GITS_BASER(n)) & ~GITS_BASER_RO, ==,
                        GITS_BASER_VALID | GITS_BASER_64K | table);
    }
    g_assert_cmpuint(m->dt_entries, >, 0);

    its_writeq(m, GITS_CBASER, GITS_CBASER_VALID | ITS_CMDQ);
    its_writeq(m, GITS_CWRITER, 0);

    /* LPIs in CPU 0's redistributor: IDbits is the number of bits - 1. */
    qtest_writeq(qts, VIRT_GICR + GICR_PROPBASER,
                 LPI_PROP_TABLE | (LPI_ID_BITS - 1));
    qtest_writeq(qts, VIRT_GICR + GICR_PENDBASER, LPI_PEND_TABLE);
    qtest_writel(qts, VIRT_GICR + GICR_CTLR, GICR_CTLR_ENABLE_LPIS);
    g_assert_cmphex(qtest_readl(qts, VIRT_GICR + GICR_CTLR) &
                    GICR_CTLR_ENABLE_LPIS, ==, GICR_CTLR_ENABLE_LPIS);

    qtest_writel(qts, VIRT_ITS + GITS_CTLR, GITS_CTLR_ENABLED);
    g_assert_cmphex(qtest_readl(qts, VIRT_ITS + GITS_CTLR) &
                    GITS_CTLR_ENABLED, ==, GITS_CTLR_ENABLED);

    rdbase = its_rdbase(m);
    its_cmd(m, ITS_CMD_MAPC, 0, ITS_CMD_VALID | rdbase << 16 | ITS_ICID);
    its_cmd(m, ITS_CMD_SYNC, 0, rdbase << 16);
    its_flush(m);

    m->itt_next = ITS_ITT;
    m->lpi_next = LPI_FIRST;
}

static void its_route(IvsMsi *m, IvsMsiDev *d, QPCIDevice *pdev)
{
    /* Without an SMMU the device ID is the PCI requester ID. */
    uint64_t devid = d->devfn;
    int bits = 1;
    uint64_t itt;
    int v;

    g_assert_cmpuint(devid, <, m->dt_entries);
    while ((1 << bits) < d->nvectors) {
        bits++;
    }
    itt = m->itt_next;
    m->itt_next += ROUND_UP((1 << bits) * ITS_ITT_ENTRY_SIZE, 256);
    g_assert_cmphex(m->itt_next, <=, ITS_ITT_END);
    g_assert_cmpuint(m->lpi_next + d->nvectors, <=, LPI_END);

    /* Size: the number of event ID bits - 1. */
    its_cmd(m, ITS_CMD_MAPD | devid << 32, bits - 1, ITS_CMD_VALID | itt);
    for (v = 0; v < d->nvectors; v++) {
        d->id[v] = m->lpi_next++;
        qtest_writeb(m->qts, LPI_PROP_TABLE + d->id[v] - LPI_FIRST,
                     LPI_CONFIG);
        /* Event ID = vector, the way Linux numbers them. */
        its_cmd(m, ITS_CMD_MAPTI | devid << 32,
                (uint64_t)d->id[v] << 32 | v, ITS_ICID);
    }
    /* The collection must see the new configuration bytes. */
    its_cmd(m, ITS_CMD_INVALL, 0, ITS_ICID);
    its_cmd(m, ITS_CMD_SYNC, 0, (uint64_t)its_rdbase(m) << 16);
    its_flush(m);

    for (v = 0; v < d->nvectors; v++) {
        msix_set_entry(pdev, v, GITS_TRANSLATER, v);
    }
}

static bool its_pending(IvsMsi *m, uint32_t lpi)
{
    return qtest_readb(m->qts, LPI_PEND_TABLE + lpi / 8) & (1 << (lpi % 8));
}

static bool its_take(IvsMsi *m, IvsMsiDev *d, int vector)
{
    if (!its_pending(m, d->id[vector])) {
        return false;
    }
    its_cmd(m, ITS_CMD_CLEAR | (uint64_t)d->devfn << 32, vector, 0);
    its_flush(m);
    return true;
}

/* ---- ppc64 pseries: RTAS-allocated interrupts, XICS sources ---- */

/*
 * On pseries the guest does not write the MSI-X table: RTAS
 * ibm,change-msi allocates interrupt sources and makes QEMU program every
 * entry with the PHB's MSI window and the source number, and
 * ibm,query-interrupt-source-number says which source a vector got.  A
 * message triggers that source in the interrupt controller that is
 * active; the sink needs XICS alone (ic-mode=xics, see the end).
 *
 * The sink keeps each source masked (priority 0xff): a
 * message for a masked MSI source sets its "masked pending" status, which
 * HMP's "info pic" lists, and nothing else.  To take it, the sink gives
 * the source a priority, which makes the source forward the message to
 * CPU 0's presentation controller and clear the status, and masks it
 * again; the presentation controller refuses it (no CPU has raised its
 * priority from 0 under qtest), so no state stays behind but the source's
 * "rejected" bit, which only a guest changing its priority would act on.
 *
 * XIVE would be simpler to read (a load from a source's ESB page returns
 * its P and Q bits and can reset them), but with ic-mode=xive QEMU's qtest
 * RTAS dispatcher compares the call's name with those of the XICS calls,
 * which are NULL without XICS, and crashes: every RTAS call behind them,
 * PCI config access included, fails there.  With ic-mode=dual QEMU under
 * qtest activates XICS at reset but then fakes the guest's negotiation
 * with XIVE selected, and XICS's RTAS calls refuse to run.
 */
#define XICS_PRIO_MASKED        0xff
#define XICS_PRIO_TAKE          5
#define XICS_STATUS_MASKED_PENDING  0x08

#define RTAS_CHANGE_MSIX        4

static void rtas(IvsMsi *m, const char *name, int nargs, const uint32_t *args,
                 int nret, uint32_t *rets)
{
    uint64_t buf = guest_alloc(m->alloc, (nargs + nret) * 4);
    int i;

    for (i = 0; i < nargs; i++) {
        qtest_writel(m->qts, buf + i * 4, args[i]);
    }
    /* 0: QEMU knows the call (its status is rets[0]). */
    g_assert_cmpuint(qtest_rtas_call(m->qts, name, nargs, buf, nret,
                                     buf + nargs * 4), ==, 0);
    for (i = 0; i < nret; i++) {
        rets[i] = qtest_readl(m->qts, buf + (nargs + i) * 4);
    }
    guest_free(m->alloc, buf);
}

static void xics_set_priority(IvsMsi *m, uint32_t src, uint32_t prio)
{
    uint32_t args[3] = { src, 0, prio };    /* server 0: CPU 0 */
    uint32_t ret;

    rtas(m, "ibm,set-xive", 3, args, 1, &ret);
    g_assert_cmpint(ret, ==, 0);
}

/* HMP's "info pic", which lists every allocated XICS source. */
static char *xics_info(IvsMsi *m)
{
    return qtest_hmp(m->qts, "info pic");
}

/*
 * The status of source @src in @info, an "info pic" output; fails the
 * test unless it is listed as a masked MSI.
 */
static uint32_t xics_status(const char *info, uint32_t src)
{
    g_auto(GStrv) lines = g_strsplit(info, "\n", -1);
    char **l;

    for (l = lines; *l; l++) {
        unsigned nr, prio, status;
        char type[4];

        /* "  NR MSI PRIO STATUS", in hex */
        if (sscanf(*l, " %x %3s %x %x", &nr, type, &prio, &status) == 4 &&
            nr == src) {
            g_assert_cmpstr(type, ==, "MSI");
            g_assert_cmphex(prio, ==, XICS_PRIO_MASKED);
            return status;
        }
    }
    g_test_message("XICS source 0x%x is not in \"info pic\"", src);
    g_test_message("%s", info);
    g_assert_not_reached();
}

static void xics_route(IvsMsi *m, IvsMsiDev *d, QPCIDevice *pdev)
{
    uint64_t buid = container_of(m->bus, QPCIBusSPAPR, bus)->buid;
    /* RTAS config address: bus << 16 | devfn << 8. */
    uint32_t config = d->devfn << 8;
    uint32_t args[6] = {
        config, buid >> 32, (uint32_t)buid, RTAS_CHANGE_MSIX, d->nvectors, 0,
    };
    uint32_t rets[4];
    g_autofree char *info = NULL;
    int v;

    rtas(m, "ibm,change-msi", 6, args, 4, rets);
    g_assert_cmpint(rets[0], ==, 0);
    g_assert_cmpuint(rets[1], ==, d->nvectors);

    for (v = 0; v < d->nvectors; v++) {
        uint32_t q[4] = { config, buid >> 32, (uint32_t)buid, v };

        rtas(m, "ibm,query-interrupt-source-number", 4, q, 3, rets);
        g_assert_cmpint(rets[0], ==, 0);
        d->id[v] = rets[1];
        /*
         * Mask it ourselves, as a guest sets up a source it got: after a
         * machine reset QEMU has handed out sources at priority 0.
         */
        xics_set_priority(m, d->id[v], XICS_PRIO_MASKED);
    }
    /* Each source exists, masked, with nothing pending. */
    info = xics_info(m);
    for (v = 0; v < d->nvectors; v++) {
        g_assert_cmphex(xics_status(info, d->id[v]) &
                        XICS_STATUS_MASKED_PENDING, ==, 0);
    }
}

static bool xics_pending(const char *info, IvsMsiDev *d, int vector)
{
    return xics_status(info, d->id[vector]) & XICS_STATUS_MASKED_PENDING;
}

static bool xics_take(IvsMsi *m, IvsMsiDev *d, int vector)
{
    g_autofree char *info = xics_info(m);

    if (!xics_pending(info, d, vector)) {
        return false;
    }
    xics_set_priority(m, d->id[vector], XICS_PRIO_TAKE);
    xics_set_priority(m, d->id[vector], XICS_PRIO_MASKED);
    return true;
}

/* ---- the API ---- */

const char *ivs_msi_unobservable(QTestState *qts)
{
    if (kvm_enabled_in(qts)) {
        return "under KVM, MSI-X messages go to the in-kernel irqchip, "
            "which a qtest cannot read";
    }
    if (ivs_arch_is("x86_64")) {
        return NULL;
    }
    if (ivs_arch_is("aarch64")) {
        return its_unobservable(qts);
    }
    if (ivs_arch_is("ppc64")) {
        g_autofree char *mode = machine_prop(qts, "ic-mode");

        if (!g_strcmp0(mode, "xive")) {
            return "pseries with ic-mode=xive: QEMU's qtest RTAS "
                "dispatcher crashes on the XICS calls it lacks; the MSI "
                "sink needs ic-mode=xics";
        }
        if (g_strcmp0(mode, "xics")) {
            return "pseries with ic-mode=dual: under qtest QEMU delivers "
                "MSIs to XICS but refuses the XICS RTAS calls that take "
                "them back; the MSI sink needs ic-mode=xics";
        }
        return NULL;
    }
    return "no MSI sink for this target";
}

IvsMsi *ivs_msi_new(QTestState *qts, QPCIBus *bus)
{
    IvsMsi *m = g_new0(IvsMsi, 1);
    const char *why = ivs_msi_unobservable(qts);

    if (why) {
        g_test_message("MSI sink: %s", why);
        g_assert_not_reached();
    }
    m->qts = qts;
    m->bus = bus;
    m->devs = g_ptr_array_new();
    if (ivs_arch_is("aarch64")) {
        m->kind = IVS_MSI_ITS;
        its_init(m);
    } else if (ivs_arch_is("ppc64")) {
        m->kind = IVS_MSI_XICS;
        m->alloc = container_of(bus, QPCIBusSPAPR, bus)->alloc;
        g_assert(m->alloc);
    } else {
        m->kind = IVS_MSI_RAM;
    }
    return m;
}

static IvsMsiDev *find_dev(IvsMsi *m, QPCIDevice *pdev)
{
    guint i;

    for (i = 0; i < m->devs->len; i++) {
        IvsMsiDev *d = g_ptr_array_index(m->devs, i);

        if (d->devfn == pdev->devfn) {
            return d;
        }
    }
    return NULL;
}

void ivs_msi_route(IvsMsi *m, QPCIDevice *pdev, int nvectors)
{
    IvsMsiDev *d = g_new0(IvsMsiDev, 1);
    int v;

    g_assert_null(find_dev(m, pdev));
    g_assert_cmpint(nvectors, >, 0);
    g_assert_cmpint(nvectors, <=, qpci_msix_table_size(pdev));
    d->devfn = pdev->devfn;
    d->nvectors = nvectors;
    d->id = g_new0(uint32_t, nvectors);

    if (!pdev->msix_enabled) {
        qpci_msix_enable(pdev);
    }
    switch (m->kind) {
    case IVS_MSI_RAM:
        ram_route(m, d, pdev);
        break;
    case IVS_MSI_ITS:
        its_route(m, d, pdev);
        break;
    case IVS_MSI_XICS:
        xics_route(m, d, pdev);
        break;
    }
    for (v = 0; v < nvectors; v++) {
        msix_unmask(pdev, v);
    }
    g_ptr_array_add(m->devs, d);
}

void ivs_msi_forget(IvsMsi *m, QPCIDevice *pdev)
{
    IvsMsiDev *d = find_dev(m, pdev);

    if (d) {
        g_ptr_array_remove(m->devs, d);
        g_free(d->id);
        g_free(d);
    }
}

static bool take(IvsMsi *m, IvsMsiDev *d, int vector)
{
    g_assert_cmpint(vector, >=, 0);
    g_assert_cmpint(vector, <, d->nvectors);
    switch (m->kind) {
    case IVS_MSI_RAM:
        return ram_take(m, d, vector);
    case IVS_MSI_ITS:
        return its_take(m, d, vector);
    case IVS_MSI_XICS:
        return xics_take(m, d, vector);
    }
    g_assert_not_reached();
}

bool ivs_msi_take(IvsMsi *m, QPCIDevice *pdev, int vector)
{
    IvsMsiDev *d = find_dev(m, pdev);

    g_assert(d);
    return take(m, d, vector);
}

void ivs_msi_wait(IvsMsi *m, QPCIDevice *pdev, int vector)
{
    int64_t deadline = g_get_monotonic_time() + IVS_TIMEOUT_MS * 1000LL;

    while (!ivs_msi_take(m, pdev, vector)) {
        if (g_get_monotonic_time() > deadline) {
            g_test_message("no MSI-X message from vector %d of device "
                           "%02x:%02x.%x within %d ms", vector,
                           pdev->devfn >> 8, (pdev->devfn >> 3) & 0x1f,
                           pdev->devfn & 7, IVS_TIMEOUT_MS);
            g_assert_not_reached();
        }
        g_usleep(1000);
    }
}

/*
 * Whether @vector of @d was delivered, without taking it; @info is an
 * "info pic" output on pseries.
 */
static bool pending(IvsMsi *m, IvsMsiDev *d, int vector, const char *info)
{
    switch (m->kind) {
    case IVS_MSI_RAM:
        return qtest_readl(m->qts, d->ram + vector * 4) != 0;
    case IVS_MSI_ITS:
        return its_pending(m, d->id[vector]);
    case IVS_MSI_XICS:
        return xics_pending(info, d, vector);
    }
    g_assert_not_reached();
}

void ivs_msi_assert_quiet(IvsMsi *m)
{
    g_autofree char *info = m->kind == IVS_MSI_XICS ? xics_info(m) : NULL;
    guint i;
    int v;

    for (i = 0; i < m->devs->len; i++) {
        IvsMsiDev *d = g_ptr_array_index(m->devs, i);

        for (v = 0; v < d->nvectors; v++) {
            if (pending(m, d, v, info)) {
                g_test_message("unexpected MSI-X message from vector %d of "
                               "device %02x:%02x.%x", v, d->devfn >> 8,
                               (d->devfn >> 3) & 0x1f, d->devfn & 7);
                g_assert_not_reached();
            }
        }
    }
}

void ivs_msi_free(IvsMsi *m)
{
    guint i;

    if (!m) {
        return;
    }
    for (i = 0; i < m->devs->len; i++) {
        IvsMsiDev *d = g_ptr_array_index(m->devs, i);

        g_free(d->id);
        g_free(d);
    }
    g_ptr_array_free(m->devs, true);
    g_free(m);
}
