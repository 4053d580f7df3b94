{
  "targets": [
    {
      "target_name": "crucible_native",
      "sources": ["src/sgemm.c"],
      "cflags": ["-O3"],
      "libraries": ["-lopenblas"]
    }
  ]
}
