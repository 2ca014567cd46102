/*
 * procfs.c — observing the kernel the Linux way: /proc/PID/maps, pagemap and smaps per
 * process; /proc/meminfo and /proc/vmstat system-wide; JSON members for tools; and the
 * whole-kernel invariant checker.
 *
 * Formats follow Linux: maps from fs/proc/task_mmu.c show_map_vma (the pathname column
 * padded to 73 characters, then one space; lines without a name end with a space),
 * pagemap entries from Documentation/admin-guide/mm/pagemap.rst, meminfo from
 * fs/proc/meminfo.c ("%-16s%8llu kB", label with its colon). Simplifications: pagemap
 * reports soft-dirty for every present page (no clear_refs) and real PFNs (as for
 * CAP_SYS_ADMIN); the zero page is not counted in Rss (Linux's vm_normal_page).
 */
#include "os/os_impl.h"
#include "os/mm/mm_impl.h"
#include "os/reclaim/reclaim_impl.h"
#include "vmsim/dma.h"

static const vmsi_mm *task_mm(const vms_task *t)
{
    return t ? t->proc->mm : NULL;
}

/* The pathname column of a VMA, or NULL. */
static const char *vma_name(const vmsi_mm *mm, const vmsi_vma *v)
{
    if (v->file && v->file->kind == VMSI_FILE_ANON)
        return "/dev/zero (deleted)";
    if (v->file && v->file->kind == VMSI_FILE_HTLBFS && !v->file->path)
        return "/anon_hugepage (deleted)";
    if (v->file)
        return v->file->path;
    if (v->flags & VMSI_VM_STACK)
        return "[stack]";
    if ((v->flags & VMSI_VM_HEAP) && v->start <= mm->brk && v->end >= mm->start_brk)
        return "[heap]";
    return NULL;
}

const char *vms_proc_region_name(vms_kernel *k, const vms_task *t, uint64_t va)
{
    (void)k;
    if (!t || !vms_task_alive(t))
        return NULL;
    vmsi_mm *mm = t->proc->mm;
    vmsi_vma *v = mm ? vmsi_vma_lookup(mm, va) : NULL;
    if (!v)
        return NULL;
    const char *name = vma_name(mm, v);
    return name ? name : "[anon]";
}

static vms_status maps_line(vms_strbuf *sb, const vmsi_mm *mm, const vmsi_vma *v)
{
    unsigned dev_major = 0, dev_minor = 0;
    uint64_t ino = 0, off = 0;
    if (v->file) {
        ino = v->file->ino;
        off = v->pgoff << VMS_PAGE_SHIFT;
        if (v->file->kind == VMSI_FILE_HOST)
            dev_major = 8, dev_minor = 1;
        else
            dev_minor = 1;
    }
    size_t before = sb->len;
    vms_status st = vms_strbuf_printf(
        sb, "%08llx-%08llx %c%c%c%c %08llx %02x:%02x %llu ", (unsigned long long)v->start,
        (unsigned long long)v->end, (v->prot & VMS_PROT_READ) ? 'r' : '-',
        (v->prot & VMS_PROT_WRITE) ? 'w' : '-', (v->prot & VMS_PROT_EXEC) ? 'x' : '-',
        (v->flags & VMSI_VM_SHARED) ? 's' : 'p', (unsigned long long)off, dev_major, dev_minor,
        (unsigned long long)ino);
    const char *name = vma_name(mm, v);
    if (st == VMS_OK && name) {
        /* seq_setwidth(73) before the prefix, then seq_pad(' '): pad to 73, one space. */
        size_t used = sb->len - before;
        int pad = used < 73 ? (int)(73 - used) : 0;
        st = vms_strbuf_printf(sb, "%*s %s", pad, "", name);
    }
    return st == VMS_OK ? vms_strbuf_printf(sb, "\n") : st;
}

vms_status vms_proc_maps(vms_kernel *k, const vms_task *t, vms_strbuf *sb)
{
    (void)k;
    const vmsi_mm *mm = task_mm(t);
    vms_status st = VMS_OK;
    for (size_t i = 0; mm && i < mm->nvma && st == VMS_OK; i++)
        st = maps_line(sb, mm, &mm->vma[i]);
    return st;
}

/* The leaf mapping va in mm (present, protnone or a swap entry), or 0; *size its page
 * size. */
