/*
 * swap.c — the swap device and the swap cache (Linux mm/swapfile.c, mm/swap_state.c,
 * mm/page_io.c, much reduced).
 *
 * The device is a host file of `nslots` 4 KiB slots; a slot's bytes are the page's
 * bytes (pwrite/pread at slot * 4096). Slot 0 is never used, as Linux keeps the swap
 * header there, so offset 0 never names a page. Slots are handed out round robin from a
 * cursor (Linux's per-cluster allocator in spirit: consecutive swap-outs get consecutive
 * slots, which an HDD then writes without seeking).
 *
 * Clusters (Linux mm/swapfile.c with CONFIG_THP_SWAP, SWAPFILE_CLUSTER = HPAGE_PMD_NR):
 * the slots are grouped in aligned clusters of 512; a transparent huge page swapped out
 * whole (thp.swap = whole) takes one free cluster (get_swap_pages with order 9,
 * vmsi_swap_alloc_cluster) and is written there in one I/O (swap_writepage of the whole
 * folio: one latency, 512 transfers). Its subpage i lives at the cluster's slot i, so
 * its swap entries are consecutive, as Linux's folio->swap + folio_page_idx. Cluster 0
 * holds the header slot and is never free. The 4 KiB allocator does not keep clusters
 * free for huge pages (Linux 6.10+ prefers partly used clusters for order 0): a device
 * that has swapped long may have none free, and the huge page is then split.
 *
 * Reference counting (swap_map): count[s] = swap entries in PTEs naming s, plus one when
 * a shmem object's page-cache entry holds s. A slot is free at count 0. The swap cache
 * (cache[s]) holds the frame read back from s while other PTEs still name s, so a page
 * shared by several PTEs (COW after fork) is read once and every PTE then maps the same
 * frame; the cache owns one reference on that frame, flagged SWAPCACHE, and drops it when
 * count[s] reaches 0. A swap-cache frame is never written while cached (it is mapped
 * read-only until it leaves the cache), so it always equals its slot: reclaim can drop it
 * without writing.
 *
 * Cost model: a transfer costs xfer_cycles (4 KiB at the configured bandwidth); a
 * random access adds latency_cycles. For an HDD an access to the slot right after the
 * previous transfer is sequential (no seek, no rotation); an SSD pays its latency on
 * every access. Figures at 3 GHz, like the rest of the kernel's costs (docs/SWAP.md).
 *
 * Errors: an injected (or real) I/O error is VMS_ERR_IO. The callers decide what it
 * means (reclaim.c keeps the page resident on a write error; fault.c kills the slot's
 * owners on a read error, using vmsi_swap_kill_owners).
 */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "os/os_impl.h"
#include "os/mm/mm_impl.h"
#include "os/reclaim/reclaim_impl.h"
#include "hw/tap.h"

#define CYCLES_PER_US 3000u /* the kernel's costs assume a 3 GHz core */

/* Open (or create) the host file: the configured path, else a temporary one. */
static vms_status open_file(vms_kernel *k, vmsi_swap *s, vms_err *err)
{
    const char *want = k->cfg.swap_file;
    char tmpl[4096];
    if (want && *want) {
        s->fd = open(want, O_RDWR | O_CREAT | O_TRUNC, 0600);
        snprintf(tmpl, sizeof tmpl, "%s", want);
    } else {
        const char *dir = getenv("TMPDIR");
        snprintf(tmpl, sizeof tmpl, "%s/vmsim-swap-XXXXXX", dir && *dir ? dir : "/tmp");
        s->fd = mkstemp(tmpl);
        s->remove = true;
    }
    if (s->fd < 0)
        return vmsi_err(err, VMS_ERR_IO, "%s: cannot create the swap file", tmpl);
    size_t n = strlen(tmpl) + 1;
    s->path = vmsi_alloc(k->a, n);
    if (!s->path)
        return vmsi_err(err, VMS_ERR_NOMEM, "swap: out of host memory");
    memcpy(s->path, tmpl, n);
    return VMS_OK;
}

