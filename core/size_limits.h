// The one rule for sizes read from files (issue 15). A count, dimension or byte length taken from a file is checked
// before anything is allocated from it:
//   * against the bytes the file can hold, when the data it describes must be in the file (check_in_file);
//   * against a sane architecture limit otherwise (check_dim: layers, heads, head_dim, hidden, ffn, vocab, context);
//   * and the total a load allocates against the machine's memory (LoadBudget).
// Each failure is an InputError naming the file and the key, tensor or dataset (exit 2), never a bad_alloc.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace linspec::size_limits {

// Model dimensions with an architecture limit: generous for every released LLaMA-family model (Llama 3.1 405B:
// 126 layers, 128 heads, hidden 16384, ffn 53248; vocabularies up to 256k; contexts up to 10M), small enough that
// the per-layer and per-token tables built from them stay small.
enum class Dim { Layers, Heads, HeadDim, Hidden, Ffn, Vocab, Context };
int64_t max_of(Dim d);

// `value` when 1 <= value <= max_of(d); else InputError "<file>: key '<key>': <value> is outside 1..<max> (...)".
int64_t check_dim(int64_t value, Dim d, const std::string& file, const std::string& key);

// count * unit_bytes, when it fits in `available` bytes of the file (the data must be there); else InputError
// naming the file and `what`. Overflow of the product counts as not fitting.
uint64_t check_in_file(uint64_t count, uint64_t unit_bytes, uint64_t available, const std::string& file,
                       const std::string& what);

// Bytes of a [dims...] array of `elem_bytes` elements; InputError naming file and `what` when it overflows 64 bits.
uint64_t array_bytes(const std::vector<uint64_t>& dims, uint64_t elem_bytes, const std::string& file,
                     const std::string& what);

// What one process may allocate for a load: the machine's physical memory (sysconf), or LINSPEC_MEMORY_LIMIT_MB
// when set (containers, tests).
uint64_t memory_limit_bytes();

// Running total of what one load of `file` allocates. reserve() throws InputError naming the file and `what`
// before the allocation when the total would exceed memory_limit_bytes().
class LoadBudget {
 public:
  explicit LoadBudget(std::string file) : file_(std::move(file)), limit_(memory_limit_bytes()) {}
  void reserve(uint64_t bytes, const std::string& what);
  uint64_t total() const { return total_; }

 private:
  std::string file_;
  uint64_t limit_;
  uint64_t total_ = 0;
};

}  // namespace linspec::size_limits
