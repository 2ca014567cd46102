/*
 * cli_explain.h — what cmd_explain.c (x86-64 and option parsing) shares with
 * explain_fmt.c (the other architectures' narration).
 */
#ifndef VMSIM_CLI_EXPLAIN_H
#define VMSIM_CLI_EXPLAIN_H

#include "cli.h"
#include "vmsim/format.h"
#include "vmsim/machine.h"
#include "vmsim/pte.h"

/* One --map: VA=PA[/SIZE][:PERMS], the rights as x86 bits (US, RW, XD, G). */
typedef struct explain_map {
    uint64_t va, pa;
    vms_pgsize size;
    uint64_t flags;
} explain_map;

/*
 * Build the maps in format f's tables on machine m (whose cores start in f), boot core 0
 * with them and narrate each address of vas. demo: the built-in example (its second
 * address is a fetch). Returns 0, or 1 when the tables could not be built.
 */
int explain_format(vms_machine *m, const vms_pt_format *f, const explain_map *maps, unsigned nmaps,
                   const uint64_t *vas, unsigned nvas, vms_access_kind kind, bool user, bool demo);

/* Narrate the translation of va on core c, whose TLB is software-managed (MIPS style,
 * explain_mips.c), then a second access. Returns 0, or 1 if it faulted. */
int explain_swtlb_one(vms_core *c, uint64_t va, vms_access_kind kind);

/* Narrate the translation of va on core c, whose TLB is software-managed (MIPS style,
 * explain_mips.c), then a second access. Returns 0, or 1 if it faulted. */
int explain_swtlb_one(vms_core *c, uint64_t va, vms_access_kind kind);

/* The same for the hashed and inverted designs (explain_design.c): radix tables as the
 * kernel's source of truth, the design's table filled from them, the search narrated. */
int explain_design(vms_machine *m, vms_design d, const explain_map *maps, unsigned nmaps,
                   const uint64_t *vas, unsigned nvas, vms_access_kind kind, bool user, bool demo);

#endif
