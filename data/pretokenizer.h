// Pre-tokenisation for byte-level BPE: a named set of regular expressions (PCRE2, UTF + Unicode
// properties, JIT when available) applied in sequence. Each stage splits every piece of the previous
// stage into the matches and the text between them, so pieces always cover the input exactly.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace linspec {

class PreTokenizer {
 public:
  // Known sets: "smollm" (also "starcoder": each \p{N} alone, then GPT-2), "gpt2" (also "default"
  // and ""), "llama3" (also "llama-bpe"), "qwen2". Throws InputError naming an unknown set.
  explicit PreTokenizer(std::string_view name);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  const std::string& name() const { return name_; }
  static bool is_known(std::string_view name);

  // Pieces of `text`, in order; views into `text`. Invalid UTF-8 never matches a pattern, so it
  // ends up in the pieces between matches and still round-trips.
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  struct Regex;
  std::string name_;
  std::vector<std::unique_ptr<Regex>> stages_;
};

}  // namespace linspec