static uint64_t leaf_of(vmsi_mm *mm, uint64_t va, vms_pgsize *size)
{
    vmsi_vma *v = vmsi_vma_lookup(mm, va);
    if (!v)
        return 0;
    uint64_t ptep = 0;
    uint64_t pte = vmsi_leaf_find(mm, va, &ptep, size); /* a THP's 2 MiB leaf too */
    return vmsi_pte_mapped(mm->k, pte) || vmsi_is_swap_pte(mm->k, pte) ? pte : 0;
}

vms_status vms_proc_pagemap(vms_kernel *k, const vms_task *t, uint64_t va, size_t npages,
                            uint64_t *out)
{
    vmsi_mm *mm = t ? t->proc->mm : NULL;
    if (!mm)
        return VMS_ERR_INVAL;
    va &= ~VMS_PAGE_MASK;
    for (size_t i = 0; i < npages; i++, va += VMS_PAGE_SIZE) {
        vms_pgsize size = VMS_PG_4K;
        uint64_t pte = va < vmsi_task_size(k) ? leaf_of(mm, va, &size) : 0;
        out[i] = 0;
        if (!pte)
            continue;
        if (vmsi_is_swap_pte(k, pte)) { /* bits 4:0 swap type, 54:5 swap offset */
            out[i] = VMS_PM_SWAPPED | (vmsi_swp_offset(k, pte) << 5 & VMS_PM_PFN_MASK) |
                     vmsi_swp_type(k, pte);
            continue;
        }
        uint64_t bytes = vms_pgsize_bytes(size);
        uint64_t head = vmsi_pte_head_pfn(k, pte, size);
        uint64_t pfn = head + ((va & (bytes - 1)) >> VMS_PAGE_SHIFT);
        out[i] = VMS_PM_PRESENT | VMS_PM_SOFT_DIRTY | (pfn & VMS_PM_PFN_MASK);
        if (vmsi_is_zero_pfn(k, head))
            continue;
        head = vmsi_folio_head(k, head); /* a PTE-mapped THP's subpage: the page */
        vms_frame *f = vms_frames_meta(k->fr, head);
        if (f->flags & VMS_FRAME_FILE)
            out[i] |= VMS_PM_FILE;
        /* page_mapcount: a THP's subpage counts its own PTEs and the page's PMDs. */
        uint32_t mc = (f->flags & VMSI_FRAME_THP) ? vmsi_thp_subpage_mapcount(k, head, pfn - head)
                                                  : f->mapcount;
        if (mc == 1)
            out[i] |= VMS_PM_EXCLUSIVE;
    }
    return VMS_OK;
}

/* ---- smaps -------------------------------------------------------------------------------- */

typedef struct smaps_acc {
    vms_kernel *k;
    uint64_t rss, pss_x1024, shared_clean, shared_dirty, private_clean, private_dirty, anon, locked;
    uint64_t anon_huge; /* bytes mapped by transparent huge pages (AnonHugePages) */
    bool vma_locked;
} smaps_acc;

static void smaps_pte(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size,
                      void *ud)
{
    smaps_acc *a = ud;
    (void)mm;
    (void)va;
    (void)ptep;
    if (!vmsi_pte_present(a->k, pte))
        return;
    uint64_t pfn = vmsi_pte_head_pfn(a->k, pte, size);
    if (vmsi_is_zero_pfn(a->k, pfn))
        return;
    uint64_t head = vmsi_folio_head(a->k, pfn); /* a PTE-mapped THP's subpage: the page */
    vms_frame *f = vms_frames_meta(a->k->fr, head);
    bool dirty = vmsi_pte_dirty(a->k, pte) || (f->flags & VMS_FRAME_DIRTY);
    bool thp = (f->flags & VMSI_FRAME_THP) != 0;
    /* smaps_account: a THP per 4 KiB subpage, each by its own mapcount (its PTEs and the
     * page's PMDs); AnonHugePages only for a PMD mapping (Linux smaps_pmd_entry). */
    uint64_t n = thp ? vms_pgsize_bytes(size) >> VMS_PAGE_SHIFT : 1;
    uint64_t bytes = thp ? VMS_PAGE_SIZE : vms_pgsize_bytes(size);
    for (uint64_t i = 0; i < n; i++) {
        uint32_t mc = thp ? vmsi_thp_subpage_mapcount(a->k, head, pfn - head + i) : f->mapcount;
        a->rss += bytes;
        a->pss_x1024 += (bytes << 10) / (mc ? mc : 1);
        if (mc >= 2)
            *(dirty ? &a->shared_dirty : &a->shared_clean) += bytes;
        else
            *(dirty ? &a->private_dirty : &a->private_clean) += bytes;
        if (f->flags & VMS_FRAME_ANON)
            a->anon += bytes;
        if (thp && size == VMS_PG_2M)
            a->anon_huge += bytes;
        if (a->vma_locked)
            a->locked += bytes;
    }
}

