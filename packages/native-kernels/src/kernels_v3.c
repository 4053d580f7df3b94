// kernels.c for x86-64-v3 (AVX2, FMA).
#if defined(__x86_64__)
#pragma GCC target("arch=x86-64-v3")
#define CK_TABLE ck_x86_64_v3
#include "kernels.c"
#endif
