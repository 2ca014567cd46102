/*
 * vgraw.c — the decoder of vgrecord's raw stream (vmsim/record.h, docs/RECORD.md):
 * chunks of 64-bit little-endian words from one or more processes in, native trace
 * events out.
 *
 *   chunk    magic "VGRCHNK1" | pid (u32) nwords (u32) | nwords words
 *   access   63..62 kind | 61..48 size (>= 1) | 47..0 address (sign-extended from bit 47)
 *   control  61..48 zero | 47..8 nargs | 7..0 type, then nargs argument words
 *
 * Chunks of different processes interleave; a record never spans chunks. Each process
 * keeps its own state: its current thread (TID records), whether its image started
 * (START) and whether an exec is pending, and the address ranges of Valgrind's preload
 * library, which are dropped. Invariant: every event is written with the tid of the last
 * TID (or START/CLONE) record of its process, so per-process order is kept exactly and
 * the merged order is the order chunks arrived in (a parent flushes before it forks, so
 * a child's records always follow its parent's earlier ones).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"
#include "vmsim/record.h"

/* ---- the raw stream ---------------------------------------------------------------- */

#define RAW_MAGIC     UINT64_C(0x314B4E4843524756) /* "VGRCHNK1" little-endian */
#define RAW_MAX_WORDS (UINT32_C(1) << 17)          /* the tool's chunk limit (1 MiB) */

enum raw_type {
    R_PAD = 0,
    R_TID = 1,      /* tid */
    R_START = 2,    /* pid, ppid */
    R_MAP = 3,      /* start, end, off, prot, flags, str */
    R_MMAP = 4,     /* addr, len, prot, flags, fd, off, ret, str */
    R_MUNMAP = 5,   /* addr, len, ret */
    R_MPROTECT = 6, /* addr, len, prot, ret */
    R_BRK = 7,      /* addr, ret */
    R_MADVISE = 8,  /* addr, len, advice, ret */
    R_CLONE = 9,    /* parent tid, child, clone flags */
    R_EXIT = 10,    /* status, group */
    R_KWRITE = 11,  /* va, len */
    R_EXEC = 12,    /* str */
    R_MREMAP = 13,  /* old, oldlen, newlen, flags, ret, prot, mapflags, off, str */
    R_END = 14,     /* (none) */
    R_EXECFAIL = 15 /* (none) */
};

/* Fixed arguments of each type (before the string, for the types that carry one). */
static const uint8_t raw_nfixed[16] = {0, 1, 2, 5, 7, 3, 4, 2, 4, 3, 2, 2, 0, 8, 0, 0};
static const bool raw_has_str[16] = {
    [R_MAP] = true, [R_MMAP] = true, [R_EXEC] = true, [R_MREMAP] = true};

/* MAP flags of the raw stream. */
#define RF_ANON   0x1u
#define RF_SHARED 0x2u
#define RF_STACK  0x4u
#define RF_HEAP   0x8u
#define RF_KPOP   0x10u

/* Linux's mmap(2) and clone(2) flag values (x86-64). */
#define L_MAP_SHARED          0x01u
#define L_MAP_TYPE            0x0fu
#define L_MAP_FIXED           0x10u
#define L_MAP_ANONYMOUS       0x20u
#define L_MAP_GROWSDOWN       0x100u
#define L_MAP_LOCKED          0x2000u
#define L_MAP_NORESERVE       0x4000u
#define L_MAP_POPULATE        0x8000u
#define L_MAP_HUGETLB         0x40000u
#define L_MAP_FIXED_NOREPLACE 0x100000u
#define L_CLONE_VM            0x100u
#define L_CLONE_VFORK         0x4000u
#define L_MREMAP_FIXED        0x2u

/* ---- state ------------------------------------------------------------------------- */

#define MAX_DROP 8 /* Valgrind preload ranges per process (one in practice) */

