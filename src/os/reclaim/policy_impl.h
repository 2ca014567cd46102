/*
 * policy_impl.h — internals shared by the page-replacement policies (src/os/policy_*.c):
 * the registry list, a u64 -> u32 hash map, and a pool of page nodes with intrusive
 * doubly linked lists threaded through node indices.
 *
 * Nodes live in one array and are named by 32-bit index (VMSI_NIL = none), so the pool
 * can grow by realloc without invalidating links. Every node in use is in the pool's
 * index under its page id; a node is in at most one list at a time (its prev/next links).
 *
 * Host memory per resident page (issue 11 item 4): a 24-byte node (the array grows by
 * an eighth, so at most ~3 bytes of slack a page) and its index entry. Page ids below
 * VMSI_DENSE_LIMIT — every frame number the kernel passes — are indexed directly: a
 * radix (util/radix.h) of leaves of VMSI_DLEAF node indices, a leaf allocated with its
 * first page and freed with its last, ~4 bytes a page when the ids are dense (as frame
 * numbers are). Larger ids (the replay mode's arbitrary page numbers) go to the hash map.
 * The pool remembers the last leaf it used (`last_leaf`, its radix index `last_li`): the
 * kernel adds and removes frames in runs of neighbours (a first-touch fault after
 * another, a teardown's zap), so most lookups skip the radix. Only index_put and
 * index_del set it; index_del forgets it with the leaf it frees.
 */
#ifndef VMSIM_POLICY_IMPL_H
#define VMSIM_POLICY_IMPL_H

#include "util/radix.h"
#include "util/util.h"
#include "vmsim/policy.h"

/*
 * The registry: one X(name) per built-in policy, in listing order. Each names a
 * `const vms_page_policy vmsi_ppol_<name>` defined in src/os/policy_<name>.c.
 * Adding a policy = its file + one line here.
 */
#define VMSI_PAGE_POLICIES                                                                         \
    X(fifo)                                                                                        \
    X(lru)                                                                                         \
    X(clock)                                                                                       \
    X(random)                                                                                      \
    X(opt)                                                                                         \
    X(twolist)

#define X(n) extern const vms_page_policy vmsi_ppol_##n;
VMSI_PAGE_POLICIES
#undef X

#define VMSI_NIL       UINT32_MAX
#define VMSI_MAX_PAGES (UINT32_MAX - 1u)

/* ---- u64 -> u32 map: open addressing, linear probing, backward-shift deletion ------ */

typedef struct vmsi_u64map {
    uint64_t *keys;
    uint32_t *vals; /* VMSI_NIL marks an empty slot (any key value is allowed) */
    size_t mask;    /* slots - 1; slots is a power of two, kept >= 2 * count */
    size_t count;
    const vms_allocator *a;
} vmsi_u64map;

/* Initialise an empty map sized for `hint` keys. VMS_ERR_NOMEM leaves m freeable. */
vms_status vmsi_u64map_init(vmsi_u64map *m, const vms_allocator *a, size_t hint);
/* Free the map's memory (m may be zeroed or failed-init). */
void vmsi_u64map_free(vmsi_u64map *m);
/* The value under key, or VMSI_NIL. */
uint32_t vmsi_u64map_get(const vmsi_u64map *m, uint64_t key);
/* Set key -> val (val != VMSI_NIL), growing if needed. VMS_ERR_NOMEM: map unchanged. */
vms_status vmsi_u64map_put(vmsi_u64map *m, uint64_t key, uint32_t val);
/* Remove key; returns its value, or VMSI_NIL if absent. */
uint32_t vmsi_u64map_del(vmsi_u64map *m, uint64_t key);

/* Make *arr (of *cap entries) hold at least `need` entries, doubling; false on NOMEM
 * (array unchanged). For the per-policy index arrays (random's slots, OPT's heap). */
bool vmsi_grow_u32(const vms_allocator *a, uint32_t **arr, uint32_t *cap, uint32_t need);

/* ---- page nodes and lists ----------------------------------------------------------- */

typedef struct vmsi_pnode {
    uint64_t page;
    uint32_t prev; /* list links, VMSI_NIL at the ends */
    uint32_t next; /* also the free-list link of a free node */
    uint32_t aux;  /* policy-defined (OPT: heap position; random: array slot) */
    uint8_t list;  /* policy-defined: which list the node is on */
    uint8_t flags; /* policy-defined (twolist: PG_referenced) */
    uint8_t pad[2];
} vmsi_pnode;
_Static_assert(sizeof(vmsi_pnode) == 24, "vmsi_pnode packs into 24 bytes");

#define VMSI_DENSE_LIMIT (UINT64_C(1) << 36) /* ids below are indexed directly */
#define VMSI_DLEAF_SHIFT 8u
#define VMSI_DLEAF       (1u << VMSI_DLEAF_SHIFT) /* node indices per leaf */

