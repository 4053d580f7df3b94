// kernels.c for any x86-64 (SSE2) or other architecture.
#define CK_TABLE ck_baseline
#include "kernels.c"
