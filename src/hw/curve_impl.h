/*
 * curve_impl.h — the hooks by which a TLB (tlb.c) and the page-walk caches (pwc.c) show
 * their lookups, fills and invalidations to the curves attached to them (curve.h). Each
 * hook is called only when a curve is attached (the owner tests its pointer), and walks
 * the chain of curves of that structure.
 */
#ifndef VMSIM_HW_CURVE_IMPL_H
#define VMSIM_HW_CURVE_IMPL_H

#include "hw/assoc.h"
#include "vmsim/curve.h"
#include "vmsim/pwc.h"

/* A lookup of va in context ctx that probes keys[0..n) in the owner's probe order (a
 * TLB: one key per page size it holds; a PWC level: one); real is the entry the owner's
 * own lookup found, or NULL. */
void vmsi_curve_lookup(vms_curve *c, const uint64_t *keys, unsigned n, uint64_t ctx, uint64_t va,
                       const vmsi_assoc_entry *real);

/* A fill of (tag, ctx, data), with the owner's conflict rule (assoc.h: same key, and the
 * same context or the same VM and either global). */
void vmsi_curve_fill(vms_curve *c, uint64_t tag, uint64_t ctx, uint64_t data);

/* An invalidation: every modelled entry pred selects is dropped. */
void vmsi_curve_drop(vms_curve *c, vmsi_assoc_pred pred, const void *arg);

/* Where a PWC keeps the curve chain of level `level` (pwc.c); NULL when no level. */
vms_curve **vmsi_pwc_curve_slot(vms_pwc *pwc, unsigned level);

#endif
