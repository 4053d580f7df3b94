{
  "variables": { "with_dnnl%": 0 },
  "targets": [
    {
      "target_name": "crucible_native",
      "sources": ["src/addon.c", "src/gemm.c", "src/kernels_v4.c", "src/kernels_v3.c", "src/kernels_base.c"],
      "cflags": ["-O3", "-fopenmp", "-std=gnu11"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-lopenblas"],
      "conditions": [
        ["with_dnnl==1", { "sources": ["src/bf16.c"], "defines": ["CRUCIBLE_DNNL"], "libraries": ["-ldnnl"] }]
      ]
    }
  ]
}
