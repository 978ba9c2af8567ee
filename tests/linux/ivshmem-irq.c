// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ivshmem-irq: a minimal Linux driver for ivshmem-doorbell, for the Linux
 * guest check only (tests/linux/run-linux-check.py builds it against
 * Debian's linux-headers and loads it in the guest).
 *
 * It binds to 1af4:1110 functions that have an MSI-X capability (so never
 * to ivshmem-plain), enables every MSI-X vector, counts the interrupts of
 * each and exposes two sysfs attributes on the PCI device:
 *
 *   irq_counts  read: the interrupt count of each vector, space separated
 *   doorbell    write: a value for the DOORBELL register, (peer << 16) | vector
 *
 * It does not claim the BARs (no pci_request_regions), so that userspace
 * can still map them through sysfs resourceN.
 */

#include <linux/atomic.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>

#define IVSHMEM_REG_DOORBELL 0x0c

struct ivshmem_irq {
    struct pci_dev *pdev;
    void __iomem *regs;
    int nvec;
    atomic_t *counts;
};

static irqreturn_t ivshmem_irq_handler(int irq, void *opaque)
{
    atomic_t *count = opaque;

    atomic_inc(count);
    return IRQ_HANDLED;
}

static ssize_t irq_counts_show(struct device *dev,
                               struct device_attribute *attr, char *buf)
{
    struct ivshmem_irq *s = dev_get_drvdata(dev);
    ssize_t n = 0;
    int i;

    for (i = 0; i < s->nvec; i++) {
        n += sysfs_emit_at(buf, n, "%s%d", i ? " " : "",
                           atomic_read(&s->counts[i]));
    }
    n += sysfs_emit_at(buf, n, "\n");
    return n;
}
static DEVICE_ATTR_RO(irq_counts);

static ssize_t doorbell_store(struct device *dev, struct device_attribute *attr,
                              const char *buf, size_t count)
{
    struct ivshmem_irq *s = dev_get_drvdata(dev);
    u32 val;
    int ret = kstrtou32(buf, 0, &val);

    if (ret) {
        return ret;
    }
    writel(val, s->regs + IVSHMEM_REG_DOORBELL);
    return count;
}
static DEVICE_ATTR_WO(doorbell);

static struct attribute *ivshmem_irq_attrs[] = {
    &dev_attr_irq_counts.attr,
    &dev_attr_doorbell.attr,
    NULL,
};
ATTRIBUTE_GROUPS(ivshmem_irq);

static int ivshmem_irq_probe(struct pci_dev *pdev,
                             const struct pci_device_id *id)
{
    struct ivshmem_irq *s;
    int nvec, i, ret;

    nvec = pci_msix_vec_count(pdev);
    if (nvec <= 0) {
        return -ENODEV;     /* ivshmem-plain: nothing for us */
    }
    s = devm_kzalloc(&pdev->dev, sizeof(*s), GFP_KERNEL);
    if (!s) {
        return -ENOMEM;
    }
    s->counts = devm_kcalloc(&pdev->dev, nvec, sizeof(*s->counts), GFP_KERNEL);
    if (!s->counts) {
        return -ENOMEM;
    }
    s->pdev = pdev;
    ret = pcim_enable_device(pdev);
    if (ret) {
        return ret;
    }
    /* MSI-X messages are memory writes by the device: bus master on */
    pci_set_master(pdev);
    s->regs = devm_ioremap(&pdev->dev, pci_resource_start(pdev, 0), 256);
    if (!s->regs) {
        return -ENOMEM;
    }
    s->nvec = pci_alloc_irq_vectors(pdev, nvec, nvec, PCI_IRQ_MSIX);
    if (s->nvec < 0) {
        return s->nvec;
    }
    for (i = 0; i < s->nvec; i++) {
        ret = devm_request_irq(&pdev->dev, pci_irq_vector(pdev, i),
                               ivshmem_irq_handler, 0, "ivshmem-irq",
                               &s->counts[i]);
        if (ret) {
            pci_free_irq_vectors(pdev);
            return ret;
        }
    }
    pci_set_drvdata(pdev, s);
    dev_info(&pdev->dev, "%d MSI-X vectors\n", s->nvec);
    return 0;
}

static void ivshmem_irq_remove(struct pci_dev *pdev)
{
    struct ivshmem_irq *s = pci_get_drvdata(pdev);
    int i;

    for (i = 0; i < s->nvec; i++) {
        devm_free_irq(&pdev->dev, pci_irq_vector(pdev, i), &s->counts[i]);
    }
    pci_free_irq_vectors(pdev);
}

static const struct pci_device_id ivshmem_irq_ids[] = {
    { PCI_DEVICE(0x1af4, 0x1110) },
    { }
};
MODULE_DEVICE_TABLE(pci, ivshmem_irq_ids);

static struct pci_driver ivshmem_irq_driver = {
    .name = "ivshmem_irq",
    .id_table = ivshmem_irq_ids,
    .probe = ivshmem_irq_probe,
    .remove = ivshmem_irq_remove,
    .dev_groups = ivshmem_irq_groups,
};
module_pci_driver(ivshmem_irq_driver);

MODULE_DESCRIPTION("ivshmem-doorbell MSI-X test driver for the Linux guest check");
MODULE_LICENSE("GPL");
