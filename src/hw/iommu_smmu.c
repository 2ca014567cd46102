/*
 * iommu_smmu.c — the Arm SMMUv3 Stream Table Entry for stage 2 translation (iommu.h;
 * Arm IHI 0070 §5.2): building one from a VM's Stage 2 (VTTBR_EL2 / VTCR_EL2 values)
 * and reading one (vms_iommu_set_ste, iommu.c: a context whose Arm stage 2 tables are
 * walked through the format's decoder).
 */
#include "util/util.h"
#include "vmsim/iommu.h"
#include "vmsim/virt.h"

/* Fields by their STE bit numbers (bit n is bit n % 64 of doubleword n / 64). */
static uint64_t field(const uint64_t *ste, unsigned hi, unsigned lo)
{
    uint64_t w = ste[lo / 64] >> (lo % 64);
    unsigned n = hi - lo + 1;
    return n == 64 ? w : w & ((UINT64_C(1) << n) - 1);
}

static void set_field(uint64_t *ste, unsigned hi, unsigned lo, uint64_t v)
{
    unsigned n = hi - lo + 1;
    uint64_t m = (n == 64 ? ~UINT64_C(0) : (UINT64_C(1) << n) - 1) << (lo % 64);
    ste[lo / 64] = (ste[lo / 64] & ~m) | ((v << (lo % 64)) & m);
}

enum {
    S2VMID_HI = 143,
    S2VMID_LO = 128,
    S2T0SZ_HI = 165,
    S2T0SZ_LO = 160,
    S2SL0_HI = 167,
    S2SL0_LO = 166,
    S2TG_HI = 175,
    S2TG_LO = 174,
    S2PS_HI = 178,
    S2PS_LO = 176,
    S2AA64 = 179,
    S2AFFD = 181,
    S2HD = 183,
    S2HA = 184,
    S2R = 186,
    S2TTB_HI = 243,
    S2TTB_LO = 196, /* address bits 51:4 */
};

void vms_smmu_ste_s2(uint64_t ste[VMS_SMMU_STE_DWORDS], uint64_t s2ttb, uint16_t vmid,
                     unsigned levels)
{
    memset(ste, 0, VMS_SMMU_STE_DWORDS * sizeof ste[0]);
    ste[0] = VMS_SMMU_STE_V | VMS_SMMU_STE_CFG_S2;
    set_field(ste, S2VMID_HI, S2VMID_LO, vmid);
    set_field(ste, S2T0SZ_HI, S2T0SZ_LO, levels == 4 ? 16 : 25);
    set_field(ste, S2SL0_HI, S2SL0_LO, levels == 4 ? 2 : 1);
    set_field(ste, S2TG_HI, S2TG_LO, 0); /* 4 KiB */
    set_field(ste, S2PS_HI, S2PS_LO, 5); /* 48 bits */
    set_field(ste, S2AA64, S2AA64, 1);
    set_field(ste, S2AFFD, S2AFFD, 1);
    set_field(ste, S2R, S2R, 1);
    set_field(ste, S2TTB_HI, S2TTB_LO, s2ttb >> 4);
}

vms_status vms_smmu_ste_decode(const uint64_t ste[VMS_SMMU_STE_DWORDS], vms_iommu_context *out,
                               const vms_pt_format **fmt, vms_err *err)
{
    if (!(ste[0] & VMS_SMMU_STE_V))
        return vmsi_err(err, VMS_ERR_INVAL, "SMMU STE: V = 0 (not valid)");
    if ((ste[0] & VMS_SMMU_STE_CFG) != VMS_SMMU_STE_CFG_S2)
        return vmsi_err(
            err, VMS_ERR_INVAL, "SMMU STE: Config = 0b%u%u%u; expected 0b110 (stage 2 translate)",
            (unsigned)(ste[0] >> 3) & 1, (unsigned)(ste[0] >> 2) & 1, (unsigned)(ste[0] >> 1) & 1);
    if (!field(ste, S2AA64, S2AA64) || field(ste, S2TG_HI, S2TG_LO) != 0)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "SMMU STE: expected S2AA64 = 1 (VMSAv8-64) and S2TG = 0b00 (4 KiB)");
    uint64_t t0sz = field(ste, S2T0SZ_HI, S2T0SZ_LO), sl0 = field(ste, S2SL0_HI, S2SL0_LO);
    unsigned levels = t0sz == 16 && sl0 == 2 ? 4 : t0sz == 25 && sl0 == 1 ? 3 : 0;
    if (!levels)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "SMMU STE: S2T0SZ = %u with S2SL0 = %u; expected 16 with 2 (48-bit IPA "
                        "from level 0) or 25 with 1 (39-bit IPA from level 1)",
                        (unsigned)t0sz, (unsigned)sl0);
    if (field(ste, S2HA, S2HA) || field(ste, S2HD, S2HD) || !field(ste, S2AFFD, S2AFFD))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "SMMU STE: S2HA/S2HD (hardware table updates) and S2AFFD = 0 (Access "
                        "flag faults) are not modelled: expected S2HA = S2HD = 0, S2AFFD = 1");
    *out = (vms_iommu_context){.mode = VMS_IOMMU_TRANSLATE,
                               .did = (uint16_t)field(ste, S2VMID_HI, S2VMID_LO),
                               .root = field(ste, S2TTB_HI, S2TTB_LO) << 4,
                               .levels = levels};
    *fmt = vms_format_stage2(levels);
    return VMS_OK;
}
