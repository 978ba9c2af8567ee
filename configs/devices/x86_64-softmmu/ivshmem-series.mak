# Minimal x86_64 device set for building and testing the ivshmem series.
# Not part of the series: it only keeps our build small.

# Machines: pc (ACPI PCI hot plug) and q35 (PCIe hot plug).
CONFIG_I440FX=y
CONFIG_Q35=y

# Hot plug below PCIe root ports and a PCIe-to-PCI bridge.
CONFIG_PCIE_PORT=y
CONFIG_PCI_BRIDGE=y
CONFIG_PCIE_PCI_BRIDGE=y

# The devices of the series.
CONFIG_IVSHMEM_DEVICE=y

# Test guests: serial console, and isa-debug-exit to report a status.
CONFIG_ISA_DEBUG=y
CONFIG_SERIAL_ISA=y

# The Linux guest check's vfio-pci needs an IOMMU (Debian's kernels have
# no vfio no-IOMMU mode): intel-iommu, with interrupt remapping.
CONFIG_VTD=y

# QEMU 10.2's ACPI tables call into the CXL host code, which a device set
# without CXL does not link (cxl_fmws_get_all_sorted has no stub); CXL
# depends on the PCI expander bridge and links only with its memory device.
CONFIG_PXB=y
CONFIG_CXL=y
CONFIG_CXL_MEM_DEVICE=y
