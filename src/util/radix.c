/*
 * radix.c — the sparse index map of radix.h. Depth is at most 11 levels (66 bits), so
 * every walk is a short loop; a node is 64 slots plus a count (520 bytes).
 */
#include <assert.h>

#include "util/radix.h"

#define BITS  6
#define SLOTS (1u << BITS)

struct vmsi_radix_node {
    uint64_t slot[SLOTS]; /* values (leaf) or vmsi_radix_node pointers (inner) */
    unsigned used;        /* non-zero slots */
};

static inline vmsi_radix_node *child(const vmsi_radix_node *n, unsigned i)
{
    return (vmsi_radix_node *)(uintptr_t)n->slot[i];
}

/* Which slot of a node at `level` (1 = leaf) index falls in. */
static inline unsigned slot_of(uint64_t index, unsigned level)
{
    assert(level >= 1 && level <= 11);
    return (unsigned)(index >> ((level - 1) * BITS)) & (SLOTS - 1);
}

/* Whether index fits a tree of `height` levels. */
static inline bool fits(uint64_t index, unsigned height)
{
    return height * BITS >= 64 || (index >> (height * BITS)) == 0;
}

uint64_t vmsi_radix_get(const vmsi_radix *r, uint64_t index)
{
    if (!r->root || !fits(index, r->height))
        return 0;
    const vmsi_radix_node *n = r->root;
    for (unsigned level = r->height; level > 1; level--) {
        n = child(n, slot_of(index, level));
        if (!n)
            return 0;
    }
    return n->slot[slot_of(index, 1)];
}

/* Add levels on top until index fits; false (tree unchanged) if a node cannot be had. */
static bool grow(vmsi_radix *r, const vms_allocator *a, uint64_t index)
{
    while (!fits(index, r->height)) {
        vmsi_radix_node *top = vmsi_zalloc(a, sizeof *top);
        if (!top)
            return false;
        top->slot[0] = (uintptr_t)r->root;
        top->used = 1;
        r->root = top;
        r->height++;
    }
    return true;
}

/* Remove index's entry, freeing the nodes it leaves empty (recursive: depth <= 11). */
static bool remove_at(vmsi_radix_node *n, unsigned level, uint64_t index, const vms_allocator *a)
{
    unsigned i = slot_of(index, level);
    if (!n->slot[i])
        return false;
    if (level > 1) {
        vmsi_radix_node *c = child(n, i);
        if (!remove_at(c, level - 1, index, a))
            return false;
        if (c->used)
            return true;
        vmsi_free(a, c, sizeof *c);
    }
    n->slot[i] = 0;
    n->used--;
    return true;
}

vms_status vmsi_radix_set(vmsi_radix *r, const vms_allocator *a, uint64_t index, uint64_t value)
{
    if (!value) {
        if (r->root && fits(index, r->height) && remove_at(r->root, r->height, index, a)) {
            r->count--;
            if (!r->root->used) {
                vmsi_free(a, r->root, sizeof *r->root);
                r->root = NULL;
                r->height = 0;
            }
        }
        return VMS_OK;
    }
    if (!r->root) {
        if (!(r->root = vmsi_zalloc(a, sizeof *r->root)))
            return VMS_ERR_NOMEM;
        r->height = 1;
    }
    if (!grow(r, a, index))
        return VMS_ERR_NOMEM;
    /* Allocate the missing part of the path first, so a failure changes nothing. */
    vmsi_radix_node *fresh[12];
    unsigned need = 0, made = 0;
    const vmsi_radix_node *m = r->root;
    for (unsigned level = r->height; level > 1 && m; level--)
        if (!(m = child(m, slot_of(index, level))))
            need = level - 1;
    for (; made < need; made++)
        if (!(fresh[made] = vmsi_zalloc(a, sizeof *fresh[made]))) {
            while (made-- > 0)
                vmsi_free(a, fresh[made], sizeof *fresh[made]);
            return VMS_ERR_NOMEM;
        }
    vmsi_radix_node *n = r->root;
    for (unsigned level = r->height; level > 1; level--) {
        unsigned i = slot_of(index, level);
        if (!n->slot[i]) {
            n->slot[i] = (uintptr_t)fresh[--made];
            n->used++;
        }
        n = child(n, i);
    }
    unsigned i = slot_of(index, 1);
    if (!n->slot[i]) {
        n->used++;
        r->count++;
    }
    n->slot[i] = value;
    return VMS_OK;
}

/* The first entry at or after `from` under n, which covers the indices from base on
 * (each of its slots 2^(6 * (level - 1)) of them). */
static bool next_in(const vmsi_radix_node *n, unsigned level, uint64_t base, uint64_t from,
                    uint64_t *index, uint64_t *value)
{
    unsigned shift = (level - 1) * BITS;
    for (unsigned i = from > base ? (unsigned)((from - base) >> shift) : 0; i < SLOTS; i++) {
        if (!n->slot[i])
            continue;
        uint64_t b = base + ((uint64_t)i << shift);
        if (level == 1) {
            *index = b;
            *value = n->slot[i];
            return true;
        }
        if (next_in(child(n, i), level - 1, b, from, index, value))
            return true;
    }
    return false;
}

bool vmsi_radix_next(const vmsi_radix *r, uint64_t *index, uint64_t *value)
{
    if (!r->root || !fits(*index, r->height))
        return false;
    return next_in(r->root, r->height, 0, *index, index, value);
}

/* Free n and everything below it. */
static void free_node(vmsi_radix_node *n, unsigned level, const vms_allocator *a)
{
    for (unsigned i = 0; level > 1 && i < SLOTS; i++)
        if (n->slot[i])
            free_node(child(n, i), level - 1, a);
    vmsi_free(a, n, sizeof *n);
}

void vmsi_radix_free(vmsi_radix *r, const vms_allocator *a)
{
    if (r->root)
        free_node(r->root, r->height, a);
    r->root = NULL;
    r->height = 0;
    r->count = 0;
}
