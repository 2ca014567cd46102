/*
 * os/pmem.c — the kernel's own data moves on physical frames: zero fill, COW and
 * fork copies, swap and file I/O, device rings (kernel.h: "Data it moves on its own
 * behalf goes through vms_ram_* on physical frames").
 *
 * On bare metal each call is the vms_ram_* call on the machine's RAM, unchanged. On a
 * platform (vms_kernel_create_on, a guest kernel in a VM) physical frames are the
 * platform's (guest-physical): each 4 KiB piece is first translated by the platform's
 * frame hook to the host frame that holds it now (the hypervisor backs the page on
 * first touch, or swaps it back in), then the same vms_ram_* call runs on that host
 * frame. The hook is told why the kernel touches the frame (vms_kmem_use), which is how
 * a hypervisor counts double paging.
 */
#include "os/os_impl.h"

/* The host address of pa's byte (pa's frame translated for use), in *hpa. */
static vms_status xlate(vms_kernel *k, uint64_t pa, vms_kmem_use use, uint64_t *hpa)
{
    uint64_t hpfn = 0;
    vms_status st = k->plat.frame(k->plat.ud, pa >> VMS_PAGE_SHIFT, use, &hpfn);
    *hpa = hpfn << VMS_PAGE_SHIFT | (pa & VMS_PAGE_MASK);
    return st;
}

/* The length of the piece of [pa, pa+len) inside pa's frame. */
static size_t piece(uint64_t pa, size_t len)
{
    size_t room = (size_t)(VMS_PAGE_SIZE - (pa & VMS_PAGE_MASK));
    return room < len ? room : len;
}

/*
 * The one loop over [pa, pa+len), piece by piece on the host frames that hold it: into
 * out when out is set (a read, told `use`), else from in when in is set (a write), else
 * a fill with c. A write or fill of a whole frame tells the hook it is overwritten (the
 * old contents need not be brought back).
 */
static vms_status pieces(vms_kernel *k, uint64_t pa, uint8_t *out, const uint8_t *in, int c,
                         size_t len, vms_kmem_use use)
{
    while (len) {
        size_t n = piece(pa, len);
        vms_kmem_use u = out ? use : n == VMS_PAGE_SIZE ? VMS_KMEM_OVERWRITE : VMS_KMEM_WRITE;
        uint64_t hpa;
        vms_status st = xlate(k, pa, u, &hpa);
        if (st == VMS_OK)
            st = out  ? vms_ram_read(k->ram, hpa, out, n)
                 : in ? vms_ram_write(k->ram, hpa, in, n)
                      : vms_ram_fill(k->ram, hpa, c, n);
        if (st != VMS_OK)
            return st;
        out = out ? out + n : NULL;
        in = in ? in + n : NULL;
        pa += n;
        len -= n;
    }
    return VMS_OK;
}

vms_status vmsi_ram_fill(vms_kernel *k, uint64_t pa, int c, size_t len)
{
    if (!k->on_plat)
        return vms_ram_fill(k->ram, pa, c, len);
    return pieces(k, pa, NULL, NULL, c, len, VMS_KMEM_WRITE);
}

vms_status vmsi_ram_copy_frame(vms_kernel *k, uint64_t dst_pfn, uint64_t src_pfn)
{
    if (!k->on_plat)
        return vms_ram_copy_frame(k->ram, dst_pfn, src_pfn);
    if (dst_pfn == src_pfn)
        return VMS_OK;
    uint64_t src, dst;
    vms_status st = xlate(k, src_pfn << VMS_PAGE_SHIFT, VMS_KMEM_READ, &src);
    if (st == VMS_OK)
        st = xlate(k, dst_pfn << VMS_PAGE_SHIFT, VMS_KMEM_OVERWRITE, &dst);
    /* Translating the destination may have moved the source (a host that reclaims to
     * back it): translate the source again, which is then resident. */
    if (st == VMS_OK)
        st = xlate(k, src_pfn << VMS_PAGE_SHIFT, VMS_KMEM_READ, &src);
    if (st != VMS_OK)
        return st;
    return vms_ram_copy_frame(k->ram, dst >> VMS_PAGE_SHIFT, src >> VMS_PAGE_SHIFT);
}

vms_status vmsi_ram_read(vms_kernel *k, uint64_t pa, void *buf, size_t len)
{
    if (!k->on_plat)
        return vms_ram_read(k->ram, pa, buf, len);
    return pieces(k, pa, buf, NULL, 0, len, VMS_KMEM_READ);
}

vms_status vmsi_ram_read_io(vms_kernel *k, uint64_t pa, void *buf, size_t len)
{
    if (!k->on_plat)
        return vms_ram_read(k->ram, pa, buf, len);
    return pieces(k, pa, buf, NULL, 0, len, VMS_KMEM_IO_READ);
}

vms_status vmsi_ram_write(vms_kernel *k, uint64_t pa, const void *buf, size_t len)
{
    if (!k->on_plat)
        return vms_ram_write(k->ram, pa, buf, len);
    return pieces(k, pa, NULL, buf, 0, len, VMS_KMEM_WRITE);
}

uint8_t *vmsi_ram_frame(vms_kernel *k, uint64_t pfn)
{
    if (!k->on_plat)
        return vms_ram_frame(k->ram, pfn, true);
    uint64_t hpa;
    if (xlate(k, pfn << VMS_PAGE_SHIFT, VMS_KMEM_WRITE, &hpa) != VMS_OK)
        return NULL;
    return vms_ram_frame(k->ram, hpa >> VMS_PAGE_SHIFT, true);
}