typedef struct vgproc {
    uint32_t pid, tid;  /* tid: the thread of the records that follow */
    bool started;       /* its image's START (or the CLONE that made it) was seen */
    bool exec_pending;  /* EXEC announced: the next START is the new image */
    uint32_t exec_path; /* the announced program's string id (0: none) */
    bool exited;        /* exit_group (or the last EXIT) written */
    bool ended;         /* the tool instance's END record seen */
    uint32_t nthreads;  /* live threads (for a last plain exit) */
    unsigned ndrop;
    uint64_t drop[MAX_DROP][2]; /* [start, end) */
} vgproc;

struct vms_vgraw {
    vms_trace_writer *w;
    const vms_allocator *a;
    vms_vgraw_opts o;
    vms_vgraw_stats st;
    vms_err fail; /* the first failure (status VMS_OK while none) */
    uint8_t hdr[16];
    size_t nhdr;     /* header bytes so far of the current chunk */
    uint64_t *words; /* the current chunk's payload, RAW_MAX_WORDS words */
    size_t nwords;   /* its length */
    size_t have;     /* payload bytes so far */
    uint32_t pid;    /* the current chunk's process */
    uint64_t off;    /* stream offset of the current chunk's payload */
    vgproc *procs;
    size_t nprocs, capprocs;
    uint32_t id_stack; /* interned "[stack]" (0: not yet) */
};

