{
  "targets": [
    {
      "target_name": "crucible_native",
      "sources": ["src/addon.c", "src/kernels_v4.c", "src/kernels_v3.c", "src/kernels_base.c"],
      "cflags": ["-O3", "-fopenmp", "-std=gnu11"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-lopenblas"]
    }
  ]
}
