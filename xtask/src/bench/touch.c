#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
/* Touches N fresh pages and prints its own nanoseconds per fault. */
int main(int argc, char **argv) {
    long pages = argc > 1 ? atol(argv[1]) : 262144;
    char *area = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < pages; i++) area[i * 4096] = 1;
    clock_gettime(CLOCK_MONOTONIC, &end);
    double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
    printf("%.1f\n", ns / pages);
    return 0;
}
