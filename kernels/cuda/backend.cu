// The CUDA backend: cuBLAS/cuBLASLt GEMMs and the kernels of kernels/cuda gathered into one table. Families not yet
// written for CUDA (the baseline kernel attentions, tree verification of the augmented attention) stay null, and
// the ops report them by name.
#include "kernels/cuda/backend.h"

namespace linspec::kernels {
namespace cuda {
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
void fill_aug_backward(Backend& b);
void fill_aug_decode(Backend& b);
void fill_aug_tree(Backend& b);
}  // namespace cuda

const Backend* cuda_backend() {
  static const Backend table = [] {
    Backend b;
    b.name = "cuda";
    for (auto fill : {cuda::fill_memory, cuda::fill_elementwise, cuda::fill_activation, cuda::fill_attention, cuda::fill_attention_tree,
                      cuda::fill_embedding, cuda::fill_loss, cuda::fill_matmul, cuda::fill_norm, cuda::fill_rope,
                      cuda::fill_adamw, cuda::fill_aug_parallel, cuda::fill_aug_backward, cuda::fill_aug_decode,
                      cuda::fill_aug_tree})
      fill(b);
    return b;
  }();
  return &table;
}

}  // namespace linspec::kernels