/* One leaf of the direct index: the nodes of VMSI_DLEAF consecutive page ids. */
typedef struct vmsi_dleaf {
    uint32_t used;            /* entries that are not VMSI_NIL */
    uint32_t idx[VMSI_DLEAF]; /* node index by (page id % VMSI_DLEAF), VMSI_NIL: none */
} vmsi_dleaf;

typedef struct vmsi_ppool {
    vmsi_pnode *nodes;
    uint32_t cap;      /* nodes allocated */
    uint32_t used;     /* nodes ever handed out (high-water mark) */
    uint32_t freelist; /* first free node below `used`, VMSI_NIL if none */
    uint32_t count;    /* nodes in use (= resident pages) */
    vmsi_radix dense;  /* page id / VMSI_DLEAF -> vmsi_dleaf *, for ids < VMSI_DENSE_LIMIT */
    vmsi_u64map map;   /* page -> node index, for the larger ids */
    const vms_allocator *a;
    vmsi_dleaf *last_leaf; /* the leaf last found or made, or NULL */
    uint64_t last_li;      /* its index in `dense` */
} vmsi_ppool;

/* The direct index's leaf li, or NULL: the remembered one, else from the radix. */
static inline vmsi_dleaf *vmsi_ppool_leaf(const vmsi_ppool *p, uint64_t li)
{
    if (p->last_leaf && p->last_li == li)
        return p->last_leaf;
    return (vmsi_dleaf *)(uintptr_t)vmsi_radix_get(&p->dense, li);
}

/* Initialise a pool for `capacity` pages: VMS_ERR_INVAL above VMSI_MAX_PAGES (message in
 * err), VMS_ERR_NOMEM (pool left freeable). */
vms_status vmsi_ppool_init(vmsi_ppool *p, const vms_allocator *a, size_t capacity, vms_err *err);
/* Free the pool's memory. */
void vmsi_ppool_free(vmsi_ppool *p);
/* The node index holding `page`, or VMSI_NIL. */
static inline uint32_t vmsi_ppool_find(const vmsi_ppool *p, uint64_t page)
{
    if (page >= VMSI_DENSE_LIMIT)
        return vmsi_u64map_get(&p->map, page);
    const vmsi_dleaf *l = vmsi_ppool_leaf(p, page >> VMSI_DLEAF_SHIFT);
    return l ? l->idx[page & (VMSI_DLEAF - 1)] : VMSI_NIL;
}
/* Take a node for `page` (links NIL, key/aux/list/flags 0) and store its index in *idx.
 * VMS_ERR_EXISTS if page has a node, VMS_ERR_NOMEM if growing failed (pool unchanged). */
vms_status vmsi_ppool_add(vmsi_ppool *p, uint64_t page, uint32_t *idx);
/* Give node idx back (it must be off every list). */
void vmsi_ppool_del(vmsi_ppool *p, uint32_t idx);

/* A doubly linked list of nodes: head is the oldest / coldest end by convention. */
typedef struct vmsi_plist {
    uint32_t head, tail;
    uint32_t n;
} vmsi_plist;

/* An empty list. */
static inline void vmsi_plist_init(vmsi_plist *l)
{
    l->head = l->tail = VMSI_NIL;
    l->n = 0;
}
/* Append node i at the tail of l. */
void vmsi_plist_push_tail(vmsi_pnode *nodes, vmsi_plist *l, uint32_t i);
/* Insert node i at the head of l. */
void vmsi_plist_push_head(vmsi_pnode *nodes, vmsi_plist *l, uint32_t i);
/* Unlink node i from l (i must be on l). */
void vmsi_plist_unlink(vmsi_pnode *nodes, vmsi_plist *l, uint32_t i);
/* Check l's links and count against the nodes (for asserts and tests). */
bool vmsi_plist_check(const vmsi_pnode *nodes, const vmsi_plist *l);

/*
 * A one-list policy state (FIFO, LRU, CLOCK): the pool and one list of every resident
 * page, head = next candidate for eviction. These helpers are the plug-in functions
 * those policies share (same signatures as vms_page_policy's).
 */
typedef struct vmsi_qpol {
    vmsi_ppool pool;
    vmsi_plist list;
} vmsi_qpol;

vms_status vmsi_qpol_create(const vms_allocator *a, size_t capacity, uint64_t seed, void **state,
                            vms_err *err);
void vmsi_qpol_destroy(void *state);
/* Insert at the tail of the list. */
vms_status vmsi_qpol_insert(void *state, uint64_t page);
void vmsi_qpol_remove(void *state, uint64_t page);
size_t vmsi_qpol_count(const void *state);
/* Unlink and free the head node, returning its page in *page; false if empty. */
bool vmsi_qpol_pop_head(vmsi_qpol *q, uint64_t *page);

#endif
