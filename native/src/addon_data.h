// Per-environment state: the handle constructor and the JS error class.
#pragma once
#include <napi.h>

namespace ztw {

struct AddonData {
  Napi::FunctionReference handleCtor;
  Napi::FunctionReference errorClass;  // set from TypeScript; plain Error until then
  static AddonData* Of(Napi::Env env) { return env.GetInstanceData<AddonData>(); }
};

}  // namespace ztw
