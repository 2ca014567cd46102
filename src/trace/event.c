/*
 * event.c — naming, printing and validating trace events (vmsim/trace.h's event model).
 */
#include <stdio.h>

#include "trace/trace_impl.h"

const char *vms_trace_type_name(unsigned type)
{
    static const char *const names[VMS_TEV_NTYPES] = {"access",   "map",    "mmap",    "munmap",
                                                      "mprotect", "brk",    "madvise", "clone",
                                                      "exit",     "kwrite", "exec"};
    return type < VMS_TEV_NTYPES ? names[type] : "?";
}

const char *vms_trace_acc_name(unsigned kind)
{
    static const char *const names[4] = {"read", "write", "exec", "modify"};
    return kind < 4 ? names[kind] : "?";
}

/* "rwx" with '-' for clear bits. */
static void prot_str(unsigned prot, char out[4])
{
    out[0] = prot & VMS_TPROT_READ ? 'r' : '-';
    out[1] = prot & VMS_TPROT_WRITE ? 'w' : '-';
    out[2] = prot & VMS_TPROT_EXEC ? 'x' : '-';
    out[3] = '\0';
}

/* "private,anon,fixed,…" */
static void flags_str(unsigned flags, char *out, size_t len)
{
    static const char *const names[] = {"anon",    "fixed",     "populate",
                                        "hugetlb", "noreserve", "growsdown"};
    size_t o = (size_t)snprintf(out, len, "%s", flags & VMS_TMAP_SHARED ? "shared" : "private");
    for (unsigned i = 0; i < 6; i++)
        if (flags & (2u << i) && o < len)
            o += (size_t)snprintf(out + o, len - o, ",%s", names[i]);
}

typedef unsigned long long ull;

int vms_trace_event_format(const vms_trace_event *ev, char *buf, size_t len)
{
    char p[4], f[64];
    const char *t = vms_trace_type_name(ev->type);
    switch (ev->type) {
    case VMS_TEV_ACCESS:
        return snprintf(buf, len, "tid %u %s 0x%llx size %u", ev->tid,
                        vms_trace_acc_name(ev->access.kind), (ull)ev->access.va, ev->access.size);
    case VMS_TEV_MAP:
        prot_str(ev->map.prot, p);
        flags_str(ev->map.flags, f, sizeof f);
        return snprintf(buf, len, "tid %u map 0x%llx-0x%llx %s %s off=0x%llx path=%u", ev->tid,
                        (ull)ev->map.start, (ull)ev->map.end, p, f, (ull)ev->map.off, ev->map.path);
    case VMS_TEV_MMAP:
        prot_str(ev->mmap.prot, p);
        flags_str(ev->mmap.flags, f, sizeof f);
        return snprintf(buf, len,
                        "tid %u mmap addr=0x%llx len=0x%llx %s %s off=0x%llx path=%u -> 0x%llx",
                        ev->tid, (ull)ev->mmap.addr, (ull)ev->mmap.len, p, f, (ull)ev->mmap.off,
                        ev->mmap.path, (ull)ev->mmap.ret);
    case VMS_TEV_MPROTECT:
        prot_str(ev->mprotect.prot, p);
        return snprintf(buf, len, "tid %u mprotect addr=0x%llx len=0x%llx %s", ev->tid,
                        (ull)ev->mprotect.addr, (ull)ev->mprotect.len, p);
    case VMS_TEV_MUNMAP:
    case VMS_TEV_KWRITE: /* same shape: addr, len */
        return snprintf(buf, len, "tid %u %s addr=0x%llx len=0x%llx", ev->tid, t,
                        (ull)ev->munmap.addr, (ull)ev->munmap.len);
    case VMS_TEV_BRK:
        return snprintf(buf, len, "tid %u brk 0x%llx -> 0x%llx", ev->tid, (ull)ev->brk.addr,
                        (ull)ev->brk.ret);
    case VMS_TEV_MADVISE:
        return snprintf(buf, len, "tid %u madvise addr=0x%llx len=0x%llx advice=%u", ev->tid,
                        (ull)ev->madvise.addr, (ull)ev->madvise.len, ev->madvise.advice);
    case VMS_TEV_CLONE:
        return snprintf(buf, len, "tid %u clone child=%u%s%s", ev->tid, ev->clone.child,
                        ev->clone.flags & VMS_TCLONE_VM ? " vm" : "",
                        ev->clone.flags & VMS_TCLONE_VFORK ? " vfork" : "");
    case VMS_TEV_EXEC:
        return snprintf(buf, len, "tid %u exec path=%u", ev->tid, ev->exec.path);
    case VMS_TEV_EXIT:
        return snprintf(buf, len, "tid %u exit%s %d", ev->tid, ev->exit.group ? "_group" : "",
                        ev->exit.status);
    default:
        return snprintf(buf, len, "tid %u ? type %u", ev->tid, ev->type);
    }
}

/* Whether a path id is 0 or defined. */
static bool path_ok(uint32_t id, uint32_t npaths)
{
    return id <= npaths;
}

bool vmsi_event_valid(const vms_trace_event *ev, uint32_t npaths, char *why, size_t len)
{
    const char *bad = NULL;
    switch (ev->type) {
    case VMS_TEV_ACCESS:
        if (ev->access.kind > VMS_TACC_MODIFY)
            bad = "access kind above 3 (modify)";
        else if (ev->access.size == 0)
            bad = "access size 0";
        break;
    case VMS_TEV_MAP:
        if (ev->map.prot & ~VMS_TPROT_ALL || ev->map.flags & ~VMS_TMAP_ALL)
            bad = "unknown prot or flag bits in map";
        else if (ev->map.end < ev->map.start)
            bad = "map end below start";
        else if (!path_ok(ev->map.path, npaths))
            bad = "undefined path id in map";
        break;
    case VMS_TEV_MMAP:
        if (ev->mmap.prot & ~VMS_TPROT_ALL || ev->mmap.flags & ~VMS_TMAP_ALL)
            bad = "unknown prot or flag bits in mmap";
        else if (!path_ok(ev->mmap.path, npaths))
            bad = "undefined path id in mmap";
        break;
    case VMS_TEV_MPROTECT:
        if (ev->mprotect.prot & ~VMS_TPROT_ALL)
            bad = "unknown prot bits in mprotect";
        break;
    case VMS_TEV_CLONE:
        if (ev->clone.flags & ~VMS_TCLONE_ALL)
            bad = "unknown clone flag bits";
        break;
    case VMS_TEV_EXIT:
        if (ev->exit.group > 1)
            bad = "exit group flag above 1";
        break;
    case VMS_TEV_EXEC:
        if (!path_ok(ev->exec.path, npaths))
            bad = "undefined path id in exec";
        break;
    case VMS_TEV_MUNMAP:
    case VMS_TEV_BRK:
    case VMS_TEV_MADVISE:
    case VMS_TEV_KWRITE:
        break;
    default:
        bad = "unknown event type";
    }
    if (bad)
        snprintf(why, len, "%s", bad);
    return bad == NULL;
}
