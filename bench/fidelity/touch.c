/*
 * touch.c — a small program for docs/FIDELITY.md: mallocs and touches memory (reads
 * first, then writes), maps and touches a file, forks a child that writes to half of the
 * parent's heap (copy-on-write), and waits for it. Page-fault counts are predictable:
 * each step says what Linux does.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define HEAP (8u << 20) /* 8 MiB: malloc uses mmap (above the 128 KiB threshold) */

int main(int argc, char **argv)
{
    volatile char *h = malloc(HEAP);
    unsigned long sum = 0;
    if (!h)
        return 1;
    for (size_t i = 0; i < HEAP; i += 4096) /* read first: zero page */
        sum += (unsigned char)h[i];
    for (size_t i = 0; i < HEAP; i += 4096) /* then write: copy of the zero page */
        h[i] = 1;
    int fd = open(argc > 1 ? argv[1] : "/usr/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY);
    if (fd >= 0) {
        size_t len = 1u << 20;
        volatile char *f = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f != MAP_FAILED) /* file read faults: fault-around maps 16 pages at a time */
            for (size_t i = 0; i < len; i += 4096)
                sum += (unsigned char)f[i];
        char buf[65536];
        if (lseek(fd, 0, SEEK_SET) == 0 && read(fd, buf, sizeof buf) > 0) /* kernel writes */
            sum += (unsigned char)buf[100];
        close(fd);
    }
    pid_t c = fork();
    if (c == 0) { /* the child writes half of the heap: COW copies */
        for (size_t i = 0; i < HEAP / 2; i += 4096)
            h[i] = 2;
        _exit(0);
    }
    waitpid(c, NULL, 0);
    for (size_t i = 0; i < HEAP; i += 4096) /* the parent writes again: COW reuse */
        h[i] = 3;
    return (int)(sum & 1);
}
