#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
/* maploop MIB PAUSE_MS: maps MIB MiB, writes every page, unmaps, pauses, and again, forever. */
int main(int argc, char **argv) {
    size_t bytes = (size_t)(argc > 1 ? atol(argv[1]) : 64) << 20;
    long pause_ms = argc > 2 ? atol(argv[2]) : 200;
    for (;;) {
        char *area = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (area == MAP_FAILED) return 1;
        for (size_t offset = 0; offset < bytes; offset += 4096) area[offset] = 1;
        munmap(area, bytes);
        usleep(pause_ms * 1000);
    }
}