vms_status vms_proc_smaps(vms_kernel *k, const vms_task *t, vms_strbuf *sb)
{
    vmsi_mm *mm = t ? t->proc->mm : NULL;
    vms_status st = VMS_OK;
    for (size_t i = 0; mm && i < mm->nvma && st == VMS_OK; i++) {
        vmsi_vma *v = &mm->vma[i];
        smaps_acc a = {k, 0, 0, 0, 0, 0, 0, 0, 0, 0, (v->flags & VMSI_VM_LOCKED) != 0};
        vmsi_pte_range(mm, v->start, v->end, smaps_pte, &a);
        st = maps_line(sb, mm, v);
        if (st == VMS_OK)
            st = vms_strbuf_printf(
                sb,
                "Size:           %8llu kB\nRss:            %8llu kB\nPss:            %8llu kB\n"
                "Shared_Clean:   %8llu kB\nShared_Dirty:   %8llu kB\n"
                "Private_Clean:  %8llu kB\nPrivate_Dirty:  %8llu kB\n"
                "Anonymous:      %8llu kB\nAnonHugePages:  %8llu kB\n"
                "Locked:         %8llu kB\n",
                (unsigned long long)((v->end - v->start) >> 10), (unsigned long long)(a.rss >> 10),
                (unsigned long long)(a.pss_x1024 >> 20), (unsigned long long)(a.shared_clean >> 10),
                (unsigned long long)(a.shared_dirty >> 10),
                (unsigned long long)(a.private_clean >> 10),
                (unsigned long long)(a.private_dirty >> 10), (unsigned long long)(a.anon >> 10),
                (unsigned long long)(a.anon_huge >> 10), (unsigned long long)(a.locked >> 10));
    }
    return st;
}

uint64_t vms_proc_rss(vms_kernel *k, const vms_task *t)
{
    (void)k;
    const vmsi_mm *mm = task_mm(t);
    return mm ? mm->rss_anon + mm->rss_file + mm->rss_shmem : 0;
}

/* ---- system-wide ---------------------------------------------------------------------------- */

typedef struct meminfo {
    uint64_t total, free, cached, anon, mapped, shmem, pagetables, mlocked;
    uint64_t anon_huge; /* pages in transparent huge pages */
} meminfo;

static void meminfo_get(vms_kernel *k, meminfo *mi)
{
    vms_frames_stats fs;
    vms_frames_stats_get(k->fr, &fs);
    mi->total = fs.total - fs.reserved;
    mi->free = fs.free;
    mi->cached = vms_frames_count(k->fr, VMS_FRAME_FILE);
    /* hugetlb pool pages are not AnonPages (Linux counts them in HugePages_*). */
    mi->anon =
        vms_frames_count(k->fr, VMS_FRAME_ANON) - vms_frames_count(k->fr, VMSI_FRAME_HUGETLB);
    /* NR_ANON_MAPPED: the subpages of a partially mapped THP no PTE maps any more are not
     * AnonPages (nor free: the deferred split frees them). */
    mi->anon -= vmsi_thp_unmapped_frames(k);
    mi->mapped = k->nr_mapped_file;
    mi->shmem = k->nr_shmem;
    mi->pagetables = vms_frames_count(k->fr, VMS_FRAME_PAGETABLE);
    mi->mlocked = vms_frames_count(k->fr, VMS_FRAME_LOCKED);
    mi->anon_huge = k->thp_pmd_mapped * 512; /* NR_ANON_THPS: pages some PMD maps */
}

