/*
 * shm.c — shared memory objects (Linux mm/shmem.c, POSIX shm_open over /dev/shm).
 *
 * Named shared memory is a shmem object registered under "/dev/shm/NAME": unrelated
 * processes that open the same name and map it MAP_SHARED map the same page-cache
 * frames. Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS) is an unnamed shmem object
 * created by mmap (mm.c) and shared with fork children through the copied VMA. Both use
 * the page cache of pagecache.c: pages are zero-filled frames (FILE|SWAPBACKED, counted
 * as Shmem in meminfo) created on first touch and never written to a file. The size is
 * fixed at creation (no ftruncate); a touch beyond it is SIGBUS.
 * Invariant: a registered (not unlinked) name holds one reference on its object.
 */
#include <stdio.h>

#include "os/os_impl.h"
#include "os/reclaim/reclaim_impl.h"

static vms_file *shm_lookup(vms_kernel *k, const char *path)
{
    for (vms_file *f = k->files; f; f = f->next)
        if (f->kind == VMSI_FILE_SHM && !f->unlinked && strcmp(f->path, path) == 0)
            return f;
    return NULL;
}

static vms_status shm_path(const char *name, char *out, size_t n, vms_err *err)
{
    if (!name || !*name || strchr(name, '/') || strlen(name) + 10 > n)
        return vmsi_err(err, VMS_ERR_INVAL, "shm: bad name '%s'", name ? name : "(null)");
    snprintf(out, n, "/dev/shm/%s", name);
    return VMS_OK;
}

vms_status vms_shm_open(vms_kernel *k, const char *name, uint64_t len, vms_file **out, vms_err *err)
{
    char path[256];
    *out = NULL;
    vms_status st = shm_path(name, path, sizeof path, err);
    if (st != VMS_OK)
        return st;
    vms_file *f = shm_lookup(k, path);
    if (f) {
        vmsi_file_get(f);
        *out = f;
        return VMS_OK;
    }
    if (len == 0)
        return vmsi_err(err, VMS_ERR_INVAL, "shm %s: size 0", name);
    st = vmsi_file_new(k, VMSI_FILE_SHM, (len + VMS_PAGE_MASK) & ~VMS_PAGE_MASK, &f, err);
    if (st != VMS_OK)
        return st;
    size_t n = strlen(path) + 1;
    f->path = vmsi_alloc(k->a, n);
    if (!f->path) {
        vmsi_file_put(k, f);
        return vmsi_err(err, VMS_ERR_NOMEM, "shm: out of host memory");
    }
    memcpy(f->path, path, n);
    vmsi_file_get(f); /* the name's reference */
    *out = f;
    return VMS_OK;
}

vms_status vms_shm_unlink(vms_kernel *k, const char *name, vms_err *err)
{
    char path[256];
    vms_status st = shm_path(name, path, sizeof path, err);
    if (st != VMS_OK)
        return st;
    vms_file *f = shm_lookup(k, path);
    if (!f)
        return vmsi_err(err, VMS_ERR_NOTFOUND, "shm: no object named %s", name);
    f->unlinked = true;
    vmsi_file_put(k, f);
    return VMS_OK;
}
