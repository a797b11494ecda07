// Softmax attention: the parallel form is ops::causal_attention over the whole sequence; the incremental
// form appends to a preallocated KV cache and runs the same kernel with the new queries aligned to the end
// of the cached keys (causal_attention's S > T case).
#include <cstring>

#include "core/autograd.h"
#include "core/ops.h"
#include "attention/mixer.h"

namespace linspec {

KVCache::KVCache(int64_t batch, int64_t kv_heads, int64_t head_dim, int64_t max_len, DType dtype, Device device) {
  LINSPEC_CHECK(batch > 0 && kv_heads > 0 && head_dim > 0 && max_len > 0, "KVCache: bad dims");
  k_ = Tensor::zeros({batch, kv_heads, max_len, head_dim}, dtype, device);
  v_ = Tensor::zeros({batch, kv_heads, max_len, head_dim}, dtype, device);
}

std::unique_ptr<AttentionState> KVCache::clone() const {
  auto c = std::make_unique<KVCache>(*this);
  c->k_ = k_.clone();
  c->v_ = v_.clone();
  return c;
}

namespace {
// Copies src [B, H, T, d] into rows [at, at + T) of dst [B, H, cap, d].
void write_rows(const Tensor& dst, const Tensor& src_in, int64_t at) {
  Tensor src = src_in.to(dst.dtype()).contiguous();
  const int64_t bh = dst.size(0) * dst.size(1), cap = dst.size(2), d = dst.size(3), t = src.size(2);
  const size_t esz = dtype_size(dst.dtype()), row = static_cast<size_t>(t * d) * esz;
  auto* out = static_cast<char*>(dst.raw_data());
  const auto* in = static_cast<const char*>(src.raw_data());
  for (int64_t i = 0; i < bh; ++i)
    std::memcpy(out + static_cast<size_t>((i * cap + at) * d) * esz, in + static_cast<size_t>(i) * row, row);
}

// Rows [0, n) of a [B, H, cap, d] buffer, contiguous.
Tensor prefix_rows(const Tensor& buf, int64_t n) { return buf.slice(2, 0, n).contiguous(); }
}  // namespace

void KVCache::append(const Tensor& k, const Tensor& v) {
  LINSPEC_CHECK(k.dim() == 4 && k.shape() == v.shape(), "KVCache::append: k ", shape_str(k.shape()), " v ",
                shape_str(v.shape()));
  LINSPEC_CHECK(k.size(0) == k_.size(0) && k.size(1) == k_.size(1) && k.size(3) == k_.size(3),
                "KVCache::append: k ", shape_str(k.shape()), " does not fit a cache ", shape_str(k_.shape()));
  const int64_t t = k.size(2);
  if (length_ + t > capacity())
    throw_input_error("KV cache overflow: ", length_, " cached + ", t, " new tokens exceed its capacity of ",
                      capacity(), " (raise the maximum length)");
  write_rows(k_, k, length_);
  write_rows(v_, v, length_);
  length_ += t;
}

Tensor KVCache::keys() const { return prefix_rows(k_, length_); }
Tensor KVCache::values() const { return prefix_rows(v_, length_); }

void KVCache::truncate(int64_t length) {
  LINSPEC_CHECK(length >= 0 && length <= length_, "KVCache::truncate to ", length, " of ", length_);
  length_ = length;
}

Tensor SoftmaxAttention::forward(const Tensor& q, const Tensor& k, const Tensor& v) const {
  return ops::causal_attention(q, k, v);
}

std::unique_ptr<AttentionState> SoftmaxAttention::new_state(int64_t batch, int64_t max_len, DType dtype,
                                                            Device device) const {
  return std::make_unique<KVCache>(batch, shape_.kv_heads, shape_.head_dim, max_len, dtype, device);
}

Tensor SoftmaxAttention::step(AttentionState& state, const Tensor& q, const Tensor& k, const Tensor& v) const {
  auto* cache = dynamic_cast<KVCache*>(&state);
  LINSPEC_CHECK(cache != nullptr, "softmax attention stepped with a state that is not a KV cache");
  NoGradGuard no_grad;
  cache->append(k, v);
  // Query row t of the block sits at absolute position length - T + t and sees every cached key up to it.
  return ops::causal_attention(q, cache->keys(), cache->values());
}

}  // namespace linspec
