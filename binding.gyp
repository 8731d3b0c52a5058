{
  "targets": [
    {
      "target_name": "weir_io",
      "sources": ["native/weir_io.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
