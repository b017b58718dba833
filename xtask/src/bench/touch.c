#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
/* KiB of free memory this guest has handed back to its host (virtio free page reporting), or
   -1 where the kernel does not report it. A hand-back during the loop slows its faults several
   fold whatever traces them, so the bench repeats such runs. */
static long reported_kib(void) {
    FILE *file = fopen("/sys/module/page_reporting/parameters/reported_kib", "r");
    long kib = -1;
    if (file) {
        if (fscanf(file, "%ld", &kib) != 1) kib = -1;
        fclose(file);
    }
    return kib;
}
/* Touches N fresh pages and prints its own nanoseconds per fault, and the KiB handed back to
   the host meanwhile (-1 when unknown). */
int main(int argc, char **argv) {
    long pages = argc > 1 ? atol(argv[1]) : 262144;
    char *area = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    struct timespec start, end;
    long before = reported_kib();
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < pages; i++) area[i * 4096] = 1;
    clock_gettime(CLOCK_MONOTONIC, &end);
    long after = reported_kib();
    double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
    printf("%.1f %ld\n", ns / pages, before < 0 || after < 0 ? -1 : after - before);
    return 0;
}
