#include "data/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdexcept>

#include "core/error.h"

namespace linspec {
namespace {

// Unicode White_Space, spelled out: PCRE2's \s also matches U+180E, which HF tokenizers (Oniguruma)
// and Rust's char::is_whitespace do not. Used inside brackets in place of \s.
constexpr std::string_view kWhiteSpace =
    R"(\t\n\x{0B}\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// Patterns with {WS} standing for the white-space class members.
constexpr std::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^{WS}\p{L}\p{N}]+|[{WS}]+(?![^{WS}])|[{WS}]+)";
constexpr std::string_view kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^{WS}\p{L}\p{N}]+[\r\n]*|[{WS}]*[\r\n]+|[{WS}]+(?![^{WS}])|[{WS}]+)";
constexpr std::string_view kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^{WS}\p{L}\p{N}]+[\r\n]*|[{WS}]*[\r\n]+|[{WS}]+(?![^{WS}])|[{WS}]+)";
constexpr std::string_view kEachNumber = R"(\p{N})";

std::string expand(std::string_view pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size();) {
    if (pattern.substr(i, 4) == "{WS}") {
      out += kWhiteSpace;
      i += 4;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

std::vector<std::string_view> patterns_for(std::string_view name) {
  if (name == "smollm" || name == "starcoder") return {kEachNumber, kGpt2};
  if (name == "gpt2" || name == "default" || name.empty()) return {kGpt2};
  if (name == "llama3" || name == "llama-bpe") return {kLlama3};
  if (name == "qwen2") return {kQwen2};
  return {};
}

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  bool jit = false;

  explicit Regex(const std::string& pattern) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                         PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(error, msg, sizeof msg);
      throw std::logic_error("pre-tokenizer regex does not compile at " + std::to_string(offset) + ": " +
                             reinterpret_cast<const char*>(msg));
    }
    jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;  // interpreter when JIT is unavailable
  }
  ~Regex() { pcre2_code_free(code); }

  // Appends the pieces of `text` to `out`: each match and each stretch between matches.
  void split(std::string_view text, pcre2_match_data* md, std::vector<std::string_view>& out) const {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t pos = 0, done = 0;
    while (pos < text.size()) {
      int rc = pcre2_match(code, subject, text.size(), pos, 0, md, nullptr);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  // pathological input: the interpreter has no such limit
        rc = pcre2_match(code, subject, text.size(), pos, PCRE2_NO_JIT, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) throw std::runtime_error("pre-tokenizer regex match failed (PCRE2 error " + std::to_string(rc) + ")");
      const PCRE2_SIZE* span = pcre2_get_ovector_pointer(md);
      const size_t start = span[0], end = span[1];
      if (end == start) {  // the patterns cannot match empty text; guard against looping anyway
        pos = start + 1;
        continue;
      }
      if (start > done) out.push_back(text.substr(done, start - done));
      out.push_back(text.substr(start, end - start));
      pos = done = end;
    }
    if (done < text.size()) out.push_back(text.substr(done));
  }
};

PreTokenizer::PreTokenizer(std::string_view name) : name_(name) {
  const auto patterns = patterns_for(name);
  if (patterns.empty())
    throw_input_error("unknown pre-tokenizer '", name, "' (known: smollm, starcoder, gpt2, default, llama3, llama-bpe, qwen2)");
  for (auto p : patterns) stages_.push_back(std::make_unique<Regex>(expand(p)));
}

PreTokenizer::~PreTokenizer() = default;

bool PreTokenizer::is_known(std::string_view name) { return !patterns_for(name).empty(); }

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> pieces{text}, next;
  if (text.empty()) return {};
  for (const auto& stage : stages_) {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(stage->code, nullptr);
    if (!md) throw std::bad_alloc();
    next.clear();
    next.reserve(pieces.size() * 2);
    try {
      for (auto piece : pieces) stage->split(piece, md, next);
    } catch (...) {
      pcre2_match_data_free(md);
      throw;
    }
    pcre2_match_data_free(md);
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace linspec
