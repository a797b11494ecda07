#include "core/size_limits.h"

#include <unistd.h>

#include <cstdlib>

#include "core/error.h"

namespace linspec::size_limits {

namespace {
struct DimRule {
  const char* what;
  int64_t max;
};

DimRule rule(Dim d) {
  switch (d) {
    case Dim::Layers:
      return {"layers", 1 << 10};
    case Dim::Heads:
      return {"attention heads", 1 << 10};
    case Dim::HeadDim:
      return {"head dimension", 1 << 10};
    case Dim::Hidden:
      return {"hidden size", 1 << 17};
    case Dim::Ffn:
      return {"feed-forward size", 1 << 20};
    case Dim::Vocab:
      return {"vocabulary size", 1 << 22};
    case Dim::Context:
      return {"context length", 1 << 24};
  }
  return {"size", 0};
}

std::string mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }
}  // namespace

int64_t max_of(Dim d) { return rule(d).max; }

int64_t check_dim(int64_t value, Dim d, const std::string& file, const std::string& key) {
  const DimRule r = rule(d);
  if (value < 1 || value > r.max)
    throw_input_error(file, ": key '", key, "': ", value, " is outside 1..", r.max, " (the ", r.what,
                      " limit of linspec)");
  return value;
}

uint64_t check_in_file(uint64_t count, uint64_t unit_bytes, uint64_t available, const std::string& file,
                       const std::string& what) {
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(count, unit_bytes, &bytes) || bytes > available)
    throw_input_error(file, ": ", what, ": ", count, " x ", unit_bytes, " bytes do not fit in the ", available,
                      " bytes the file holds there (truncated or forged size?)");
  return bytes;
}

uint64_t array_bytes(const std::vector<uint64_t>& dims, uint64_t elem_bytes, const std::string& file,
                     const std::string& what) {
  uint64_t bytes = elem_bytes;
  for (uint64_t d : dims)
    if (__builtin_mul_overflow(bytes, d, &bytes))
      throw_input_error(file, ": ", what, ": size overflows 64 bits (forged dimensions?)");
  return bytes;
}

uint64_t memory_limit_bytes() {
  if (const char* env = std::getenv("LINSPEC_MEMORY_LIMIT_MB"); env && *env) {
    char* end = nullptr;
    const unsigned long long mb = std::strtoull(env, &end, 10);
    if (end && *end == '\0' && mb > 0) return static_cast<uint64_t>(mb) << 20;
  }
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return UINT64_MAX;  // unknown: only the other checks apply
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

void LoadBudget::reserve(uint64_t bytes, const std::string& what) {
  uint64_t next = 0;
  if (__builtin_add_overflow(total_, bytes, &next) || next > limit_)
    throw_input_error(file_, ": ", what, ": loading it needs ", mib(bytes), " more (", mib(total_),
                      " already) but this machine has ", mib(limit_),
                      " of memory (LINSPEC_MEMORY_LIMIT_MB); forged sizes or too large a model");
  total_ = next;
}

}  // namespace linspec::size_limits