static vms_status fail(vms_vgraw *d, vms_err *err, vms_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record the decoder's first failure and copy it to err. */
static vms_status fail(vms_vgraw *d, vms_err *err, vms_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    d->fail.status = st;
    vsnprintf(d->fail.msg, sizeof d->fail.msg, fmt, ap);
    va_end(ap);
    if (err)
        *err = d->fail;
    return st;
}

vms_status vms_vgraw_create(vms_trace_writer *w, const vms_vgraw_opts *opts, const vms_allocator *a,
                            vms_vgraw **out, vms_err *err)
{
    *out = NULL;
    if (!a)
        a = vms_allocator_default();
    vms_vgraw *d = vmsi_zalloc(a, sizeof *d);
    if (!d)
        return vmsi_err(err, VMS_ERR_NOMEM, "vgrecord decoder: out of memory");
    d->w = w;
    d->a = a;
    if (opts)
        d->o = *opts;
    d->words = vmsi_alloc(a, RAW_MAX_WORDS * sizeof(uint64_t));
    if (!d->words) {
        vms_vgraw_destroy(d);
        return vmsi_err(err, VMS_ERR_NOMEM, "vgrecord decoder: out of memory (chunk buffer)");
    }
    *out = d;
    return VMS_OK;
}

void vms_vgraw_destroy(vms_vgraw *d)
{
    if (!d)
        return;
    vmsi_free(d->a, d->words, RAW_MAX_WORDS * sizeof(uint64_t));
    vmsi_free(d->a, d->procs, d->capprocs * sizeof *d->procs);
    vmsi_free(d->a, d, sizeof *d);
}

const vms_vgraw_stats *vms_vgraw_get_stats(const vms_vgraw *d)
{
    return &d->st;
}

/* The state of process pid, created when first seen; NULL when out of memory. */
static vgproc *proc_of(vms_vgraw *d, uint32_t pid)
{
    for (size_t i = d->nprocs; i-- > 0;)
        if (d->procs[i].pid == pid)
            return &d->procs[i];
    if (!vmsi_grow_to(d->a, (void **)&d->procs, &d->capprocs, d->nprocs + 1, sizeof *d->procs, 8))
        return NULL;
    vgproc *p = &d->procs[d->nprocs++];
    *p = (vgproc){.pid = pid, .tid = pid, .nthreads = 1};
    return p;
}

/* ---- writing events ---------------------------------------------------------------- */

static vms_status emit(vms_vgraw *d, vgproc *p, vms_trace_event *ev, vms_err *err)
{
    ev->tid = p->tid;
    vms_status st = vms_trace_writer_write(d->w, ev, err);
    if (st != VMS_OK) {
        d->fail = *(err ? err : &(vms_err){st, "trace writer failed"});
        return st;
    }
    d->st.events++;
    return VMS_OK;
}

/* Whether [va, va+len) lies inside one of p's dropped (Valgrind preload) ranges. */
static bool dropped(const vgproc *p, uint64_t va, uint64_t len)
{
    for (unsigned i = 0; i < p->ndrop; i++)
        if (va >= p->drop[i][0] && va - p->drop[i][0] + len <= p->drop[i][1] - p->drop[i][0])
            return true;
    return false;
}

static bool is_preload(const char *path)
{
    const char *b = strrchr(path, '/');
    return strncmp(b ? b + 1 : path, "vgpreload_", 10) == 0;
}

static uint64_t page_up(uint64_t x)
{
    return (x + VMS_PAGE_MASK) & ~VMS_PAGE_MASK;
}

/* Intern the string s (NULL or "": id 0). */
static vms_status intern(vms_vgraw *d, const char *s, uint32_t *id, vms_err *err)
{
    *id = 0;
    if (!s || !s[0])
        return VMS_OK;
    vms_status st = vms_trace_writer_intern(d->w, s, id, err);
    if (st != VMS_OK)
        d->fail = *(err ? err : &(vms_err){st, "trace writer failed"});
    return st;
}

/* Linux mmap flags -> VMS_TMAP_*. */
static uint8_t tmap_flags(uint64_t f)
{
    unsigned t = 0;
    unsigned type = (unsigned)f & L_MAP_TYPE;
    t |= (type == 0x1 || type == 0x3) ? VMS_TMAP_SHARED : 0; /* SHARED, SHARED_VALIDATE */
    t |= (f & L_MAP_ANONYMOUS) ? VMS_TMAP_ANON : 0;
    t |= (f & (L_MAP_FIXED | L_MAP_FIXED_NOREPLACE)) ? VMS_TMAP_FIXED : 0;
    t |= (f & (L_MAP_POPULATE | L_MAP_LOCKED)) ? VMS_TMAP_POPULATE : 0;
    t |= (f & L_MAP_HUGETLB) ? VMS_TMAP_HUGETLB : 0;
    t |= (f & L_MAP_NORESERVE) ? VMS_TMAP_NORESERVE : 0;
    t |= (f & L_MAP_GROWSDOWN) ? VMS_TMAP_GROWSDOWN : 0;
    return (uint8_t)t;
}

/* A MAP record: a segment of the image when it started. The heap page Valgrind maps at
 * the initial break is dropped (a native heap starts empty; brk creates it). */
static vms_status on_map(vms_vgraw *d, vgproc *p, const uint64_t *a, const char *path, vms_err *err)
{
    unsigned rf = (unsigned)a[4];
    if (rf & RF_HEAP)
        return VMS_OK;
    if (!d->o.keep_valgrind && path && is_preload(path)) {
        d->st.dropped++;
        return VMS_OK;
    }
    vms_trace_event ev = {.type = VMS_TEV_MAP};
    ev.map.start = a[0];
    ev.map.end = a[1];
    ev.map.off = a[2];
    ev.map.prot = (uint8_t)(a[3] & VMS_TPROT_ALL);
    unsigned f = 0;
    f |= (rf & RF_ANON) ? VMS_TMAP_ANON : 0;
    f |= (rf & RF_SHARED) ? VMS_TMAP_SHARED : 0;
    f |= (rf & RF_STACK) ? VMS_TMAP_GROWSDOWN : 0;
    f |= (rf & RF_KPOP) ? VMS_TMAP_POPULATE : 0;
    ev.map.flags = (uint8_t)f;
    vms_status st;
    if (rf & RF_STACK) {
        if (!d->id_stack && (st = intern(d, "[stack]", &d->id_stack, err)) != VMS_OK)
            return st;
        ev.map.path = d->id_stack;
    } else if ((st = intern(d, (rf & RF_ANON) ? NULL : path, &ev.map.path, err)) != VMS_OK) {
        return st;
    }
    return emit(d, p, &ev, err);
}

/* An mmap(2) and its result. Valgrind's preload library is remembered and dropped. */
static vms_status on_mmap(vms_vgraw *d, vgproc *p, const uint64_t *a, const char *path,
                          vms_err *err)
{
    uint64_t ret = a[6], len = a[1];
    bool failed = ret >= (uint64_t)-4095;
    if (!d->o.keep_valgrind && !failed) {
        if (path && is_preload(path) && !dropped(p, ret, len) && p->ndrop < MAX_DROP) {
            p->drop[p->ndrop][0] = ret;
            p->drop[p->ndrop][1] = ret + page_up(len);
            p->ndrop++;
        }
        if (dropped(p, ret, len)) {
            d->st.dropped++;
            return VMS_OK;
        }
    }
    vms_trace_event ev = {.type = VMS_TEV_MMAP};
    ev.mmap.addr = a[0];
    ev.mmap.len = len;
    ev.mmap.prot = (uint8_t)(a[2] & VMS_TPROT_ALL);
    ev.mmap.flags = tmap_flags(a[3]);
    ev.mmap.off = (ev.mmap.flags & VMS_TMAP_ANON) ? 0 : a[5];
    ev.mmap.ret = failed ? VMS_TRACE_MAP_FAILED : ret;
    vms_status st = intern(d, (ev.mmap.flags & VMS_TMAP_ANON) ? NULL : path, &ev.mmap.path, err);
    return st != VMS_OK ? st : emit(d, p, &ev, err);
}

/*
 * mremap(2) has no event of its own: it is written as what it leaves behind — the
 * pages past the old end mapped (growing in place), the tail unmapped (shrinking), or a
 * fresh mapping at the new address plus an unmap of the old one (moving). The moved
 * pages fault again on replay, where Linux moved their page-table entries.
 */
static vms_status on_mremap(vms_vgraw *d, vgproc *p, const uint64_t *a, const char *path,
                            vms_err *err)
{
    uint64_t old = a[0], oldlen = page_up(a[1]), newlen = page_up(a[2]), ret = a[4];
    if (ret >= (uint64_t)-4095)
        return VMS_OK;
    d->st.mremaps++;
    unsigned rf = (unsigned)a[6];
    vms_trace_event ev = {.type = VMS_TEV_MMAP};
    ev.mmap.prot = (uint8_t)(a[5] & VMS_TPROT_ALL);
    ev.mmap.flags = (uint8_t)(VMS_TMAP_FIXED | ((rf & RF_ANON) ? VMS_TMAP_ANON : 0) |
                              ((rf & RF_SHARED) ? VMS_TMAP_SHARED : 0));
    vms_status st = intern(d, (rf & RF_ANON) ? NULL : path, &ev.mmap.path, err);
    if (st != VMS_OK)
        return st;
    if (ret == old) {
        if (newlen == oldlen)
            return VMS_OK;
        if (newlen < oldlen) {
            vms_trace_event u = {.type = VMS_TEV_MUNMAP};
            u.munmap.addr = old + newlen;
            u.munmap.len = oldlen - newlen;
            return emit(d, p, &u, err);
        }
        ev.mmap.addr = ev.mmap.ret = old + oldlen;
        ev.mmap.len = newlen - oldlen;
        ev.mmap.off = (rf & RF_ANON) ? 0 : a[7] + oldlen;
        return emit(d, p, &ev, err);
    }
    ev.mmap.addr = ev.mmap.ret = ret;
    ev.mmap.len = newlen;
    ev.mmap.off = (rf & RF_ANON) ? 0 : a[7];
    if ((st = emit(d, p, &ev, err)) != VMS_OK)
        return st;
    if (oldlen == 0) /* old_size 0 duplicates a shared mapping: nothing goes away */
        return VMS_OK;
    vms_trace_event u = {.type = VMS_TEV_MUNMAP};
    u.munmap.addr = old;
    u.munmap.len = oldlen;
    return emit(d, p, &u, err);
}

/* munmap/mprotect/madvise that succeeded, unless inside the preload library. */
static vms_status on_range(vms_vgraw *d, vgproc *p, unsigned type, const uint64_t *a, vms_err *err)
{
    uint64_t ret = type == R_MUNMAP ? a[2] : a[3];
    if (ret != 0)
        return VMS_OK; /* failed: nothing changed */
    if (!d->o.keep_valgrind && dropped(p, a[0], a[1] ? a[1] : 1)) {
        d->st.dropped++;
        return VMS_OK;
    }
    vms_trace_event ev = {0};
    if (type == R_MUNMAP) {
        ev.type = VMS_TEV_MUNMAP;
        ev.munmap.addr = a[0];
        ev.munmap.len = a[1];
    } else if (type == R_MPROTECT) {
        ev.type = VMS_TEV_MPROTECT;
        ev.mprotect.addr = a[0];
        ev.mprotect.len = a[1];
        ev.mprotect.prot = (uint8_t)(a[2] & VMS_TPROT_ALL);
    } else {
        ev.type = VMS_TEV_MADVISE;
        ev.madvise.addr = a[0];
        ev.madvise.len = a[1];
        ev.madvise.advice = (uint32_t)a[2];
    }
    return emit(d, p, &ev, err);
}

/* START: a tool instance began in process p — the first image, or an exec'd one. An
 * exec is written as EXEC by the thread that called execve (a fresh address space; the
 * process's other threads end) before the new image's MAP records; that thread then
 * goes by the process id, as Linux's de_thread makes it. */
static vms_status on_start(vms_vgraw *d, vgproc *p, vms_err *err)
{
    if (!p->started) {
        p->started = true;
        d->st.processes++;
        return VMS_OK;
    }
    d->st.execs++;
    p->exec_pending = false;
    p->exited = false;
    p->ended = false;
    p->ndrop = 0;
    vms_trace_event ev = {.type = VMS_TEV_EXEC};
    ev.exec.path = p->exec_path;
    p->exec_path = 0;
    vms_status st = emit(d, p, &ev, err);
    p->tid = p->pid;
    p->nthreads = 1;
    return st;
}

/* CLONE: a thread (written by its creator) or a forked child (written by the child as
 * its first record, so it follows everything the parent wrote before forking). */
static vms_status on_clone(vms_vgraw *d, vgproc *p, const uint64_t *a, vms_err *err)
{
    vms_trace_event ev = {.type = VMS_TEV_CLONE};
    ev.clone.child = (uint32_t)a[1];
    bool vm = (a[2] & L_CLONE_VM) != 0, vfork = (a[2] & L_CLONE_VFORK) != 0;
    /* vfork (and clone(CLONE_VM|CLONE_VFORK), posix_spawn's): Valgrind runs it as a fork,
     * so the child writes its own records, but on Linux the child runs in its parent's
     * memory until it execs: VM|VFORK says so, and its exec is an EXEC, which ends the
     * sharing without unmapping the parent's memory. */
    ev.clone.flags = (uint8_t)(vfork ? VMS_TCLONE_VM | VMS_TCLONE_VFORK : vm ? VMS_TCLONE_VM : 0);
    if (ev.clone.flags == VMS_TCLONE_VM) {
        d->st.threads++;
        p->nthreads++;
        return emit(d, p, &ev, err);
    }
    /* p is the child: write the event as its parent's thread, then continue as the
     * child, which inherits its parent's dropped ranges (the preload is mapped there). */
    const vgproc *parent = NULL;
    for (size_t i = 0; i < d->nprocs && !parent; i++)
        if (&d->procs[i] != p && (d->procs[i].pid == a[0] || d->procs[i].tid == a[0]))
            parent = &d->procs[i];
    if (parent) {
        p->ndrop = parent->ndrop;
        memcpy(p->drop, parent->drop, sizeof p->drop);
    }
    p->started = true;
    d->st.processes++;
    p->tid = (uint32_t)a[0];
    vms_status st = emit(d, p, &ev, err);
    p->tid = p->pid;
    return st;
}

static vms_status on_exit_rec(vms_vgraw *d, vgproc *p, const uint64_t *a, vms_err *err)
{
    vms_trace_event ev = {.type = VMS_TEV_EXIT};
    ev.exit.status = (int32_t)(uint32_t)a[0];
    ev.exit.group = a[1] != 0;
    if (p->nthreads > 0)
        p->nthreads--;
    if (ev.exit.group || p->nthreads == 0)
        p->exited = true;
    return emit(d, p, &ev, err);
}

/* Copy the string argument at a (length word, then bytes) into buf (NUL-terminated). */
static bool get_str(const uint64_t *a, size_t nwords, char *buf, size_t bufsize)
{
    if (nwords < 1)
        return false;
    uint64_t len = a[0];
    if (len >= bufsize || (len + 7) / 8 != nwords - 1)
        return false;
    memcpy(buf, a + 1, (size_t)len);
    buf[len] = '\0';
    return true;
}

/* One control record of type t with n argument words at a. */
static vms_status on_control(vms_vgraw *d, vgproc *p, unsigned t, const uint64_t *a, size_t n,
                             uint64_t at, vms_err *err)
{
    char path[2056];
    if (t > R_EXECFAIL)
        return fail(d, err, VMS_ERR_PARSE,
                    "vgrecord stream: byte %" PRIu64 ": unknown record type %u", at, t);
    if (n < raw_nfixed[t] + (raw_has_str[t] ? 1u : 0u) || (!raw_has_str[t] && n != raw_nfixed[t]) ||
        (raw_has_str[t] && !get_str(a + raw_nfixed[t], n - raw_nfixed[t], path, sizeof path)))
        return fail(d, err, VMS_ERR_PARSE,
                    "vgrecord stream: byte %" PRIu64 ": record type %u with %zu argument words", at,
                    t, n);
    vms_trace_event ev = {0};
    switch ((enum raw_type)t) {
    case R_PAD:
        return VMS_OK;
    case R_TID:
        p->tid = (uint32_t)a[0];
        return VMS_OK;
    case R_START:
        return on_start(d, p, err);
    case R_MAP:
        return on_map(d, p, a, path, err);
    case R_MMAP:
        return on_mmap(d, p, a, path, err);
    case R_MUNMAP:
    case R_MPROTECT:
    case R_MADVISE:
        return on_range(d, p, t, a, err);
    case R_BRK:
        ev.type = VMS_TEV_BRK;
        ev.brk.addr = a[0];
        ev.brk.ret = a[1];
        return emit(d, p, &ev, err);
    case R_CLONE:
        return on_clone(d, p, a, err);
    case R_EXIT:
        return on_exit_rec(d, p, a, err);
    case R_KWRITE:
        if (!d->o.keep_valgrind && dropped(p, a[0], a[1])) {
            d->st.dropped++;
            return VMS_OK;
        }
        ev.type = VMS_TEV_KWRITE;
        ev.kwrite.va = a[0];
        ev.kwrite.len = a[1];
        d->st.kwrites++;
        d->st.kwrite_bytes += a[1];
        return emit(d, p, &ev, err);
    case R_EXEC:
        p->exec_pending = true;
        return intern(d, path, &p->exec_path, err);
    case R_EXECFAIL:
        p->exec_pending = false;
        return VMS_OK;
    case R_MREMAP:
        return on_mremap(d, p, a, path, err);
    case R_END:
        p->ended = true;
        return VMS_OK;
    }
    return VMS_OK;
}

/* Decode the current chunk's payload. */
static vms_status decode_chunk(vms_vgraw *d, vms_err *err)
{
    vgproc *p = proc_of(d, d->pid);
    if (!p)
        return fail(d, err, VMS_ERR_NOMEM, "vgrecord decoder: out of memory (process table)");
    d->st.chunks++;
    const uint64_t *w = d->words;
    size_t n = d->nwords;
    vms_trace_event ev = {.type = VMS_TEV_ACCESS};
    for (size_t i = 0; i < n;) {
        uint64_t x = w[i];
        unsigned size = (unsigned)(x >> 48) & 0x3fffu;
        if (size) {
            /* Sign-extend bit 47 (the tool keeps the low 48 bits of the address). */
            uint64_t va = (uint64_t)((int64_t)(x << 16) >> 16);
            i++;
            if (p->ndrop && !d->o.keep_valgrind && dropped(p, va, size)) {
                d->st.dropped++;
                continue;
            }
            ev.access.va = va;
            ev.access.size = size;
            ev.access.kind = (uint8_t)(x >> 62);
            vms_status st = emit(d, p, &ev, err);
            if (st != VMS_OK)
                return st;
            d->st.accesses++;
            continue;
        }
        uint64_t nargs = (x >> 8) & UINT64_C(0xffffffffff);
        uint64_t at = d->off + 8 * i;
        if ((x >> 62) != 0 || nargs > n - i - 1)
            return fail(d, err, VMS_ERR_PARSE,
                        "vgrecord stream: byte %" PRIu64 ": control word 0x%016" PRIx64
                        " does not fit its chunk",
                        at, x);
        vms_status st = on_control(d, p, (unsigned)(x & 0xff), w + i + 1, (size_t)nargs, at, err);
        if (st != VMS_OK)
            return st;
        i += 1 + (size_t)nargs;
    }
    return VMS_OK;
}

vms_status vms_vgraw_feed(vms_vgraw *d, const void *data, size_t len, vms_err *err)
{
    if (d->fail.status != VMS_OK) {
        if (err)
            *err = d->fail;
        return d->fail.status;
    }
    const uint8_t *b = data;
    while (len > 0) {
        if (d->nhdr < sizeof d->hdr) {
            size_t k = sizeof d->hdr - d->nhdr < len ? sizeof d->hdr - d->nhdr : len;
            memcpy(d->hdr + d->nhdr, b, k);
            d->nhdr += k;
            b += k;
            len -= k;
            d->st.bytes += k;
            if (d->nhdr < sizeof d->hdr)
                break;
            uint64_t magic, pw;
            memcpy(&magic, d->hdr, 8);
            memcpy(&pw, d->hdr + 8, 8);
            uint64_t at = d->st.bytes - sizeof d->hdr;
            if (magic != RAW_MAGIC)
                return fail(d, err, VMS_ERR_PARSE,
                            "vgrecord stream: byte %" PRIu64 ": expected a chunk header "
                            "(\"VGRCHNK1\"), got 0x%016" PRIx64,
                            at, magic);
            d->pid = (uint32_t)pw;
            d->nwords = (size_t)(pw >> 32);
            if (d->nwords > RAW_MAX_WORDS)
                return fail(d, err, VMS_ERR_PARSE,
                            "vgrecord stream: byte %" PRIu64 ": chunk of %zu words (at most %u)",
                            at, d->nwords, (unsigned)RAW_MAX_WORDS);
            d->have = 0;
            d->off = d->st.bytes;
        }
        size_t want = d->nwords * 8 - d->have, k = want < len ? want : len;
        memcpy((uint8_t *)d->words + d->have, b, k);
        d->have += k;
        b += k;
        len -= k;
        d->st.bytes += k;
        if (d->have == d->nwords * 8) {
            d->nhdr = 0;
            vms_status st = decode_chunk(d, err);
            if (st != VMS_OK)
                return st;
        }
    }
    return VMS_OK;
}

vms_status vms_vgraw_finish(vms_vgraw *d, vms_err *err)
{
    if (d->fail.status != VMS_OK) {
        if (err)
            *err = d->fail;
        return d->fail.status;
    }
    if (d->nhdr != 0)
        return fail(d, err, VMS_ERR_PARSE,
                    "vgrecord stream: byte %" PRIu64 ": the stream ends inside a chunk",
                    d->st.bytes);
    for (size_t i = 0; i < d->nprocs; i++) {
        vgproc *p = &d->procs[i];
        if (!p->ended)
            d->st.unclean++;
        if (p->exited)
            continue;
        d->st.unfinished++;
        vms_trace_event ev = {.type = VMS_TEV_EXIT};
        ev.exit.group = 1;
        p->exited = true;
        vms_status st = emit(d, p, &ev, err);
        if (st != VMS_OK)
            return st;
    }
    return VMS_OK;
}
