// The CPU backend: every family's CPU kernels (oneDNN GEMMs, OpenMP loops) gathered into one table.
#include "kernels/cpu/backend.h"

namespace linspec::kernels {
namespace cpu {
// Each family's source fills its part of the table (defined next to its kernels).
void fill_memory(Backend& b);
void fill_elementwise(Backend& b);
void fill_activation(Backend& b);
void fill_attention(Backend& b);
void fill_attention_tree(Backend& b);
void fill_embedding(Backend& b);
void fill_loss(Backend& b);
void fill_matmul(Backend& b);
void fill_norm(Backend& b);
void fill_rope(Backend& b);
void fill_adamw(Backend& b);
void fill_aug_parallel(Backend& b);
void fill_aug_decode(Backend& b);
void fill_aug_tree(Backend& b);
}  // namespace cpu
namespace baseline_attn::cpu {
void fill_baseline_attention_features(Backend& b);
void fill_baseline_attention_hybrid(Backend& b);
void fill_baseline_attention_tree(Backend& b);
void fill_baseline_attention_yoso(Backend& b);
}  // namespace baseline_attn::cpu

const Backend& cpu_backend() {
  static const Backend table = [] {
    Backend b;
    b.name = "cpu";
    b.host_addressable = true;
    for (auto fill : {cpu::fill_memory, cpu::fill_elementwise, cpu::fill_activation, cpu::fill_attention, cpu::fill_attention_tree,
                      cpu::fill_embedding, cpu::fill_loss, cpu::fill_matmul, cpu::fill_norm, cpu::fill_rope,
                      cpu::fill_adamw, cpu::fill_aug_parallel, cpu::fill_aug_decode, cpu::fill_aug_tree,
                      baseline_attn::cpu::fill_baseline_attention_features, baseline_attn::cpu::fill_baseline_attention_hybrid,
                      baseline_attn::cpu::fill_baseline_attention_tree, baseline_attn::cpu::fill_baseline_attention_yoso})
      fill(b);
    return b;
  }();
  return table;
}

}  // namespace linspec::kernels
