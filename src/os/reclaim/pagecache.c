/*
 * pagecache.c — files and their page cache (Linux mm/filemap.c, much reduced), and
 * writeback to a copy of the file.
 *
 * A file is a host file opened read-only; opening the same path twice gives the same
 * object, so every mapping of a file shares one page cache. The cache is a sparse map
 * (util/radix.h) from page index to pfn (0 = absent), so its host memory follows the
 * pages cached, not the file's size; only regular files are opened. A cache page is a frame flagged
 * FILE (plus SWAPBACKED for shmem), holding one reference owned by the cache, with its rmap record
 * naming (file, index) for the reverse map. Its bytes are the host file's bytes; the
 * part of the last page beyond EOF reads as zeros.
 *
 * Readahead model: see fault.c — a page-cache miss reads the faulting page and the
 * uncached pages of its fault-around window in one go (pgpgin counts pages; each page
 * costs cost.file_read).
 *
 * Writeback: a page of a MAP_SHARED mapping becomes dirty when written (the fault that
 * makes its PTE writable marks it DIRTY; a D bit in any PTE mapping it also counts).
 * Writeback (msync, munmap, exit, last close) writes dirty pages, then write-protects
 * and cleans every PTE mapping them through the rmap (Linux's page_mkclean) and flushes
 * those TLB entries, so that the next write faults and re-dirties the page. It writes
 * to writeback_dir/<basename> — created on first writeback as a byte copy of the
 * original — never to the user's original unless writeback_in_place is configured.
 * Shared anonymous memory and named shm have no backing file: they are never written.
 * Invariant: every live object is on k->files; refs counts opens, mappings and (shm) a
 * name; the last put writes back, frees the cache and the object.
 */
#define _POSIX_C_SOURCE 200809L /* fileno, fstat, O_NONBLOCK */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "os/os_impl.h"
#include "os/mm/mm_impl.h"
#include "os/reclaim/reclaim_impl.h"

static char *dup_str(vms_kernel *k, const char *s, const char *s2)
{
    size_t n = strlen(s), n2 = s2 ? strlen(s2) : 0;
    char *p = vmsi_alloc(k->a, n + n2 + 1);
    if (p) {
        memcpy(p, s, n);
        if (s2)
            memcpy(p + n, s2, n2);
        p[n + n2] = '\0';
    }
    return p;
}

static void free_str(vms_kernel *k, char *s)
{
    if (s)
        vmsi_free(k->a, s, strlen(s) + 1);
}

vms_status vmsi_file_new(vms_kernel *k, vmsi_file_kind kind, uint64_t size, vms_file **out,
                         vms_err *err)
{
    vms_file *f = vmsi_zalloc(k->a, sizeof *f);
    if (!f)
        return vmsi_err(err, VMS_ERR_NOMEM, "file: out of host memory");
    f->k = k;
    f->kind = kind;
    f->refs = 1;
    f->ino = k->next_ino++;
    f->size = size;
    f->npages = (size + VMS_PAGE_MASK) >> VMS_PAGE_SHIFT;
    f->next = k->files;
    k->files = f;
    *out = f;
    return VMS_OK;
}

void vmsi_file_get(vms_file *f)
{
    f->refs++;
}

/* Drop the cache's reference of every page (all must be unmapped by now), and of every
 * swap slot holding a swapped-out shmem page. */
static void drop_cache(vms_kernel *k, vms_file *f)
{
    for (uint64_t i = 0, e; vmsi_radix_next(&f->pages, &i, &e); i++) {
        uint64_t pfn = vmsi_cache_pfn(e);
        if (e & VMSI_CACHE_SWAP)
            vmsi_swap_free(k, e & VMSI_CACHE_SLOT);
        if (!pfn)
            continue;
        vms_frame *fm = vms_frames_meta(k->fr, pfn);
        vmsi_rmap *r = (vmsi_rmap *)fm->owner;
        vmsi_free(k->a, r->e, r->cap * sizeof *r->e);
        vmsi_free(k->a, r, sizeof *r);
        fm->owner = 0;
        if (fm->flags & VMS_FRAME_SWAPBACKED)
            k->nr_shmem--;
        vmsi_lru_del(k, pfn);
        vms_frames_set_flags(k->fr, pfn, 0, fm->flags & ~VMS_FRAME_OWNED_FLAGS);
        vms_frames_put(k->fr, pfn, NULL);
    }
    vmsi_radix_free(&f->pages, k->a);
    f->cached = 0;
}

