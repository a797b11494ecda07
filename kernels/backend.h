// A compute backend: the memory primitives and kernel tables that one kind of device supplies.
//
// Every kernel is declared once, as a function-pointer member of a family table in kernels/<family>.h. A backend
// folder (kernels/cpu, kernels/cuda) defines the functions and fills one Backend; core/backend.cpp maps each
// Device to its Backend, and the ops in core/ops look up the backend of their operands and call through it — so an
// op's shape checks, autograd and saved tensors are written once for all devices. A null entry means "not
// implemented on this backend"; ops report that by op and device name. How to add an op or a backend:
// docs/architecture.md.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "kernels/activation.h"
#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/baseline_attention.h"
#include "kernels/aug_attention.h"
#include "kernels/loss.h"
#include "kernels/matmul.h"
#include "kernels/norm.h"
#include "kernels/rope.h"

namespace linspec::kernels {

// Raw memory of the backend's device. "host" is ordinary CPU memory.
struct MemoryKernels {
  void* (*alloc)(size_t bytes);  // never null; throws std::bad_alloc (or a backend error) on failure
  void (*free)(void* p);
  void (*memset_zero)(void* p, size_t bytes);
  void (*copy_from_host)(void* dst, const void* host_src, size_t bytes);
  void (*copy_to_host)(void* host_dst, const void* src, size_t bytes);
  void (*copy_within)(void* dst, const void* src, size_t bytes);  // both on this device
  // dst[i] = pattern for i < n, elements of elem_size bytes (1, 2, 4 or 8).
  void (*fill)(void* dst, const void* pattern, size_t elem_size, int64_t n);
  // Gathers a strided view (nd <= 8 dims, strides in elements, base = its first element) into contiguous dst.
  void (*gather_strided)(const void* base, void* dst, size_t elem_size, int nd, const int64_t* shape,
                         const int64_t* strides);
  // rows × width bytes from src (rows src_pitch bytes apart) to dst (rows dst_pitch apart), both on this device:
  // a slice of one dim written into or read out of a larger tensor (concat, slice backward).
  void (*copy_2d)(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, int64_t rows);
  // Converts n contiguous elements between float formats (f32, f64, bf16, f16) or between integer formats.
  void (*convert)(const void* src, DType src_type, void* dst, DType dst_type, int64_t n);
  void (*synchronize)();  // waits for queued work (a no-op where kernels are synchronous)
  // Page-locked host memory for uploads that need not wait (data batches), and the upload queued behind the work
  // already issued: src must stay unchanged until the device has read it (synchronize, or later stream work that
  // waited for it). Null on backends whose memory is host memory (a plain copy is as good).
  void* (*alloc_pinned_host)(size_t bytes) = nullptr;
  void (*free_pinned_host)(void* p) = nullptr;
  void (*copy_from_host_async)(void* dst, const void* pinned_src, size_t bytes) = nullptr;
};

// The kernels every float op needs, for one element type T (float or double).
template <typename T>
struct FloatKernels {
  ElementwiseKernels<T> elementwise;
  ActivationKernels<T> activation;
  AttentionKernels<T> attention;
  EmbeddingKernels<T> embedding;
  LossKernels<T> loss;
  NormKernels<T> norm;
  RopeKernels<T> rope;
  AugKernels<T> aug;
  baseline_attn::BaselineAttentionKernels<T> baseline_attn;
};

struct Backend {
  const char* name = "";  // "cpu", "cuda": what error messages call the device
  bool host_addressable = false;  // its memory is ordinary host memory (MPI may read and write it directly)
  MemoryKernels memory{};
  MatmulKernels matmul{};
  AdamWKernels adamw{};
  FloatKernels<float> f32{};
  FloatKernels<double> f64{};

  template <typename T>
  const FloatKernels<T>& of() const {
    if constexpr (sizeof(T) == 4) return f32;
    else return f64;
  }
};

}  // namespace linspec::kernels
