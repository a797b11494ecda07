// Token shards (HDF5), the output of `linspec prepare`:
//   /train/tokens, /val/tokens   uint32, chunked + shuffled-deflate
//   /train/doc_offsets, /val/doc_offsets   uint64 start of each document in its tokens array
//   root attrs: format="linspec-tokens", format_version, tokenizer_fingerprint (hex), sources (JSON list)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace linspec {

struct TokenSplit {
  std::vector<uint32_t> tokens;
  std::vector<uint64_t> doc_offsets;
};

struct TokenShards {
  TokenSplit train, val;
  uint64_t tokenizer_fingerprint = 0;
  std::vector<std::string> sources;
};

void save_token_shards(const std::string& path, const TokenShards& shards);
// InputError naming the file and dataset when it is not a token shard file or is inconsistent.
TokenShards load_token_shards(const std::string& path);

}  // namespace linspec
