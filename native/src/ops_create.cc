// Creation, copying to and from typed arrays, and tensor metadata.
#include <dlfcn.h>
#include <cstring>
#include "allocator.h"
#include "handle.h"
#include "dnnl_conv.h"
#include "conv16.h"
#include "winograd.h"
#include "op.h"

using namespace ztw;

static size_t ElementBytes(at::ScalarType t) { return c10::elementSize(t); }

static at::TensorOptions Opts(at::ScalarType t) { return at::TensorOptions().dtype(t); }

// fromArray(typedArray, shape, dtype): copies, so JS may reuse its buffer.
ZTW_OP(fromArray) {
  if (!a.raw(0).IsTypedArray()) throw ArgError("argument 0: expected a typed array");
  auto ta = a.raw(0).As<Napi::TypedArray>();
  auto shape = a.ints(1);
  auto dtype = a.dtype(2);
  auto out = torch::empty(shape, Opts(dtype));
  size_t want = static_cast<size_t>(out.numel()) * ElementBytes(dtype);
  if (ta.ByteLength() != want)
    throw ArgError("typed array holds " + std::to_string(ta.ByteLength()) + " bytes, shape " +
                   c10::str(out.sizes()) + " of " + DtypeName(dtype) + " needs " + std::to_string(want));
  auto* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  if (want) std::memcpy(out.data_ptr(), src, want);
  return a.ret(out);
}

// toArray(t): a fresh typed array of the tensor's dtype (bool as Uint8Array).
ZTW_OP(toArray) { return a.retArray(a.t(0)); }

ZTW_OP(item) {
  auto& t = a.t(0);
  if (t.numel() != 1) throw ArgError("item() needs a one-element tensor, got " + std::to_string(t.numel()) + " elements");
  return a.ret(t.item().toDouble());
}

ZTW_OP(zeros) { return a.ret(torch::zeros(a.ints(0), Opts(a.dtype(1)))); }
ZTW_OP(ones) { return a.ret(torch::ones(a.ints(0), Opts(a.dtype(1)))); }
ZTW_OP(full) { return a.ret(torch::full(a.ints(0), a.scalar(1), Opts(a.dtype(2)))); }
ZTW_OP(empty) { return a.ret(torch::empty(a.ints(0), Opts(a.dtype(1)))); }
ZTW_OP(eye) { return a.ret(torch::eye(a.i64(0), Opts(a.dtype(1)))); }
ZTW_OP(arange) { return a.ret(torch::arange(a.scalar(0), a.scalar(1), a.scalar(2), Opts(a.dtype(3, at::kLong)))); }
ZTW_OP(linspace) { return a.ret(torch::linspace(a.scalar(0), a.scalar(1), a.i64(2), Opts(a.dtype(3)))); }
ZTW_OP(zerosLike) { return a.ret(torch::zeros_like(a.t(0))); }
ZTW_OP(onesLike) { return a.ret(torch::ones_like(a.t(0))); }
ZTW_OP(fullLike) { return a.ret(torch::full_like(a.t(0), a.scalar(1))); }

// Metadata.
ZTW_OP(shape) { return a.ret(a.t(0).sizes().vec()); }
ZTW_OP(strides) { return a.ret(a.t(0).strides().vec()); }
ZTW_OP(dtype) { return Napi::String::New(a.env(), DtypeName(a.t(0).scalar_type())); }
ZTW_OP(numel) { return a.ret(static_cast<double>(a.t(0).numel())); }
ZTW_OP(dim) { return a.ret(static_cast<double>(a.t(0).dim())); }
ZTW_OP(isContiguous) {
  auto fmt = a.has(1) ? a.str(1) : std::string("contiguous");
  if (fmt == "channels_last") return a.retBool(a.t(0).is_contiguous(at::MemoryFormat::ChannelsLast));
  if (fmt == "contiguous") return a.retBool(a.t(0).is_contiguous());
  throw ArgError("memory format must be 'contiguous' or 'channels_last', got '" + fmt + "'");
}
ZTW_OP(dataId) { return a.ret(static_cast<double>(reinterpret_cast<uintptr_t>(a.t(0).data_ptr()) % (1ull << 52))); }

// Runtime.
ZTW_OP(setNumThreads) { at::set_num_threads(static_cast<int>(a.i64(0))); return a.undefined(); }
ZTW_OP(getNumThreads) { return a.ret(static_cast<double>(at::get_num_threads())); }
// blasThreads(): OpenBLAS's thread count (addon.cc sets it to 1 at load), -1 under another BLAS.
ZTW_OP(blasThreads) {
  using GetThreads = int (*)();
  auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return a.ret(static_cast<double>(get ? get() : -1));
}
ZTW_OP(liveTensors) { return a.ret(static_cast<double>(HandleTable::Live())); }
ZTW_OP(manualSeed) { torch::manual_seed(static_cast<uint64_t>(a.i64(0))); return a.undefined(); }
ZTW_OP(configInfo) { return Napi::String::New(a.env(), at::show_config()); }
// The caching allocator's state: bytes cached for reuse and in live tensors.
ZTW_OP(allocatorStats) {
  auto st = GetCacheStats();
  return a.ret(std::vector<int64_t>{st.cachedBytes, st.liveBytes, st.hits, st.misses});
}
ZTW_OP(emptyCache) {
  EmptyCache();
  ClearDnnlConvCache();
  ClearConv16Cache();
  ClearWinogradCache();
  return a.undefined();
}
