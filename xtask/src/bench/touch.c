#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
/* Steal time of CPU 0, where the bench pins the workload, in USER_HZ ticks. */
static long steal_ticks(void) {
    FILE *file = fopen("/proc/stat", "r");
    char line[512];
    long steal = -1;
    while (file && fgets(line, sizeof line, file)) {
        long v[8];
        if (strncmp(line, "cpu0 ", 5) == 0
            && sscanf(line + 5, "%ld %ld %ld %ld %ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3],
                      &v[4], &v[5], &v[6], &v[7]) == 8) {
            steal = v[7];
            break;
        }
    }
    if (file) fclose(file);
    return steal;
}
/* touch PAGES PASSES [serve]: maps PAGES pages and touches each once, untimed, so the guest
   holds them; then PASSES times drops them with MADV_DONTNEED (untimed) and touches every page
   again (timed). The same memory stays hot in the guest, out of the host's reach. With `serve`
   it says "ready" and runs the timed passes once per line on stdin, so every tracer the bench
   compares measures the same process and the same memory, attached by its pid.
   Prints its own ns per timed fault in its lower-quartile pass (passes that the host slowed
   fall above it, which makes runs comparable on a noisy VM), the KiB handed back to the host
   meanwhile, the steal ticks of CPU 0 (-1 when unknown), and the mean ns over all passes. */
static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
/* One timed run: PASSES passes over the region; prints its line. */
static int timed_run(char *area, long pages, long passes) {
    size_t bytes = (size_t)pages * 4096;
    double ns = 0, *per_pass = calloc(passes, sizeof *per_pass);
    if (!per_pass) return -1;
    long before = reported_kib(), steal_before = steal_ticks();
    for (long pass = 0; pass < passes; pass++) {
        struct timespec start, end;
        madvise(area, bytes, MADV_DONTNEED);
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (long i = 0; i < pages; i++) area[i * 4096] = 1;
        clock_gettime(CLOCK_MONOTONIC, &end);
        per_pass[pass] = ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / pages;
        ns += per_pass[pass];
    }
    long after = reported_kib(), steal_after = steal_ticks();
    qsort(per_pass, passes, sizeof *per_pass, by_value);
    printf("%.1f %ld %ld %.1f\n", per_pass[passes / 4], before < 0 || after < 0 ? -1 : after - before,
           steal_before < 0 || steal_after < 0 ? -1 : steal_after - steal_before, ns / passes);
    fflush(stdout);
    free(per_pass);
    return 0;
}
int main(int argc, char **argv) {
    long pages = argc > 1 ? atol(argv[1]) : 16384;
    long passes = argc > 2 ? atol(argv[2]) : 16;
    char *area = mmap(NULL, (size_t)pages * 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED || passes < 1) return 1;
    for (long i = 0; i < pages; i++) area[i * 4096] = 1;
    if (argc <= 3) return timed_run(area, pages, passes) ? 1 : 0;
    printf("ready\n");
    fflush(stdout);
    char line[16];
    while (fgets(line, sizeof line, stdin))
        if (timed_run(area, pages, passes)) return 1;
    return 0;
}
