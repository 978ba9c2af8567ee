# Minimal aarch64 device set for building and testing the ivshmem series.
# Not part of the series: it only keeps our build small.

# The virt machine: gpex PCIe host bridge, GICv3 with its ITS (MSI-X).
CONFIG_ARM_VIRT=y

# Hot plug below PCIe root ports and a PCIe-to-PCI bridge.
CONFIG_PCIE_PORT=y
CONFIG_PCI_BRIDGE=y
CONFIG_PCIE_PCI_BRIDGE=y

# The devices of the series.
CONFIG_IVSHMEM_DEVICE=y

# QEMU 10.2's ACPI tables call into the CXL host code, which a device set
# without CXL does not link (cxl_fmws_get_all_sorted has no stub); CXL
# depends on the PCI expander bridge and links only with its memory device.
CONFIG_PXB=y
CONFIG_CXL=y
CONFIG_CXL_MEM_DEVICE=y
