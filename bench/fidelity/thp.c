/*
 * thp.c — a small program for docs/FIDELITY.md (huge pages): maps 10 MiB of anonymous
 * memory, takes the 2 MiB-aligned 8 MiB inside it, asks for
 * transparent huge pages with madvise(MADV_HUGEPAGE), and writes one byte in every 4 KiB
 * page. With THP Linux takes one fault per 2 MiB page (4) instead of 2,048, when free
 * 2 MiB blocks exist. Pass "nohuge" to skip the madvise (2,048 faults).
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define REGION (8u << 20)
#define HUGE   (2u << 20)

int main(int argc, char **argv)
{
    char *p = mmap(NULL, REGION + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    volatile char *a = (char *)(((uintptr_t)p + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
    if (!(argc > 1 && strcmp(argv[1], "nohuge") == 0) &&
        madvise((void *)a, REGION, MADV_HUGEPAGE) != 0)
        return 2;
    for (size_t i = 0; i < REGION; i += 4096)
        a[i] = 1;
    return 0;
}
