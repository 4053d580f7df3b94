// blocked_gemm.c for x86-64-v3 (AVX2, FMA): a 6 x 16 tile in 12 of the 16 ymm registers.
#if defined(__x86_64__)
#pragma GCC target("arch=x86-64-v3")
#pragma GCC optimize("unroll-loops")
#define CK_BLOCKED_GEMM ck_blocked_gemm_v3
#define VW 8
#define NV 2
#define MR 6
#include "blocked_gemm.c"
#endif
