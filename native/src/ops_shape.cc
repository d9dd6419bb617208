// Joining, splitting, indexing and views.
#include "op.h"

using namespace ztw;

ZTW_OP(cat) { return a.ret(at::cat(a.tensors(0), a.i64(1))); }
ZTW_OP(stack) { return a.ret(at::stack(a.tensors(0), a.i64(1))); }
// split(t, size | sizes[], dim) -> tensor[]
ZTW_OP(split) {
  if (a.isArray(1)) return a.ret(at::split_with_sizes(a.t(0), a.ints(1), a.i64(2)));
  return a.ret(at::split(a.t(0), a.i64(1), a.i64(2)));
}
ZTW_OP(chunk) { return a.ret(at::chunk(a.t(0), a.i64(1), a.i64(2))); }
ZTW_OP(indexSelect) { return a.ret(at::index_select(a.t(0), a.i64(1), a.t(2))); }
ZTW_OP(gather) { return a.ret(at::gather(a.t(0), a.i64(1), a.t(2))); }
ZTW_OP(scatter) { return a.ret(at::scatter(a.t(0), a.i64(1), a.t(2), a.t(3))); }
ZTW_OP(maskedSelect) { return a.ret(at::masked_select(a.t(0), a.t(1))); }
ZTW_OP(nonzero) { return a.ret(at::nonzero(a.t(0))); }
ZTW_OP(narrow) { return a.ret(a.t(0).narrow(a.i64(1), a.i64(2), a.i64(3))); }
ZTW_OP(select) { return a.ret(a.t(0).select(a.i64(1), a.i64(2))); }
ZTW_OP(view) { return a.ret(a.t(0).view(a.ints(1))); }
ZTW_OP(reshape) { return a.ret(a.t(0).reshape(a.ints(1))); }
ZTW_OP(permute) { return a.ret(a.t(0).permute(a.ints(1))); }
ZTW_OP(transpose) { return a.ret(a.t(0).transpose(a.i64(1), a.i64(2))); }
ZTW_OP(flatten) { return a.ret(a.t(0).flatten(a.i64(1), a.i64(2))); }
ZTW_OP(squeeze) { return a.ret(a.has(1) ? a.t(0).squeeze(a.i64(1)) : a.t(0).squeeze()); }
ZTW_OP(unsqueeze) { return a.ret(a.t(0).unsqueeze(a.i64(1))); }
ZTW_OP(expand) { return a.ret(a.t(0).expand(a.ints(1))); }
ZTW_OP(repeat) { return a.ret(a.t(0).repeat(a.ints(1))); }
ZTW_OP(flip) { return a.ret(at::flip(a.t(0), a.ints(1))); }
ZTW_OP(clone) { return a.ret(a.t(0).clone()); }
// pad(t, pads (last dim first, as PyTorch's F.pad), value)
ZTW_OP(pad) { return a.ret(at::constant_pad_nd(a.t(0), a.ints(1), a.has(2) ? a.scalar(2) : at::Scalar(0))); }
// contiguous(t, 'contiguous' | 'channels_last')
ZTW_OP(contiguous) {
  auto fmt = a.has(1) ? a.str(1) : std::string("contiguous");
  if (fmt == "channels_last") return a.ret(a.t(0).contiguous(at::MemoryFormat::ChannelsLast));
  if (fmt == "contiguous") return a.ret(a.t(0).contiguous());
  throw ArgError("memory format must be 'contiguous' or 'channels_last', got '" + fmt + "'");
}
