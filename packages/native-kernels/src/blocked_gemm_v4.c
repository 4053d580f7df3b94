// blocked_gemm.c for x86-64-v4 (AVX-512): a 14 x 32 tile in 28 of the 32 zmm registers.
#if defined(__x86_64__)
#pragma GCC target("arch=x86-64-v4")
#pragma GCC optimize("unroll-loops")
#define CK_BLOCKED_GEMM ck_blocked_gemm_v4
#define VW 16
#define NV 2
#define MR 14
#define KC 384
#define MC 112
#include "blocked_gemm.c"
#endif
