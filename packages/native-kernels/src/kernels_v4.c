// kernels.c for x86-64-v4 (AVX-512 F/BW/CD/DQ/VL).
#if defined(__x86_64__)
#pragma GCC target("arch=x86-64-v4")
#define CK_TABLE ck_x86_64_v4
#include "kernels.c"
#endif
