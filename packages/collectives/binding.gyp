{
  "targets": [
    {
      "target_name": "crucible_gloo",
      "sources": ["src/gloo_addon.cc"],
      "cflags_cc": ["-O2", "-std=c++17", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "include_dirs": ["/usr/include/hiredis"],
      "libraries": ["-L/usr/lib", "-lgloo", "-lhiredis", "-Wl,-rpath,/usr/lib"]
    }
  ]
}
