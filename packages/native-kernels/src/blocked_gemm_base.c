// blocked_gemm.c for any x86-64 (SSE2) or other architecture: a 6 x 8 tile of 128-bit vectors.
#define CK_BLOCKED_GEMM ck_blocked_gemm_base
#define VW 4
#define NV 2
#define MR 6
#include "blocked_gemm.c"
