{
  "targets": [
    {
      "target_name": "berth_sys",
      "sources": ["berth_sys.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
