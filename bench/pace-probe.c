/*
 * What an idle spell costs the next piece of work on this machine, outside Node: the same
 * pure-ALU work and the same random reads over a 2 MB working set, timed back to back
 * ("continuous") and after a 1 ms sleep each ("paced", the harness's rhythm). If only the
 * memory-bound part slows down, the idle spell cost the caches, not the clock.
 *   gcc -O2 -o /tmp/pace-probe bench/pace-probe.c && /tmp/pace-probe 0 && /tmp/pace-probe 1
 * Results in BENCHMARKS.md ("Where the time goes", session 9).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static uint64_t xorshift(uint64_t x) {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

int main(int argc, char **argv) {
  const int paced = argc > 1 && atoi(argv[1]) != 0;
  const size_t size = (size_t)2 << 20;
  const int rounds = 2000;
  uint8_t *memory = malloc(size);
  if (memory == NULL) return 1;
  for (size_t i = 0; i < size; i++) memory[i] = (uint8_t)i;
  double alu_ns = 0, memory_ns = 0;
  uint64_t sink = 0;
  for (int round = 0; round < rounds; round++) {
    if (paced) usleep(1000);
    double t0 = now_ns();
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 20000; i++) x = xorshift(x);
    sink += x;
    double t1 = now_ns();
    x = (uint64_t)round + 1;
    for (int i = 0; i < 4000; i++) {
      x = xorshift(x);
      sink += memory[x % size];
    }
    double t2 = now_ns();
    alu_ns += t1 - t0;
    memory_ns += t2 - t1;
  }
  printf("%s: ALU %.1f us, 4,000 random reads over 2 MB %.1f us (%d)\n", paced ? "paced, 1 ms sleep" : "continuous",
         alu_ns / rounds / 1000, memory_ns / rounds / 1000, (int)(sink & 1));
  free(memory);
  return 0;
}
