// Per-environment state: the tensor handle table and the JS error class.
#pragma once
#include <napi.h>
#include "handle.h"

namespace ztw {

struct AddonData {
  HandleTable handles;
  Napi::FunctionReference errorClass;  // set from TypeScript; plain Error until then
  static AddonData* Of(Napi::Env env) { return env.GetInstanceData<AddonData>(); }
};

}  // namespace ztw
