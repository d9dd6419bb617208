{
  "variables": {
    "libtorch%": "<!(node -p \"process.env.LIBTORCH || ''\")"
  },
  "targets": [
    {
      "target_name": "ztw_native",
      "sources": [
        "native/src/addon.cc",
        "native/src/args.cc",
        "native/src/allocator.cc",
        "native/src/handle.cc",
        "native/src/ops_create.cc",
        "native/src/ops_elementwise.cc",
        "native/src/ops_random.cc",
        "native/src/ops_nn.cc",
        "native/src/ops_reduce.cc",
        "native/src/ops_shape.cc",
        "native/src/ops_autograd.cc",
        "native/src/ops_exits.cc",
        "native/src/exit_book.cc",
        "native/src/kernels.cc",
        "native/src/dnnl_conv.cc",
        "native/src/head_conv.cc",
        "native/src/conv16.cc",
        "native/src/winograd.cc",
        "native/src/peak.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-function", "-fopenmp"],
      "ldflags": ["-fopenmp"],
      "conditions": [
        ["libtorch==''", {
          "include_dirs": ["/usr/include", "/usr/include/torch/csrc/api/include"],
          "defines": ["_GLIBCXX_USE_CXX11_ABI=1"],
          "libraries": ["-ltorch", "-ltorch_cpu", "-lc10", "-ldnnl"]
        }, {
          "include_dirs": ["<(libtorch)/include", "<(libtorch)/include/torch/csrc/api/include"],
          "libraries": ["-L<(libtorch)/lib", "-Wl,-rpath,<(libtorch)/lib", "-ltorch", "-ltorch_cpu", "-lc10", "-ldnnl"]
        }]
      ]
    }
  ]
}