vms_status vms_kernel_meminfo(vms_kernel *k, vms_strbuf *sb)
{
    meminfo mi;
    meminfo_get(k, &mi);
    const struct {
        const char *name;
        uint64_t pages;
    } rows[] = {
        {"MemTotal:", mi.total},
        {"MemFree:", mi.free},
        {"MemAvailable:", mi.free + mi.cached - mi.shmem},
        {"Cached:", mi.cached},
        {"AnonPages:", mi.anon},
        {"Mapped:", mi.mapped},
        {"Shmem:", mi.shmem},
        {"PageTables:", mi.pagetables},
        {"Mlocked:", mi.mlocked},
        {"SwapTotal:", k->swap.nslots ? k->swap.nslots - 1 : 0},
        {"SwapFree:", k->swap.nfree},
        {"AnonHugePages:", mi.anon_huge},
        {"ShmemHugePages:", 0},
        {"FileHugePages:", 0},
    };
    vms_status st = VMS_OK;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0] && st == VMS_OK; i++)
        st = vms_strbuf_printf(sb, "%-16s%8llu kB\n", rows[i].name,
                               (unsigned long long)(rows[i].pages * 4));
    /* hugetlb_report_meminfo: the default pool's counts (default_hugepagesz), then every
     * pool's kB. */
    bool giga = k->cfg.default_hugepagesz == VMS_PG_1G;
    const vmsi_hpool *h = &k->hpool[giga ? 1 : 0];
    uint64_t hugetlb_kb = k->hpool[0].total * 2048 + k->hpool[1].total * 1048576;
    if (st == VMS_OK)
        st = vms_strbuf_printf(sb,
                               "HugePages_Total:   %5llu\nHugePages_Free:    %5llu\n"
                               "HugePages_Rsvd:    %5llu\nHugePages_Surp:    %5llu\n"
                               "Hugepagesize:   %8llu kB\nHugetlb:        %8llu kB\n",
                               (unsigned long long)h->total, (unsigned long long)h->nfree,
                               (unsigned long long)h->resv, (unsigned long long)h->surplus,
                               giga ? 1048576ULL : 2048ULL, (unsigned long long)hugetlb_kb);
    return st;
}

vms_status vms_kernel_vmstat(vms_kernel *k, vms_strbuf *sb)
{
    meminfo mi;
    meminfo_get(k, &mi);
    const vms_kernel_stats *s = &k->st;
    const struct {
        const char *name;
        uint64_t v;
    } rows[] = {
        {"nr_free_pages", mi.free},
        {"nr_anon_pages", mi.anon},
        {"nr_mapped", mi.mapped},
        {"nr_file_pages", mi.cached},
        {"nr_shmem", mi.shmem},
        {"nr_page_table_pages", mi.pagetables},
        {"nr_mlock", mi.mlocked},
        {"pgpgin", s->pgpgin},
        {"pgpgout", s->pgpgout},
        {"pgfault", s->pgfault},
        {"pgmajfault", s->pgmajfault},
        {"thp_fault_alloc", s->thp_anon_fault_alloc},
        {"thp_fault_fallback", s->thp_fault_fallback},
        {"thp_collapse_alloc", s->thp_collapse_alloc},
        {"thp_split_page", s->thp_split_page},
        {"thp_deferred_split_page", s->thp_deferred_split_page},
        {"thp_split_pmd", s->thp_split_pmd},
        {"thp_zero_page_alloc", s->thp_zero_page_alloc},
        {"thp_swpout", s->thp_swpout},
        {"thp_swpout_fallback", s->thp_swpout_fallback},
        {"compact_stall", s->compact_stall},
        {"compact_success", s->compact_success},
        {"compact_migrate_scanned", s->compact_migrate_scanned},
        {"compact_free_scanned", s->compact_free_scanned},
        {"compact_fail", s->compact_fail},
        {"compact_daemon_wake", s->kcompactd_wake},
        {"pgmigrate_success", s->compact_migrate},
        {"htlb_buddy_alloc_fail", s->hugetlb_sigbus},
        {"vmsim_thp_cow_copy", s->thp_cow_copy},
        {"vmsim_thp_swpin", s->thp_swpin},
        {"vmsim_thp_swpin_fallback", s->thp_swpin_fallback},
        {"vmsim_khugepaged_scans", s->thp_khugepaged_scans},
        {"thp_collapse_alloc_failed", s->thp_collapse_alloc_failed},
        {"vmsim_khugepaged_full_scans", s->thp_khugepaged_full_scans},
        {"nr_tlb_remote_flush", s->nr_tlb_remote_flush},
        {"nr_tlb_remote_flush_received", s->nr_tlb_remote_flush_received},
        {"nr_tlb_local_flush_all", s->nr_tlb_local_flush_all},
        {"nr_tlb_local_flush_one", s->nr_tlb_local_flush_one},
        {"vmsim_minor_fault", s->minor},
        {"vmsim_cow_fault", s->cow},
        {"vmsim_cow_copy", s->cow_copy},
        {"vmsim_cow_reuse", s->cow_reuse},
        {"vmsim_zero_page_map", s->zero_page},
        {"vmsim_private_copy", s->private_copy},
        {"vmsim_anon_alloc", s->anon_alloc},
        {"vmsim_spurious_fault", s->spurious},
        {"vmsim_fault_around", s->fault_around},
        {"vmsim_stack_expand", s->stack_expand},
        {"vmsim_segv", s->segv},
        {"vmsim_sigbus", s->sigbus},
        {"oom_kill", s->oom_kill},
        {"nr_swapcached", k->swap.ncached},
        {"pswpin", s->pswpin},
        {"pswpout", s->pswpout},
        {"pgscan_kswapd", s->pgscan_kswapd},
        {"pgscan_direct", s->pgscan_direct},
        {"pgsteal_kswapd", s->pgsteal_kswapd},
        {"pgsteal_direct", s->pgsteal_direct},
        {"pgsteal_anon", s->pgsteal_anon},
        {"pgsteal_file", s->pgsteal_file},
        {"pgrotated", s->pgrotated},
        {"pageoutrun", s->kswapd_runs},
        {"allocstall_normal", s->allocstall},
        {"workingset_refault_anon", s->refault_anon},
        {"workingset_refault_file", s->refault_file},
        {"vmsim_swap_write_error", s->swap_write_errors},
        {"vmsim_swap_read_error", s->swap_read_errors},
        {"vmsim_swapcache_hit", s->swapcache_hits},
        {"vmsim_reclaim_writeback", s->pgwriteback},
        {"vmsim_pcid_flush", s->pcid_flush},
        {"vmsim_context_switch", s->context_switches},
        {"vmsim_tlb_broadcast", s->tlb_broadcasts},
        {"vmsim_tlb_invlpgb", s->tlb_invlpgb},
        {"vmsim_tlb_tlbi_is", s->tlb_tlbi_is},
        {"vmsim_tlb_sbi_rfence", s->tlb_sbi_rfence},
        {"vmsim_tlb_shootdown_cycles", s->tlb_shootdown_cycles},
        {"vmsim_tlb_lazy_skipped", s->tlb_lazy_skipped},
        {"vmsim_tlb_switch_flush", s->tlb_switch_flushes},
        {"vmsim_tlb_leave_mm", s->tlb_leave_mm},
        {"vmsim_tlb_deferred", s->tlb_deferred},
    };
    vms_status st = VMS_OK;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0] && st == VMS_OK; i++)
        st = vms_strbuf_printf(sb, "%s %llu\n", rows[i].name, (unsigned long long)rows[i].v);
    return st;
}

