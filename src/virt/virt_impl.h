/*
 * virt_impl.h — what the files of src/virt share: the second-stage formats' decoding
 * helpers (formats.c) for the walker (s2walk.c), and the insides of a two-stage MMU
 * (nested.c). Nothing outside src/virt uses it.
 */
#ifndef VMSIM_VIRT_IMPL_H
#define VMSIM_VIRT_IMPL_H

#include "hw/tap.h"
#include "vmsim/pte.h"
#include "vmsim/regs.h"
#include "vmsim/virt.h"

/* EPT (formats.c): the structural reserved bits of a present entry, whether it is a
 * leaf, and whether it is misconfigured (SDM §29.3.3.1) without MAXPHYADDR. */
uint64_t vmsi_ept_struct_rsvd(uint64_t pte, unsigned level);
bool vmsi_ept_is_leaf(uint64_t pte, unsigned level);
bool vmsi_ept_misconfigured(uint64_t pte, unsigned level);

/* Arm stage 2 (formats.c): a valid descriptor at `level`, and a block/page one. */
bool vmsi_s2_valid(uint64_t pte, unsigned level);
bool vmsi_s2_is_leaf(uint64_t pte, unsigned level);

/* The trace vms_nested_set_trace gave n (NULL: none): the core's TLB-miss path records a
 * walk there when it needs the references itself (the data caches), so both see them. */
vms_nested_trace *vmsi_nested_kept_trace(vms_nested *n);

/* Tell tap (on) of a guest's page-table write of `size` bytes (pte) at guest-physical
 * gpa, host-physical hpa, by VM vm on host core `core` (a "guest_pte_write"); the entry
 * before is read from host RAM without cost. trapped: under shadow paging. */
void vmsi_virt_report_pte_write(const vmsi_tap *tap, int core, uint32_t vm, uint64_t gpa,
                                uint64_t hpa, unsigned size, uint64_t pte, bool trapped);

/* Report the guest software's writes on n's guest-physical bus (outside walks: the
 * minimal pager's page-table writes) as VM vm's, made on host core `core`, trapped or
 * not (shadow paging), to the tap of the machine whose RAM n's host bus reaches (vm 0:
 * stop reporting). */
void vmsi_nested_report_writes(vms_nested *n, const vmsi_tap *tap, uint32_t vm, int core,
                               bool trapped);

#endif