static void file_free(vms_kernel *k, vms_file *f)
{
    if (f->kind == VMSI_FILE_HOST)
        vmsi_file_writeback(k, f, 0, f->npages, 0, NULL);
    if (f->kind == VMSI_FILE_HTLBFS)
        vmsi_hugetlbfs_evict(k, f); /* pool pages by huge-page index (hugetlb.c) */
    else
        drop_cache(k, f);
    for (vms_file **pp = &k->files; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    free_str(k, f->path);
    free_str(k, f->wb_path);
    vmsi_free(k->a, f, sizeof *f);
}

void vmsi_file_put(vms_kernel *k, vms_file *f)
{
    if (--f->refs == 0)
        file_free(k, f);
}

void vmsi_files_destroy(vms_kernel *k)
{
    while (k->files)
        file_free(k, k->files);
}

static const char *basename_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

vms_status vms_file_open(vms_kernel *k, const char *path, vms_file **out, vms_err *err)
{
    *out = NULL;
    for (vms_file *f = k->files; f; f = f->next) {
        if (f->kind == VMSI_FILE_HOST && strcmp(f->path, path) == 0) {
            vmsi_file_get(f);
            *out = f;
            return VMS_OK;
        }
    }
    /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer, forever. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return vmsi_err(err, VMS_ERR_IO, "%s: cannot open for reading", path);
    /* Only a regular file has pages to map: a directory, a device or a FIFO has no size
     * to trust (a directory's seek end is LLONG_MAX; a FIFO cannot be re-read). */
    struct stat sb;
    int r = fstat(fd, &sb);
    close(fd);
    if (r != 0)
        return vmsi_err(err, VMS_ERR_IO, "%s: cannot find its size", path);
    if (!S_ISREG(sb.st_mode))
        return vmsi_err(err, VMS_ERR_INVAL, "%s: not a regular file (%s): expected a file to map",
                        path,
                        S_ISDIR(sb.st_mode)    ? "a directory"
                        : S_ISCHR(sb.st_mode)  ? "a character device"
                        : S_ISBLK(sb.st_mode)  ? "a block device"
                        : S_ISFIFO(sb.st_mode) ? "a FIFO"
                                               : "a socket or other special file");
    uint64_t size = (uint64_t)sb.st_size;
    vms_file *f;
    vms_status st = vmsi_file_new(k, VMSI_FILE_HOST, size, &f, err);
    if (st != VMS_OK)
        return st;
    const char *dir = k->cfg.writeback_dir ? k->cfg.writeback_dir : ".";
    f->path = dup_str(k, path, NULL);
    if (k->cfg.writeback_in_place) {
        f->wb_path = dup_str(k, path, NULL);
    } else {
        char *d = dup_str(k, dir, "/");
        f->wb_path = d ? dup_str(k, d, basename_of(path)) : NULL;
        free_str(k, d);
    }
    if (!f->path || !f->wb_path) {
        vmsi_file_put(k, f);
        return vmsi_err(err, VMS_ERR_NOMEM, "file: out of host memory");
    }
    f->wb_created = k->cfg.writeback_in_place;
    *out = f;
    return VMS_OK;
}

void vms_file_close(vms_kernel *k, vms_file *f)
{
    if (f)
        vmsi_file_put(k, f);
}

uint64_t vms_file_size(const vms_file *f)
{
    return f->size;
}

const char *vms_file_writeback_path(const vms_file *f)
{
    return f->kind == VMSI_FILE_HOST ? f->wb_path : NULL;
}

uint64_t vms_file_cached_pages(const vms_file *f)
{
    return f->cached;
}

uint64_t vmsi_filemap_peek(const vms_file *f, uint64_t index)
{
    return index < f->npages ? vmsi_cache_pfn(vmsi_cache_entry(f, index)) : 0;
}

/* Bring page index into the cache: a new frame, filled from the host file (or zeros
 * for shmem), with its rmap record. h is the open host file (NULL for shmem). */
static vms_status add_page(vms_kernel *k, vms_file *f, uint64_t index, FILE *h, unsigned core)
{
    bool shmem = f->kind != VMSI_FILE_HOST;
    uint64_t pfn;
    uint32_t flags = VMS_FRAME_FILE | (shmem ? VMS_FRAME_SWAPBACKED : 0);
    vms_status st = vmsi_alloc_frames(k, 0, flags, &pfn, NULL);
    if (st != VMS_OK)
        return st;
    vmsi_rmap *r = vmsi_zalloc(k->a, sizeof *r);
    uint64_t old = vmsi_cache_entry(f, index); /* 0 or a shadow: the slot may need nodes */
    if (!r || vmsi_radix_set(&f->pages, k->a, index, old ? old : VMSI_CACHE_SHADOW) != VMS_OK) {
        vmsi_free(k->a, r, sizeof *r);
        vms_frames_set_flags(k->fr, pfn, 0, flags);
        vms_frames_put(k->fr, pfn, NULL);
        return VMS_ERR_NOMEM;
    }
    r->file = f;
    r->index = index;
    vms_frames_meta(k->fr, pfn)->owner = (uintptr_t)r;
    if (h) {
        uint8_t buf[4096] = {0};
        size_t n = 0;
        if (fseek(h, (long)(index << VMS_PAGE_SHIFT), SEEK_SET) == 0)
            n = fread(buf, 1, sizeof buf, h);
        if (n && vmsi_ram_write(k, pfn << VMS_PAGE_SHIFT, buf, n) != VMS_OK) {
            vmsi_radix_set(&f->pages, k->a, index, old); /* as it was: cannot fail */
            vms_frames_meta(k->fr, pfn)->owner = 0;
            vmsi_free(k->a, r, sizeof *r);
            vms_frames_set_flags(k->fr, pfn, 0, flags);
            vms_frames_put(k->fr, pfn, NULL);
            return VMS_ERR_NOMEM;
        }
        /* Warm and never reclaimed: resident since boot, no read (the bytes are the
         * host file's all the same). */
        if (k->cfg.pagecache != VMS_PAGECACHE_WARM || old) {
            vmsi_charge(k, core, k->cfg.cost.file_read);
            k->st.pgpgin++;
        }
    } else {
        vmsi_charge(k, core, k->cfg.cost.zero_page);
        k->nr_shmem++;
    }
    vmsi_radix_set(&f->pages, k->a, index, pfn); /* the slot exists: cannot fail */
    f->cached++;
    vmsi_lru_add(k, pfn);
    return VMS_OK;
}

/* shmem_swapin: bring swapped-out shmem page index back from its slot (Linux
 * shmem_swapin_folio). A read error poisons the entry (every later fault of the page is
 * SIGBUS) and kills the other processes mapping it; VMS_ERR_IO. */
static vms_status shmem_swapin(vms_kernel *k, vms_file *f, uint64_t index, unsigned core,
                               vms_err *err)
{
    uint64_t e = vmsi_cache_entry(f, index), slot = e & VMSI_CACHE_SLOT, pfn;
    if (e & VMSI_CACHE_POISON)
        return vmsi_err(err, VMS_ERR_IO, "shmem page %llu: lost to a swap read error",
                        (unsigned long long)index);
    vms_status st = vmsi_alloc_frames(k, 0, VMS_FRAME_FILE | VMS_FRAME_SWAPBACKED, &pfn, err);
    if (st != VMS_OK)
        return st;
    st = vmsi_swap_readpage(k, slot, pfn, core);
    vmsi_rmap *r = st == VMS_OK ? vmsi_zalloc(k->a, sizeof *r) : NULL;
    if (!r) {
        vms_frames_set_flags(k->fr, pfn, 0, VMS_FRAME_FILE | VMS_FRAME_SWAPBACKED);
        vms_frames_put(k->fr, pfn, NULL);
        if (st != VMS_ERR_IO)
            return vmsi_err(err, VMS_ERR_NOMEM, "shmem swap-in: out of host memory");
        vmsi_radix_set(&f->pages, k->a, index, e | VMSI_CACHE_POISON); /* replaces */
        k->st.swap_read_errors++;
        vmsi_log(k, VMS_LOG_ERR, "Read-error on swap-device (0:%llu)", (unsigned long long)slot);
        vmsi_swap_kill_owners(k, slot, k->cur_proc);
        return vmsi_err(err, VMS_ERR_IO, "shmem page %llu: swap read error",
                        (unsigned long long)index);
    }
    r->file = f;
    r->index = index;
    vms_frames_meta(k->fr, pfn)->owner = (uintptr_t)r;
    vmsi_radix_set(&f->pages, k->a, index, pfn); /* replaces the swap entry */
    f->cached++;
    k->nr_shmem++;
    vmsi_swap_free(k, slot);
    k->st.pswpin++;
    k->st.refault_anon++;
    vmsi_lru_add(k, pfn);
    return VMS_OK;
}

vms_status vmsi_filemap_get(vms_kernel *k, vms_file *f, uint64_t index, uint64_t ra_start,
                            uint64_t ra_end, uint64_t *pfn, bool *major, unsigned core,
                            vms_err *err)
{
    *major = false;
    if (index >= f->npages)
        return vmsi_err(err, VMS_ERR_RANGE, "page %llu beyond the end of the file",
                        (unsigned long long)index);
    if (vmsi_cache_entry(f, index) & VMSI_CACHE_SWAP) {
        vms_status st = shmem_swapin(k, f, index, core, err);
        if (st != VMS_OK)
            return st;
        *major = true;
    }
    if (!vmsi_cache_pfn(vmsi_cache_entry(f, index))) {
        FILE *h = NULL;
        if (f->kind == VMSI_FILE_HOST) {
            /* Written-back pages live in the copy (which starts as the original). */
            const char *from = f->wb_created ? f->wb_path : f->path;
            h = fopen(from, "rb");
            if (!h)
                return vmsi_err(err, VMS_ERR_IO, "%s: cannot read", from);
            /* Warm: a page never cached in this run is resident from boot, so only a
             * page reclaimed since (a shadow entry) is read again. */
            bool shadow = vmsi_cache_entry(f, index) & VMSI_CACHE_SHADOW;
            *major = k->cfg.pagecache != VMS_PAGECACHE_WARM || shadow;
            if (shadow)
                k->st.refault_file++;
        }
        vms_status st = add_page(k, f, index, h, core);
        if (st == VMS_OK) /* held: the readahead's allocations may reclaim */
            vms_frames_get(k->fr, vmsi_cache_entry(f, index));
        for (uint64_t i = ra_start; h && st == VMS_OK && i < ra_end && i < f->npages; i++)
            if (!vmsi_cache_pfn(vmsi_cache_entry(f, i)) && add_page(k, f, i, h, core) != VMS_OK)
                break; /* readahead is best effort */
        if (h)
            fclose(h);
        if (st != VMS_OK)
            return vmsi_err(err, st, "page cache: cannot add page %llu", (unsigned long long)index);
    } else {
        vms_frames_get(k->fr, vmsi_cache_entry(f, index));
    }
    *pfn = vmsi_cache_entry(f, index);
    return VMS_OK;
}

/* ---- writeback -------------------------------------------------------------------------- */

/* Copy the original host file to the writeback path (once). */
static vms_status make_copy(vms_file *f, vms_err *err)
{
    if (f->wb_created)
        return VMS_OK;
    FILE *in = fopen(f->path, "rb");
    FILE *out = in ? fopen(f->wb_path, "wb") : NULL;
    vms_status st = out ? VMS_OK : VMS_ERR_IO;
    char buf[8192];
    size_t n;
    while (st == VMS_OK && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            st = VMS_ERR_IO;
    if (out && fclose(out) != 0)
        st = VMS_ERR_IO;
    if (in)
        fclose(in);
    if (st != VMS_OK)
        return vmsi_err(err, st, "%s: cannot create the writeback copy of %s", f->wb_path, f->path);
    f->wb_created = true;
    return VMS_OK;
}

/* Whether a cache page is dirty: flagged, or a D bit in a PTE mapping it. */
static bool page_dirty(vms_kernel *k, uint64_t pfn)
{
    vms_frame *fm = vms_frames_meta(k->fr, pfn);
    if (fm->flags & VMS_FRAME_DIRTY)
        return true;
    for (uint32_t i = 0; i < vmsi_rmap_count(fm); i++) {
        vmsi_rmap_ent e = vmsi_rmap_get(fm, i);
        uint64_t ptep = 0;
        vmsi_pte_slot(e.mm, e.va, VMS_PG_4K, false, &ptep, NULL);
        if (ptep && vmsi_pte_dirty(k, vmsi_pte_get(e.mm, ptep)))
            return true;
    }
    return false;
}

/* page_mkclean: write-protect and clean every PTE mapping pfn, flushing each. */
static void page_mkclean(vms_kernel *k, uint64_t pfn, unsigned core)
{
    vms_frame *fm = vms_frames_meta(k->fr, pfn);
    for (uint32_t i = 0; i < vmsi_rmap_count(fm); i++) {
        vmsi_rmap_ent e = vmsi_rmap_get(fm, i);
        uint64_t ptep = 0;
        vmsi_pte_slot(e.mm, e.va, VMS_PG_4K, false, &ptep, NULL);
        uint64_t pte = ptep ? vmsi_pte_get(e.mm, ptep) : 0;
        if (!vmsi_pte_write(k, pte) && !vmsi_pte_dirty(k, pte))
            continue;
        vmsi_pte_set(e.mm, ptep, vmsi_pte_mkclean(k, vmsi_pte_wrprotect(k, pte)));
        vmsi_flush_tlb_range(k, e.mm, core, e.va, e.va + VMS_PAGE_SIZE);
    }
    vms_frames_set_flags(k->fr, pfn, 0, VMS_FRAME_DIRTY);
}

vms_status vmsi_file_writeback(vms_kernel *k, vms_file *f, uint64_t first, uint64_t last,
                               unsigned core, vms_err *err)
{
    if (f->kind != VMSI_FILE_HOST)
        return VMS_OK;
    FILE *out = NULL;
    vms_status st = VMS_OK;
    for (uint64_t i = first, e;
         st == VMS_OK && vmsi_radix_next(&f->pages, &i, &e) && i < last && i < f->npages; i++) {
        uint64_t pfn = vmsi_cache_pfn(e);
        if (!pfn || !page_dirty(k, pfn))
            continue;
        if (!out) {
            st = make_copy(f, err);
            out = st == VMS_OK ? fopen(f->wb_path, "r+b") : NULL;
            if (st == VMS_OK && !out)
                st = vmsi_err(err, VMS_ERR_IO, "%s: cannot open for writeback", f->wb_path);
            if (st != VMS_OK)
                break;
        }
        uint64_t off = i << VMS_PAGE_SHIFT;
        size_t n = (size_t)(f->size - off < VMS_PAGE_SIZE ? f->size - off : VMS_PAGE_SIZE);
        uint8_t buf[4096];
        if (vmsi_ram_read_io(k, pfn << VMS_PAGE_SHIFT, buf, n) != VMS_OK) {
            st = vmsi_err(err, VMS_ERR_IO, "%s: page %llu unreadable (a VM's host memory)",
                          f->wb_path, (unsigned long long)i);
            break; /* the page stays dirty: nothing is lost */
        }
        if (fseek(out, (long)off, SEEK_SET) != 0 || fwrite(buf, 1, n, out) != n) {
            st = vmsi_err(err, VMS_ERR_IO, "%s: write failed", f->wb_path);
            break; /* the page stays dirty: nothing is lost */
        }
        page_mkclean(k, pfn, core);
        vmsi_charge(k, core, k->cfg.cost.writeback);
        k->st.pgpgout++;
    }
    if (out && fclose(out) != 0 && st == VMS_OK)
        st = vmsi_err(err, VMS_ERR_IO, "%s: write failed", f->wb_path);
    return st;
}
