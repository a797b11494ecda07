// Device memory for the CUDA backend: blocks from the caching allocator, copies, fills, strided gathers and format
// conversions, all on the stream every kernel uses (kernels/cuda/common.cuh).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstring>
#include <stdexcept>

#include "kernels/backend.h"
#include "kernels/cuda/common.cuh"

namespace linspec::kernels::cuda {
namespace {
using namespace detail;

void* alloc(size_t bytes) { return cached_malloc(bytes); }
void release(void* p) { cached_free(p); }
void memset_zero(void* p, size_t bytes) { check(cudaMemsetAsync(p, 0, bytes, stream()), "memset_zero"); }
void copy_from_host(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "copy to cuda");
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "copy from cuda");
}
void copy_within(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()), "copy within cuda");
}

template <typename E>
struct Fill {
  E* dst;
  E value;
  __device__ void operator()(int64_t i) const { dst[i] = value; }
};

template <typename E>
void fill_as(void* dst, const void* pattern, int64_t n) {
  E v;
  std::memcpy(&v, pattern, sizeof(E));
  for_each(n, Fill<E>{static_cast<E*>(dst), v}, "fill");
}

void fill(void* dst, const void* pattern, size_t es, int64_t n) {
  switch (es) {
    case 1: return fill_as<uint8_t>(dst, pattern, n);
    case 2: return fill_as<uint16_t>(dst, pattern, n);
    case 4: return fill_as<uint32_t>(dst, pattern, n);
    case 8: return fill_as<uint64_t>(dst, pattern, n);
  }
  throw std::invalid_argument("fill: element size must be 1, 2, 4 or 8 bytes");
}

constexpr int kMaxDims = 8;
struct Layout {
  int nd;
  int64_t shape[kMaxDims], strides[kMaxDims];
};

template <typename E>
struct Gather {
  const E* base;
  E* dst;
  Layout l;
  __device__ void operator()(int64_t i) const {
    int64_t rem = i, off = 0;
    for (int d = l.nd - 1; d >= 0; --d) {
      off += (rem % l.shape[d]) * l.strides[d];
      rem /= l.shape[d];
    }
    dst[i] = base[off];
  }
};

template <typename E>
void gather_as(const void* base, void* dst, const Layout& l, int64_t n) {
  for_each(n, Gather<E>{static_cast<const E*>(base), static_cast<E*>(dst), l}, "gather_strided");
}

void gather_strided(const void* base, void* dst, size_t es, int nd, const int64_t* shape, const int64_t* strides) {
  if (nd > kMaxDims) throw std::invalid_argument("gather_strided: more than 8 dims");
  Layout l{nd, {}, {}};
  int64_t n = 1;
  for (int d = 0; d < nd; ++d) {
    l.shape[d] = shape[d];
    l.strides[d] = strides[d];
    n *= shape[d];
  }
  switch (es) {
    case 1: return gather_as<uint8_t>(base, dst, l, n);
    case 2: return gather_as<uint16_t>(base, dst, l, n);
    case 4: return gather_as<uint32_t>(base, dst, l, n);
    case 8: return gather_as<uint64_t>(base, dst, l, n);
  }
  throw std::invalid_argument("gather_strided: element size must be 1, 2, 4 or 8 bytes");
}

void copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, int64_t rows) {
  if (rows <= 0 || width == 0) return;
  check(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width, static_cast<size_t>(rows), cudaMemcpyDeviceToDevice,
                          stream()),
        "copy_2d");
}

// Loads any supported format as double and stores it as another (f32 -> bf16 rounds to nearest even, as on the CPU).
__device__ double load_as_double(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::F64: return static_cast<const double*>(p)[i];
    case DType::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case DType::F16: return __half2float(static_cast<const __half*>(p)[i]);
    case DType::I32: return static_cast<const int32_t*>(p)[i];
    case DType::I64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DType::Q8: break;  // packed rows: Tensor::to refuses them
  }
  return 0;
}

__device__ void store_from_double(void* p, DType t, int64_t i, double v) {
  switch (t) {
    case DType::F32: static_cast<float*>(p)[i] = static_cast<float>(v); break;
    case DType::F64: static_cast<double*>(p)[i] = v; break;
    case DType::BF16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(static_cast<float>(v)); break;
    case DType::F16: static_cast<__half*>(p)[i] = __float2half_rn(static_cast<float>(v)); break;
    case DType::I32: static_cast<int32_t*>(p)[i] = static_cast<int32_t>(v); break;
    case DType::I64: static_cast<int64_t*>(p)[i] = static_cast<int64_t>(v); break;
    case DType::Q8: break;  // packed rows: Tensor::to refuses them
  }
}

struct Convert {
  const void* src;
  DType st;
  void* dst;
  DType dt;
  __device__ void operator()(int64_t i) const {
    // bf16/f16 from f64 must round once, from the f32 value (as the CPU does), hence the float step in store.
    store_from_double(dst, dt, i, load_as_double(src, st, i));
  }
};

void convert(const void* src, DType st, void* dst, DType dt, int64_t n) {
  if (st == DType::F32 && dt == DType::BF16)
    return f32_to_bf16(static_cast<const float*>(src), static_cast<uint16_t*>(dst), n);
  if (st == DType::BF16 && dt == DType::F32)
    return bf16_to_f32(static_cast<const uint16_t*>(src), static_cast<float*>(dst), n);
  for_each(n, Convert{src, st, dst, dt}, "convert");
}

void synchronize() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

void* alloc_pinned_host(size_t bytes) {
  void* p = nullptr;
  check(cudaHostAlloc(&p, std::max<size_t>(bytes, 1), cudaHostAllocDefault), "cudaHostAlloc");
  return p;
}
void free_pinned_host(void* p) { check(cudaFreeHost(p), "cudaFreeHost"); }
void copy_from_host_async(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()), "async copy to cuda");
}
}  // namespace

void fill_memory(Backend& b) {
  b.memory = {&alloc,   &release,        &memset_zero, &copy_from_host, &copy_to_host, &copy_within,
              &fill,    &gather_strided, &copy_2d,     &convert,        &synchronize,  &alloc_pinned_host,
              &free_pinned_host, &copy_from_host_async};
}

}  // namespace linspec::kernels::cuda