vms_status vms_kernel_stats_json_members(vms_kernel *k, vms_strbuf *sb)
{
    const vms_kernel_stats *s = &k->st;
    meminfo mi;
    meminfo_get(k, &mi);
    const char *txt = vms_strbuf_str(sb);
    char lastc = sb->len ? txt[sb->len - 1] : '{';
    const char *sep = (lastc == '{' || lastc == ',') ? "" : ",";
#define U(x) ((unsigned long long)(x))
    vms_status st = vms_strbuf_printf(
        sb,
        "%s\"faults\":{\"total\":%llu,\"minor\":%llu,\"major\":%llu,\"cow\":%llu,"
        "\"cow_copy\":%llu,\"cow_reuse\":%llu,\"zero_page\":%llu,\"segv\":%llu,"
        "\"sigbus\":%llu,\"spurious\":%llu,\"fault_around\":%llu,\"stack_expand\":%llu,"
        "\"thp\":%llu},",
        sep, U(s->pgfault), U(s->minor), U(s->pgmajfault), U(s->cow), U(s->cow_copy),
        U(s->cow_reuse), U(s->zero_page), U(s->segv), U(s->sigbus), U(s->spurious),
        U(s->fault_around), U(s->stack_expand), U(s->thp_fault_alloc));
    if (st == VMS_OK)
        st = vms_strbuf_printf(
            sb,
            "\"tlb_shootdown\":{\"remote_flushes\":%llu,\"ipis\":%llu,\"broadcasts\":%llu,"
            "\"cycles\":%llu,\"invlpgb\":%llu,\"lazy_skipped\":%llu,\"switch_flushes\":%llu,"
            "\"leave_mm\":%llu,\"deferred\":%llu,\"local_flush_one\":%llu,"
            "\"local_flush_all\":%llu,\"pcid_flushes\":%llu,\"tlbi_is\":%llu,"
            "\"sbi_rfence\":%llu},"
            "\"sched\":{\"migrations\":%llu,\"preemptions\":%llu},"
            "\"pagecache\":{\"pgpgin\":%llu,\"pgpgout\":%llu},",
            U(s->nr_tlb_remote_flush), U(s->nr_tlb_remote_flush_received), U(s->tlb_broadcasts),
            U(s->tlb_shootdown_cycles), U(s->tlb_invlpgb), U(s->tlb_lazy_skipped),
            U(s->tlb_switch_flushes), U(s->tlb_leave_mm), U(s->tlb_deferred),
            U(s->nr_tlb_local_flush_one), U(s->nr_tlb_local_flush_all), U(s->pcid_flush),
            U(s->tlb_tlbi_is), U(s->tlb_sbi_rfence), U(s->nr_migrations), U(s->sched_preempt),
            U(s->pgpgin), U(s->pgpgout));
    if (st == VMS_OK)
        st = vms_strbuf_printf(
            sb,
            "\"procs\":{\"forks\":%llu,\"execs\":%llu,\"clones\":%llu,\"exits\":%llu,"
            "\"context_switches\":%llu,\"syscalls\":%llu,\"oom_kills\":%llu},"
            "\"memory\":{\"total_pages\":%llu,\"free_pages\":%llu,\"anon_pages\":%llu,"
            "\"file_pages\":%llu,\"shmem_pages\":%llu,\"pagetable_pages\":%llu,"
            "\"mlocked_pages\":%llu},\"kernel_cycles\":%llu",
            U(s->forks), U(s->execs), U(s->clones), U(s->exits), U(s->context_switches),
            U(s->syscalls), U(s->oom_kill), U(mi.total), U(mi.free), U(mi.anon), U(mi.cached),
            U(mi.shmem), U(mi.pagetables), U(mi.mlocked), U(s->kernel_cycles));
    if (st == VMS_OK && k->hash) { /* the hashed and inverted designs (hashfill.c) */
        vms_design d;
        uint64_t tb, rb, walks = 0, refs = 0;
        vmsi_hash_info(k, &d, &tb, &rb);
        for (unsigned i = 0; i < k->ncores; i++) {
            const vms_walk_stats *ws = vms_core_walk_stats(vmsi_core((vms_kernel *)k, i));
            walks += ws->walks;
            refs += ws->mem_refs;
        }
        st = vms_strbuf_printf(
            sb,
            ",\"design\":{\"name\":\"%s\",\"table_bytes\":%llu,\"reserved_bytes\":%llu,"
            "\"radix_table_bytes\":%llu,\"walks\":%llu,\"walk_mem_refs\":%llu,"
            "\"refs_per_walk\":%.3f,\"hash_faults\":%llu,\"fills\":%llu,\"evictions\":%llu,"
            "\"invalidations\":%llu}",
            vms_design_name(d), U(tb), U(rb), U(mi.pagetables * VMS_PAGE_SIZE), U(walks), U(refs),
            walks ? (double)refs / (double)walks : 0.0, U(s->hash_faults), U(s->hash_fills),
            U(s->hash_evictions), U(s->hash_invalidations));
    }
    if (st == VMS_OK)
        st = vms_strbuf_printf(
            sb,
            ",\"swap\":{\"ins\":%llu,\"outs\":%llu,\"total_pages\":%llu,\"free_pages\":%llu,"
            "\"cache_pages\":%llu,\"write_errors\":%llu,\"read_errors\":%llu,"
            "\"io_cycles\":%llu,\"cache_hits\":%llu}",
            U(s->pswpin), U(s->pswpout), U(k->swap.nslots ? k->swap.nslots - 1 : 0),
            U(k->swap.nfree), U(k->swap.ncached), U(s->swap_write_errors), U(s->swap_read_errors),
            U(s->swap_io_cycles), U(s->swapcache_hits));
    if (st == VMS_OK)
        st = vms_strbuf_printf(
            sb,
            ",\"reclaim\":{\"policy\":\"%s\",\"scanned\":%llu,\"reclaimed\":%llu,"
            "\"scanned_kswapd\":%llu,\"scanned_direct\":%llu,\"reclaimed_kswapd\":%llu,"
            "\"reclaimed_direct\":%llu,\"anon\":%llu,\"file\":%llu,\"written_back\":%llu,"
            "\"rotated\":%llu,\"refaults\":%llu,\"refaults_anon\":%llu,"
            "\"refaults_file\":%llu,\"kswapd_runs\":%llu,\"allocstall\":%llu,"
            "\"kswapd_cycles\":%llu,\"oom_kills\":%llu,\"watermark_min\":%llu,"
            "\"watermark_low\":%llu,\"watermark_high\":%llu}",
            k->policy_name, U(s->pgscan_kswapd + s->pgscan_direct),
            U(s->pgsteal_kswapd + s->pgsteal_direct), U(s->pgscan_kswapd), U(s->pgscan_direct),
            U(s->pgsteal_kswapd), U(s->pgsteal_direct), U(s->pgsteal_anon), U(s->pgsteal_file),
            U(s->pgwriteback), U(s->pgrotated), U(s->refault_anon + s->refault_file),
            U(s->refault_anon), U(s->refault_file), U(s->kswapd_runs), U(s->allocstall),
            U(s->kswapd_cycles), U(s->oom_kill), U(k->wmark_min), U(k->wmark_low),
            U(k->wmark_high));
    if (st == VMS_OK) {
        uint64_t all = s->fault_cycles + s->user_cycles;
        st = vms_strbuf_printf(sb,
                               ",\"thrashing\":{\"fault_cycles\":%llu,\"swap_io_cycles\":%llu,"
                               "\"user_cycles\":%llu,\"paging_permille\":%llu}",
                               U(s->fault_cycles), U(s->swap_io_cycles), U(s->user_cycles),
                               U(all ? s->fault_cycles * 1000 / all : 0));
    }
    if (st == VMS_OK)
        st = vms_strbuf_printf(
            sb,
            ",\"thp\":{\"mode\":\"%s\",\"fault_alloc\":%llu,\"fault_fallback\":%llu,"
            "\"collapse_alloc\":%llu,\"split_page\":%llu,\"split_pmd\":%llu,"
            "\"zero_page_alloc\":%llu,\"cow_copy\":%llu,\"anon_huge_pages\":%llu,"
            "\"khugepaged_scans\":%llu,\"khugepaged_cycles\":%llu,"
            "\"khugepaged_full_scans\":%llu,\"khugepaged_timer_runs\":%llu,"
            "\"collapse_alloc_failed\":%llu,\"collapse_swapin\":%llu,"
            "\"collapse_shared\":%llu,\"deferred_split_page\":%llu,\"deferred_split_queue\":%llu,"
            "\"deferred_split_freed\":%llu,\"swpout\":%llu,\"swpout_fallback\":%llu,"
            "\"swpin\":%llu,\"swpin_fallback\":%llu},"
            "\"compaction\":{\"stall\":%llu,\"success\":%llu,\"migrated\":%llu,"
            "\"fail\":%llu,\"migrate_scanned\":%llu,\"free_scanned\":%llu,"
            "\"kcompactd_wake\":%llu,\"kcompactd_success\":%llu,\"kcompactd_cycles\":%llu,"
            "\"manual\":%llu},"
            "\"hugetlb\":{\"total\":%llu,\"free\":%llu,\"reserved\":%llu,\"surplus\":%llu,"
            "\"total_1g\":%llu,\"free_1g\":%llu,\"sigbus\":%llu,\"reserved_1g\":%llu,"
            "\"surplus_1g\":%llu}",
            k->cfg.thp == VMS_THP_ALWAYS    ? "always"
            : k->cfg.thp == VMS_THP_MADVISE ? "madvise"
                                            : "never",
            U(s->thp_anon_fault_alloc), U(s->thp_fault_fallback), U(s->thp_collapse_alloc),
            U(s->thp_split_page), U(s->thp_split_pmd), U(s->thp_zero_page_alloc),
            U(s->thp_cow_copy), U(mi.anon_huge), U(s->thp_khugepaged_scans),
            U(s->khugepaged_cycles), U(s->thp_khugepaged_full_scans),
            U(s->thp_khugepaged_timer_runs), U(s->thp_collapse_alloc_failed),
            U(s->thp_collapse_swapin), U(s->thp_collapse_shared), U(s->thp_deferred_split_page),
            U(k->split_queue_len), U(s->thp_deferred_split_freed), U(s->thp_swpout),
            U(s->thp_swpout_fallback), U(s->thp_swpin), U(s->thp_swpin_fallback),
            U(s->compact_stall), U(s->compact_success), U(s->compact_migrate), U(s->compact_fail),
            U(s->compact_migrate_scanned), U(s->compact_free_scanned), U(s->kcompactd_wake),
            U(s->kcompactd_success), U(s->kcompactd_cycles), U(s->compact_manual),
            U(k->hpool[0].total), U(k->hpool[0].nfree), U(k->hpool[0].resv), U(k->hpool[0].surplus),
            U(k->hpool[1].total), U(k->hpool[1].nfree), U(s->hugetlb_sigbus), U(k->hpool[1].resv),
            U(k->hpool[1].surplus));
#undef U
    if (st == VMS_OK && k->dma) /* only once a device was attached: the contract stays */
        st = vms_dma_stats_json_members(k, sb);
    return st;
}