vms_status vmsi_swap_init(vms_kernel *k, vms_err *err)
{
    vmsi_swap *s = &k->swap;
    memset(s, 0, sizeof *s);
    s->fd = -1;
    uint64_t us = k->cfg.swap_latency_us,
             mbs = k->cfg.swap_bandwidth_mbs ? k->cfg.swap_bandwidth_mbs : 1;
    s->latency_cycles = us * CYCLES_PER_US;
    /* 4096 bytes at mbs MB/s = 4096 / mbs µs. */
    s->xfer_cycles = (UINT64_C(4096) * CYCLES_PER_US + mbs - 1) / mbs;
    if (k->cfg.swap_fail_write)
        s->inj_after[VMS_SWAP_IO_WRITE] = k->cfg.swap_fail_write - 1, s->inj_count[1] = 1;
    if (k->cfg.swap_fail_read)
        s->inj_after[VMS_SWAP_IO_READ] = k->cfg.swap_fail_read - 1, s->inj_count[0] = 1;
    if (k->cfg.swap_bytes == 0)
        return VMS_OK;
    if ((k->cfg.swap_bytes & VMS_PAGE_MASK) || k->cfg.swap_bytes < 2 * VMS_PAGE_SIZE ||
        (k->cfg.swap_bytes >> VMS_PAGE_SHIFT) > (UINT64_C(1) << 32))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "swap size %llu: expected a multiple of 4096, 8 KiB … 16 TiB",
                        (unsigned long long)k->cfg.swap_bytes);
    s->nslots = k->cfg.swap_bytes >> VMS_PAGE_SHIFT;
    s->count = vmsi_calloc(k->a, s->nslots, sizeof *s->count);
    s->cache = vmsi_calloc(k->a, s->nslots, sizeof *s->cache);
    s->bad = vmsi_calloc(k->a, s->nslots, sizeof *s->bad);
    s->nclusters = s->nslots / VMSI_SWAP_CLUSTER;
    s->cl_busy = vmsi_calloc(k->a, s->nclusters ? s->nclusters : 1, sizeof *s->cl_busy);
    s->cl_whole = vmsi_calloc(k->a, s->nclusters ? s->nclusters : 1, sizeof *s->cl_whole);
    if (!s->count || !s->cache || !s->bad || !s->cl_busy || !s->cl_whole)
        return vmsi_err(err, VMS_ERR_NOMEM, "swap: out of host memory for %llu slots",
                        (unsigned long long)s->nslots);
    s->nfree = s->nslots - 1;
    s->cursor = 1;
    if (s->nclusters) {
        s->cl_busy[0] = 1; /* the header slot */
        s->cl_free = s->nclusters - 1;
        s->cl_cursor = 1;
    }
    return open_file(k, s, err);
}

