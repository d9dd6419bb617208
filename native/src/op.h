// The op table. Each entry is one short function over Args; ZTW_OP registers
// it under its JS name, and the guard in addon.cc wraps every entry so that
// no C++ exception ever reaches N-API.
#pragma once
#include "args.h"
#include <vector>

namespace ztw {

using OpFn = Napi::Value (*)(const Args&);
struct OpEntry { const char* name; OpFn fn; };

inline std::vector<OpEntry>& OpTable() {
  static std::vector<OpEntry> table;
  return table;
}
struct OpRegistrar {
  OpRegistrar(const char* name, OpFn fn) { OpTable().push_back({name, fn}); }
};

// Tensor-or-number second operand.
inline bool IsScalarArg(const Args& a, size_t i) { return a.isNumber(i) || (a.has(i) && a.raw(i).IsBoolean()); }

}  // namespace ztw

#define ZTW_OP(name)                                                   \
  static Napi::Value op_##name(const ztw::Args& a);                    \
  static ztw::OpRegistrar reg_##name(#name, &op_##name);               \
  static Napi::Value op_##name(const ztw::Args& a)