/* ---- the checker -------------------------------------------------------------------------- */

/* Whether a process before index i uses mm (a vfork parent or child seen already). */
static bool mm_seen(const vms_kernel *k, unsigned i, const vmsi_mm *mm)
{
    for (unsigned j = 0; j < i; j++)
        if (k->procs[j]->mm == mm)
            return true;
    return false;
}

/* The tasks of every live process using mm: what mm->users must be. */
static unsigned mm_tasks(const vms_kernel *k, const vmsi_mm *mm)
{
    unsigned n = 0;
    for (unsigned j = 0; j < k->nprocs; j++)
        if (k->procs[j]->mm == mm)
            n += k->procs[j]->ntasks;
    return n;
}

/* The fault counters add up: each fault in one category, COW split in two. */
static vms_status check_fault_stats(const vms_kernel_stats *s, vms_err *err)
{
    if (s->pgfault != s->minor + s->pgmajfault + s->segv + s->sigbus)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "%llu faults, but %llu minor + %llu major + %llu segv + %llu sigbus",
                        (unsigned long long)s->pgfault, (unsigned long long)s->minor,
                        (unsigned long long)s->pgmajfault, (unsigned long long)s->segv,
                        (unsigned long long)s->sigbus);
    if (s->cow != s->cow_copy + s->cow_reuse)
        return vmsi_err(err, VMS_ERR_INVAL, "%llu COW faults, %llu copies + %llu reuses",
                        (unsigned long long)s->cow, (unsigned long long)s->cow_copy,
                        (unsigned long long)s->cow_reuse);
    return VMS_OK;
}

