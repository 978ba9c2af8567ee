# Minimal ppc64 device set for building and testing the ivshmem series.
# Not part of the series: it only keeps our build small.

# The pseries machine: sPAPR PHB, XICS/XIVE, hot plug through DRCs.
CONFIG_PSERIES=y

# The devices of the series.
CONFIG_IVSHMEM_DEVICE=y