void vmsi_swap_destroy(vms_kernel *k)
{
    vmsi_swap *s = &k->swap;
    if (s->fd >= 0)
        close(s->fd);
    if (s->path && s->remove)
        remove(s->path);
    if (s->path)
        vmsi_free(k->a, s->path, strlen(s->path) + 1);
    vmsi_free(k->a, s->count, s->nslots * sizeof *s->count);
    vmsi_free(k->a, s->cache, s->nslots * sizeof *s->cache);
    vmsi_free(k->a, s->bad, s->nslots * sizeof *s->bad);
    vmsi_free(k->a, s->cl_busy, (s->nclusters ? s->nclusters : 1) * sizeof *s->cl_busy);
    vmsi_free(k->a, s->cl_whole, (s->nclusters ? s->nclusters : 1) * sizeof *s->cl_whole);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

/* Slot became used (delta +1) or free (-1): its cluster's busy count follows. */
static void cluster_busy(vmsi_swap *s, uint64_t slot, int delta)
{
    uint64_t c = slot / VMSI_SWAP_CLUSTER;
    if (c >= s->nclusters)
        return; /* the slots after the last whole cluster */
    if (delta > 0) {
        s->cl_free -= s->cl_busy[c] == 0 ? 1 : 0;
        s->cl_busy[c]++;
        return;
    }
    assert(s->cl_busy[c] > 0);
    s->cl_free += --s->cl_busy[c] == 0 ? 1 : 0;
}

/* Whether any slot of cluster c is still referenced. */
static bool cluster_used(const vmsi_swap *s, uint64_t c)
{
    for (uint64_t i = 0; i < VMSI_SWAP_CLUSTER; i++)
        if (s->count[c * VMSI_SWAP_CLUSTER + i])
            return true;
    return false;
}

uint64_t vmsi_swap_alloc(vms_kernel *k)
{
    vmsi_swap *s = &k->swap;
    if (!s->nfree)
        return 0;
    for (uint64_t n = 0; n < s->nslots; n++) {
        uint64_t slot = s->cursor;
        s->cursor = slot + 1 >= s->nslots ? 1 : slot + 1;
        if (s->count[slot] == 0 && !s->bad[slot]) {
            s->count[slot] = 1;
            s->nfree--;
            cluster_busy(s, slot, +1);
            return slot;
        }
    }
    return 0;
}

uint64_t vmsi_swap_alloc_cluster(vms_kernel *k)
{
    vmsi_swap *s = &k->swap;
    if (!s->cl_free)
        return 0;
    for (uint64_t n = 0; n < s->nclusters; n++) {
        uint64_t c = s->cl_cursor;
        s->cl_cursor = c + 1 >= s->nclusters ? 1 : c + 1;
        if (s->cl_busy[c])
            continue;
        uint64_t slot0 = c * VMSI_SWAP_CLUSTER;
        for (uint64_t i = 0; i < VMSI_SWAP_CLUSTER; i++) {
            assert(!s->count[slot0 + i] && !s->bad[slot0 + i] && !s->cache[slot0 + i]);
            s->count[slot0 + i] = 1;
        }
        s->cl_busy[c] = VMSI_SWAP_CLUSTER;
        s->cl_free--;
        s->nfree -= VMSI_SWAP_CLUSTER;
        return slot0;
    }
    assert(false && "cl_free says a cluster is free");
    return 0;
}

void vmsi_swap_mark_whole(vms_kernel *k, uint64_t slot0)
{
    k->swap.cl_whole[slot0 / VMSI_SWAP_CLUSTER] = 1;
}

bool vmsi_swap_whole_swapin(vms_kernel *k, uint64_t slot)
{
    vmsi_swap *s = &k->swap;
    uint64_t c = slot / VMSI_SWAP_CLUSTER;
    if (c >= s->nclusters || !s->cl_whole[c])
        return false;
    s->cl_whole[c] = 0;
    return true;
}

void vmsi_swap_dup(vms_kernel *k, uint64_t slot)
{
    assert(slot && slot < k->swap.nslots && k->swap.count[slot] > 0);
    k->swap.count[slot]++;
}

void vmsi_swapcache_add(vms_kernel *k, uint64_t slot, uint64_t pfn)
{
    vmsi_swap *s = &k->swap;
    assert(!s->cache[slot]);
    vmsi_rmap *r = vmsi_rmap_of(k, pfn);
    assert(r); /* the caller created the record */
    r->swapcache = true;
    r->index = slot;
    vms_frames_set_flags(k->fr, pfn, VMSI_FRAME_SWAPCACHE, 0);
    s->cache[slot] = pfn;
    s->ncached++;
}

/* Remove slot's page from the swap cache: the cache's reference goes (the frame is
 * freed if nothing else holds it). */
void vmsi_swapcache_del(vms_kernel *k, uint64_t slot)
{
    vmsi_swap *s = &k->swap;
    uint64_t pfn = s->cache[slot];
    if (!pfn)
        return;
    s->cache[slot] = 0;
    s->ncached--;
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    vmsi_rmap *r = (vmsi_rmap *)f->owner;
    r->swapcache = false;
    r->index = 0;
    if (r->n == 0) {
        vmsi_free(k->a, r->e, r->cap * sizeof *r->e);
        vmsi_free(k->a, r, sizeof *r);
        f->owner = 0;
    }
    vms_frames_set_flags(k->fr, pfn, 0, VMSI_FRAME_SWAPCACHE);
    vmsi_page_put(k, pfn);
}

void vmsi_swap_free(vms_kernel *k, uint64_t slot)
{
    vmsi_swap *s = &k->swap;
    assert(slot && slot < s->nslots && s->count[slot] > 0);
    if (--s->count[slot] > 0)
        return;
    vmsi_swapcache_del(k, slot);
    if (!s->bad[slot]) { /* a poisoned slot stays out of use: its sector is bad */
        s->nfree++;
        cluster_busy(s, slot, -1);
    }
    uint64_t c = slot / VMSI_SWAP_CLUSTER;
    if (c < s->nclusters && s->cl_whole[c] && !cluster_used(s, c))
        s->cl_whole[c] = 0; /* the huge page's last slot went without a swap-in */
}

/* Whether the next transfer of kind io fails (consuming the injection). */
static bool injected(vmsi_swap *s, vms_swap_io io)
{
    if (!s->inj_count[io])
        return false;
    if (s->inj_after[io]) {
        s->inj_after[io]--;
        return false;
    }
    s->inj_count[io]--;
    return true;
}

/* Charge one transfer at slot: latency unless sequential on an HDD. */
static void charge_io(vms_kernel *k, uint64_t slot, unsigned core)
{
    vmsi_swap *s = &k->swap;
    bool seq = k->cfg.swap_device == VMS_SWAP_HDD && slot == s->head;
    uint64_t c = s->xfer_cycles + (seq ? 0 : s->latency_cycles);
    s->head = slot + 1;
    k->st.swap_io_cycles += c;
    vmsi_charge(k, core, c);
}

/* Tell the tap of one page of swap I/O on core (st: how it went; NOMEM is not an I/O
 * result and is not reported). Returns st. */
static vms_status report_io(vms_kernel *k, bool out, uint64_t slot, uint64_t pfn, unsigned core,
                            vms_status st)
{
    const vmsi_tap *tap = vmsi_machine_tap(k->m);
    if (st != VMS_ERR_NOMEM && vmsi_tap_on(tap)) {
        vms_event ev = {.type = VMS_EV_SWAP, .swap = {out, slot, pfn, st != VMS_OK}};
        vmsi_tap_emit(tap, core == VMSI_NO_CORE ? VMS_EV_NO_CORE : (int)core, &ev);
    }
    return st;
}

static vms_status writepage(vms_kernel *k, uint64_t slot, uint64_t pfn, unsigned core)
{
    vmsi_swap *s = &k->swap;
    uint8_t buf[4096];
    charge_io(k, slot, core);
    if (injected(s, VMS_SWAP_IO_WRITE))
        return VMS_ERR_IO;
    /* In a VM the frame's bytes may be in the host's swap: a failed read-back must not
     * write garbage to the slot (the page then stays in memory). */
    if (vmsi_ram_read_io(k, pfn << VMS_PAGE_SHIFT, buf, sizeof buf) != VMS_OK)
        return VMS_ERR_IO;
    if (pwrite(s->fd, buf, sizeof buf, (off_t)(slot << VMS_PAGE_SHIFT)) != (ssize_t)sizeof buf)
        return VMS_ERR_IO;
    s->writes++;
    return VMS_OK;
}

vms_status vmsi_swap_writepage(vms_kernel *k, uint64_t slot, uint64_t pfn, unsigned core)
{
    return report_io(k, true, slot, pfn, core, writepage(k, slot, pfn, core));
}

/* The cluster write's host I/O: the frames' bytes, one page at a time, into the file. */
static vms_status write_cluster(vms_kernel *k, uint64_t slot0, uint64_t pfn)
{
    vmsi_swap *s = &k->swap;
    uint8_t buf[4096];
    for (uint64_t i = 0; i < VMSI_SWAP_CLUSTER; i++) {
        if (vmsi_ram_read_io(k, (pfn + i) << VMS_PAGE_SHIFT, buf, sizeof buf) != VMS_OK)
            return VMS_ERR_IO;
        if (pwrite(s->fd, buf, sizeof buf, (off_t)((slot0 + i) << VMS_PAGE_SHIFT)) !=
            (ssize_t)sizeof buf)
            return VMS_ERR_IO;
    }
    return VMS_OK;
}

vms_status vmsi_swap_writecluster(vms_kernel *k, uint64_t slot0, uint64_t pfn, unsigned core)
{
    vmsi_swap *s = &k->swap;
    /* One request of 2 MiB: one latency (none when sequential on an HDD), 512 transfers. */
    bool seq = k->cfg.swap_device == VMS_SWAP_HDD && slot0 == s->head;
    uint64_t c = s->xfer_cycles * VMSI_SWAP_CLUSTER + (seq ? 0 : s->latency_cycles);
    s->head = slot0 + VMSI_SWAP_CLUSTER;
    k->st.swap_io_cycles += c;
    vmsi_charge(k, core, c);
    vms_status st = injected(s, VMS_SWAP_IO_WRITE) ? VMS_ERR_IO : write_cluster(k, slot0, pfn);
    if (st != VMS_OK)
        return report_io(k, true, slot0, pfn, core, st);
    s->writes += VMSI_SWAP_CLUSTER;
    for (uint64_t i = 0; i < VMSI_SWAP_CLUSTER; i++) /* the tap sees each page, as before */
        report_io(k, true, slot0 + i, pfn + i, core, VMS_OK);
    return VMS_OK;
}

static vms_status readpage(vms_kernel *k, uint64_t slot, uint64_t pfn, unsigned core)
{
    vmsi_swap *s = &k->swap;
    uint8_t buf[4096];
    charge_io(k, slot, core);
    if (injected(s, VMS_SWAP_IO_READ) ||
        pread(s->fd, buf, sizeof buf, (off_t)(slot << VMS_PAGE_SHIFT)) != (ssize_t)sizeof buf) {
        s->bad[slot] = 1;
        return VMS_ERR_IO;
    }
    if (vmsi_ram_write(k, pfn << VMS_PAGE_SHIFT, buf, sizeof buf) != VMS_OK)
        return VMS_ERR_NOMEM;
    s->reads++;
    return VMS_OK;
}

vms_status vmsi_swap_readpage(vms_kernel *k, uint64_t slot, uint64_t pfn, unsigned core)
{
    return report_io(k, false, slot, pfn, core, readpage(k, slot, pfn, core));
}

/* ---- owners of a slot (after a read error) ------------------------------------------ */

typedef struct owner_ctx {
    uint64_t slot;
    bool found;
} owner_ctx;

static void find_entry(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size,
                       void *ud)
{
    owner_ctx *o = ud;
    (void)va, (void)ptep, (void)size;
    o->found |= vmsi_is_swap_pte(mm->k, pte) && vmsi_swp_offset(mm->k, pte) == o->slot;
}

/* Whether process p's memory holds slot: a swap PTE, or a shared mapping of a shmem
 * object whose cache entry is the slot. */
static bool owns(vms_kernel *k, vmsi_proc *p, uint64_t slot)
{
    vmsi_mm *mm = p->mm;
    if (!mm)
        return false;
    for (size_t i = 0; i < mm->nvma; i++) {
        const vmsi_vma *v = &mm->vma[i];
        vms_file *f = v->file;
        if (!f || !(v->flags & VMSI_VM_SHM))
            continue;
        uint64_t end = v->pgoff + ((v->end - v->start) >> VMS_PAGE_SHIFT), e;
        for (uint64_t j = v->pgoff; vmsi_radix_next(&f->pages, &j, &e) && j < end; j++)
            if ((e & VMSI_CACHE_SWAP) && (e & VMSI_CACHE_SLOT) == slot)
                return true;
    }
    owner_ctx o = {slot, false};
    vmsi_pte_range(mm, 0, vmsi_task_size(k), find_entry, &o);
    (void)k;
    return o.found;
}

void vmsi_swap_kill_owners(vms_kernel *k, uint64_t slot, vmsi_proc *except)
{
    for (unsigned i = 0; i < k->nprocs; i++) {
        vmsi_proc *p = k->procs[i];
        if (p == except || p->state != VMS_TASK_RUNNING || !owns(k, p, slot))
            continue;
        vmsi_log(k, VMS_LOG_ERR, "%s[%d]: killed by SIGBUS: swap read error at slot %llu", p->name,
                 p->pid, (unsigned long long)slot);
        vmsi_proc_kill(k, p, VMS_SIGBUS); /* not a fault of theirs: not in st.sigbus */
    }
}

/* ---- public views -------------------------------------------------------------------- */

void vms_swap_get_info(const vms_kernel *k, vms_swap_info *out)
{
    const vmsi_swap *s = &k->swap;
    memset(out, 0, sizeof *out);
    out->total_pages = s->nslots ? s->nslots - 1 : 0;
    out->free_pages = s->nfree;
    out->cache_pages = s->ncached;
    out->reads = s->reads;
    out->writes = s->writes;
    out->read_cycles = s->latency_cycles + s->xfer_cycles;
    out->write_cycles = s->latency_cycles + s->xfer_cycles;
    out->path = s->path ? s->path : "";
}

vms_status vms_swap_inject_error(vms_kernel *k, vms_swap_io io, uint64_t after, uint64_t count,
                                 vms_err *err)
{
    if (io != VMS_SWAP_IO_READ && io != VMS_SWAP_IO_WRITE)
        return vmsi_err(err, VMS_ERR_INVAL, "swap: unknown I/O kind %d", (int)io);
    k->swap.inj_after[io] = after;
    k->swap.inj_count[io] = count;
    return VMS_OK;
}

/* ---- checker ------------------------------------------------------------------------- */

typedef struct tally_ctx {
    vms_kernel *k;
    uint32_t *seen;
    vms_err *err;
    vms_status st;
} tally_ctx;

static void tally_pte(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size,
                      void *ud)
{
    tally_ctx *c = ud;
    (void)ptep;
    if (!vmsi_is_swap_pte(c->k, pte) || c->st != VMS_OK)
        return;
    uint64_t slot = vmsi_swp_offset(c->k, pte);
    vmsi_vma *v = vmsi_vma_lookup(mm, va);
    if (size != VMS_PG_4K || vmsi_swp_type(c->k, pte) != 0 || !slot || slot >= c->k->swap.nslots ||
        !v || (v->flags & VMSI_VM_SHARED)) {
        c->st = vmsi_err(c->err, VMS_ERR_INVAL, "bad swap entry %llx at %llx",
                         (unsigned long long)pte, (unsigned long long)va);
        return;
    }
    c->seen[slot]++;
}

/* Each cluster's busy count is its slots in use or poisoned (and the header); the free
 * clusters are those at 0; a cluster marked as holding a whole huge page has a slot in
 * use. */
static vms_status check_clusters(const vmsi_swap *s, vms_err *err)
{
    uint64_t nfree = 0;
    for (uint64_t c = 0; c < s->nclusters; c++) {
        uint32_t busy = c == 0 ? 1u : 0u;
        for (uint64_t i = c == 0 ? 1 : 0; i < VMSI_SWAP_CLUSTER; i++)
            busy += s->count[c * VMSI_SWAP_CLUSTER + i] || s->bad[c * VMSI_SWAP_CLUSTER + i];
        if (busy != s->cl_busy[c])
            return vmsi_err(err, VMS_ERR_INVAL, "swap cluster %llu: %u slots busy, counted %u",
                            (unsigned long long)c, s->cl_busy[c], busy);
        if (s->cl_whole[c] && (c == 0 || !cluster_used(s, c)))
            return vmsi_err(err, VMS_ERR_INVAL,
                            "swap cluster %llu: holds a huge page swapped out whole but no slot "
                            "is in use",
                            (unsigned long long)c);
        nfree += busy == 0;
    }
    if (nfree != s->cl_free)
        return vmsi_err(err, VMS_ERR_INVAL, "swap: %llu free clusters, counted %llu",
                        (unsigned long long)s->cl_free, (unsigned long long)nfree);
    return VMS_OK;
}

/* Each slot's count equals the swap PTEs naming it plus shmem cache entries holding it;
 * each swap-cache frame is flagged and names its slot; free counts agree. */
vms_status vmsi_swap_check(vms_kernel *k, vms_err *err)
{
    vmsi_swap *s = &k->swap;
    if (!s->nslots)
        return VMS_OK;
    tally_ctx c = {k, vmsi_calloc(k->a, s->nslots, sizeof(uint32_t)), err, VMS_OK};
    if (!c.seen)
        return VMS_OK; /* no memory to check with: not a kernel bug */
    for (unsigned i = 0; i < k->nprocs && c.st == VMS_OK; i++) {
        vmsi_mm *mm = k->procs[i]->mm;
        bool dup = false;
        for (unsigned j = 0; j < i && mm; j++)
            dup |= k->procs[j]->mm == mm;
        if (mm && !dup)
            vmsi_pte_range(mm, 0, vmsi_task_size(k), tally_pte, &c);
    }
    for (vms_file *f = k->files; f && c.st == VMS_OK; f = f->next)
        for (uint64_t i = 0, e; vmsi_radix_next(&f->pages, &i, &e); i++)
            if (e & VMSI_CACHE_SWAP)
                c.seen[e & VMSI_CACHE_SLOT]++;
    uint64_t nfree = 0, ncached = 0;
    for (uint64_t slot = 1; slot < s->nslots && c.st == VMS_OK; slot++) {
        if (c.seen[slot] != s->count[slot])
            c.st = vmsi_err(err, VMS_ERR_INVAL, "swap slot %llu: count %u, %u references",
                            (unsigned long long)slot, s->count[slot], c.seen[slot]);
        nfree += !s->count[slot] && !s->bad[slot];
        uint64_t pfn = s->cache[slot];
        if (!pfn)
            continue;
        ncached++;
        vms_frame *f = vms_frames_meta(k->fr, pfn);
        vmsi_rmap *r = f ? (vmsi_rmap *)f->owner : NULL;
        if (!s->count[slot] || !r || !r->swapcache || r->index != slot ||
            !(f->flags & VMSI_FRAME_SWAPCACHE) || !(f->flags & VMS_FRAME_ANON))
            c.st = vmsi_err(err, VMS_ERR_INVAL, "swap slot %llu: bad swap-cache frame %llx",
                            (unsigned long long)slot, (unsigned long long)pfn);
    }
    if (c.st == VMS_OK && (nfree != s->nfree || ncached != s->ncached))
        c.st =
            vmsi_err(err, VMS_ERR_INVAL, "swap: %llu free / %llu cached slots, counted %llu / %llu",
                     (unsigned long long)s->nfree, (unsigned long long)s->ncached,
                     (unsigned long long)nfree, (unsigned long long)ncached);
    if (c.st == VMS_OK)
        c.st = check_clusters(s, err);
    vmsi_free(k->a, c.seen, s->nslots * sizeof(uint32_t));
    return c.st;
}
