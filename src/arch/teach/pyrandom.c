/*
 * teach/pyrandom.c — CPython's `random` module, the part the OSTEP homework scripts use,
 * so that `vmsim ostep -s N` draws exactly the numbers `random.seed(N)` draws.
 *
 * The generator is MT19937 (Matsumoto and Nishimura, "Mersenne Twister: a 623-
 * dimensionally equidistributed uniform pseudo-random number generator", ACM TOMACS
 * 8(1), 1998), as CPython's Modules/_randommodule.c runs it:
 *
 *  - seed(n) for an int n: the key is |n| cut into 32-bit words, least significant
 *    first (n = 0 gives the one-word key {0}), fed to init_by_array, which first runs
 *    init_genrand(19650218);
 *  - random() takes two 32-bit outputs a and b and returns
 *    ((a >> 5) * 2^26 + (b >> 6)) / 2^53, a double with 53 random bits.
 *
 * The four scripts (vm-paging, vm-smalltables, vm-segmentation, vm-mechanism) call only
 * random.seed(int) and random.random(), so that is all this file provides; tests compare
 * it with the real python3 where one is installed (tests/test_teach.c, tests/cli/ostep.sh).
 */
#include "arch/teach/teach.h"

#define MT_N       624
#define MT_M       397
#define MATRIX_A   UINT32_C(0x9908b0df)
#define UPPER_MASK UINT32_C(0x80000000)
#define LOWER_MASK UINT32_C(0x7fffffff)

static void init_genrand(vmsi_pyrandom *r, uint32_t s)
{
    r->mt[0] = s;
    for (unsigned i = 1; i < MT_N; i++)
        r->mt[i] = UINT32_C(1812433253) * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + i;
    r->mti = MT_N;
}

/* init_by_array of the MT19937 reference code, which CPython keeps unchanged. */
static void init_by_array(vmsi_pyrandom *r, const uint32_t *key, unsigned len)
{
    uint32_t *mt = r->mt;
    init_genrand(r, UINT32_C(19650218));
    unsigned i = 1, j = 0;
    for (unsigned k = MT_N > len ? MT_N : len; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * UINT32_C(1664525))) + key[j] + j;
        i++;
        j++;
        if (i >= MT_N) {
            mt[0] = mt[MT_N - 1];
            i = 1;
        }
        if (j >= len)
            j = 0;
    }
    for (unsigned k = MT_N - 1; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * UINT32_C(1566083941))) - i;
        i++;
        if (i >= MT_N) {
            mt[0] = mt[MT_N - 1];
            i = 1;
        }
    }
    mt[0] = UINT32_C(0x80000000); /* a non-zero initial state */
}

void vmsi_pyrandom_seed(vmsi_pyrandom *r, int64_t seed)
{
    /* |seed| without overflow for INT64_MIN. */
    uint64_t n = seed < 0 ? (uint64_t)0 - (uint64_t)seed : (uint64_t)seed;
    uint32_t key[2] = {(uint32_t)n, (uint32_t)(n >> 32)};
    init_by_array(r, key, key[1] ? 2u : 1u);
}

uint32_t vmsi_pyrandom_u32(vmsi_pyrandom *r)
{
    static const uint32_t mag01[2] = {0, MATRIX_A};
    uint32_t *mt = r->mt, y;
    if (r->mti >= MT_N) { /* generate the next 624 words at once */
        unsigned kk;
        for (kk = 0; kk < MT_N - MT_M; kk++) {
            y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
            mt[kk] = mt[kk + MT_M] ^ (y >> 1) ^ mag01[y & 1u];
        }
        for (; kk < MT_N - 1; kk++) {
            y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
            mt[kk] = mt[kk + MT_M - MT_N] ^ (y >> 1) ^ mag01[y & 1u];
        }
        y = (mt[MT_N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
        mt[MT_N - 1] = mt[MT_M - 1] ^ (y >> 1) ^ mag01[y & 1u];
        r->mti = 0;
    }
    y = mt[r->mti++];
    /* Tempering. */
    y ^= y >> 11;
    y ^= (y << 7) & UINT32_C(0x9d2c5680);
    y ^= (y << 15) & UINT32_C(0xefc60000);
    y ^= y >> 18;
    return y;
}

double vmsi_pyrandom_random(vmsi_pyrandom *r)
{
    uint32_t a = vmsi_pyrandom_u32(r) >> 5, b = vmsi_pyrandom_u32(r) >> 6;
    return ((double)a * 67108864.0 + (double)b) * (1.0 / 9007199254740992.0);
}