vms_status vms_kernel_check(vms_kernel *k, vms_err *err)
{
    bool pcid_seen[VMSI_MAX_PCID + 1] = {false};
    vms_status fst = check_fault_stats(&k->st, err);
    if (fst != VMS_OK)
        return fst;
    for (unsigned i = 0; i < k->nprocs; i++) {
        vmsi_proc *p = k->procs[i];
        if ((p->state == VMS_TASK_RUNNING) != (p->mm != NULL))
            return vmsi_err(err, VMS_ERR_INVAL, "pid %d: state and mm disagree", p->pid);
        if (!p->mm || mm_seen(k, i, p->mm)) /* a shared mm is checked once */
            continue;
        if (p->mm->users != mm_tasks(k, p->mm))
            return vmsi_err(err, VMS_ERR_INVAL, "pid %d: mm users %u, tasks %u", p->pid,
                            p->mm->users, mm_tasks(k, p->mm));
        vms_status st = vmsi_vma_check(p->mm, err);
        if (st != VMS_OK)
            return st;
        uint16_t pcid = p->mm->pcid;
        if (pcid && pcid_seen[pcid])
            return vmsi_err(err, VMS_ERR_INVAL, "pcid %u used twice", pcid);
        pcid_seen[pcid] = true;
    }
    vms_status st = vmsi_rmap_check(k, err);
    if (st == VMS_OK)
        st = vmsi_swap_check(k, err);
    if (st == VMS_OK && k->pol &&
        vms_frames_count(k->fr, VMSI_FRAME_LRU) !=
            k->pol->count(k->pol_state) + 511 * k->thp_lru) /* a THP counts 512 frames */
        st = vmsi_err(err, VMS_ERR_INVAL, "%llu frames flagged LRU, the policy tracks %zu",
                      (unsigned long long)vms_frames_count(k->fr, VMSI_FRAME_LRU),
                      k->pol->count(k->pol_state));
    if (st == VMS_OK)
        st = vms_dma_check(k, err);
    if (st == VMS_OK)
        st = vmsi_hugetlb_check(k, err);
    return st == VMS_OK ? vms_frames_check(k->fr, err) : st;
}
