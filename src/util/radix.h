/*
 * radix.h — a sparse map from a 64-bit index to a non-zero 64-bit value (Linux's xarray,
 * much reduced): the page cache of a file keeps one entry per cached page, so its host
 * memory follows the pages cached, not the size of the file (a 1 TiB sparse file with
 * one cached page costs a handful of nodes).
 *
 * A tree of 64-slot nodes, `height` levels deep, indexed by 6 bits of the index per
 * level (the top level first); a leaf's slots hold the values, an inner node's slots
 * pointers to children (0: empty). The tree grows a level when an index does not fit
 * and frees a node when its last slot empties. Invariants: a node's `used` counts its
 * non-zero slots; no node but the root is empty.
 */
#ifndef VMSIM_UTIL_RADIX_H
#define VMSIM_UTIL_RADIX_H

#include "util/util.h"

typedef struct vmsi_radix_node vmsi_radix_node;

typedef struct vmsi_radix {
    vmsi_radix_node *root; /* NULL while empty */
    unsigned height;       /* levels below and including the root (0 while empty) */
    uint64_t count;        /* non-zero entries */
} vmsi_radix;

/* The value at index, 0 when absent. */
uint64_t vmsi_radix_get(const vmsi_radix *r, uint64_t index);

/*
 * Store value at index (0 removes the entry, freeing emptied nodes). Replacing or
 * removing an existing entry never allocates and never fails; a new entry may need
 * nodes: VMS_ERR_NOMEM (nothing changed) when the allocator fails.
 */
vms_status vmsi_radix_set(vmsi_radix *r, const vms_allocator *a, uint64_t index, uint64_t value);

/* The first entry at or after *index: true with *index and *value set, false if none. */
bool vmsi_radix_next(const vmsi_radix *r, uint64_t *index, uint64_t *value);

/* Free every node; the map is empty afterwards. */
void vmsi_radix_free(vmsi_radix *r, const vms_allocator *a);

#endif
