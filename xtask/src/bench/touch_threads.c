/* touch_threads THREADS PAGES: each thread maps PAGES fresh pages, touches each once and unmaps
   them; the bench runs it on every CPU at once to see whether demo keeps up. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
static long pages;
static void *touch(void *arg) {
    (void)arg;
    char *area = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    for (long i = 0; i < pages; i++) area[i * 4096] = 1;
    munmap(area, pages * 4096);
    return NULL;
}
int main(int argc, char **argv) {
    int n = atoi(argv[1]); pages = atol(argv[2]);
    pthread_t t[64];
    for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, touch, NULL);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    return 0;
}
