/*
 * vmsim/rng.h — the seeded generator behind every random choice in vmsim (random TLB
 * and page replacement, ASLR, test workloads): xoshiro256** seeded through splitmix64
 * (Blackman & Vigna, "Scrambled linear pseudorandom number generators", 2021).
 * Same seed, same sequence, on every host: the basis of vmsim's determinism.
 */
#ifndef VMSIM_RNG_H
#define VMSIM_RNG_H

#include <stdint.h>

typedef struct vms_rng {
    uint64_t s[4];
} vms_rng;

/* Seed the generator; any seed (including 0) is valid. */
void vms_rng_seed(vms_rng *r, uint64_t seed);

/* Next 64 random bits. */
uint64_t vms_rng_next(vms_rng *r);

/* A uniform integer in [0, n); n must be >= 1. Unbiased (rejection sampling). */
uint64_t vms_rng_below(vms_rng *r, uint64_t n);

#endif
