{
  "variables": { "with_dnnl%": 0, "with_openblas%": 0 },
  "targets": [
    {
      "target_name": "crucible_native",
      "sources": [
        "src/addon.c", "src/gemm.c", "src/bf16_gemm.c", "src/blocked_gemm_v4.c", "src/blocked_gemm_v3.c", "src/blocked_gemm_base.c",
        "src/kernels_v4.c", "src/kernels_v3.c", "src/kernels_base.c"
      ],
      "cflags": ["-O3", "-fopenmp", "-std=gnu11", "-fno-math-errno"],
      "ldflags": ["-fopenmp"],
      "conditions": [
        ["with_openblas==1", { "defines": ["CRUCIBLE_OPENBLAS"], "libraries": ["-lopenblas"] }],
        ["with_dnnl==1", { "sources": ["src/bf16.c"], "defines": ["CRUCIBLE_DNNL"], "libraries": ["-ldnnl"] }]
      ]
    }
  ]
}
