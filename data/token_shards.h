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
  std::string source;  // "<file> (/train/tokens)" when loaded from a file, for messages
  std::vector<uint32_t> tokens;
  std::vector<uint64_t> doc_offsets;
};

struct TokenShards {
  TokenSplit train, val;
  uint64_t tokenizer_fingerprint = 0;
  std::vector<std::string> sources;
};

void save_token_shards(const std::string& path, const TokenShards& shards);
// InputError naming the file and dataset when it is not a token shard file, has an unknown format_version, stores
// tokens as anything but unsigned integers, declares more data than the file holds, or is inconsistent.
TokenShards load_token_shards(const std::string& path);
// The same from an HDF5 file already open (an hid_t; the fuzz target passes an in-memory file image). `path` names
// the file in errors.
TokenShards read_token_shards(int64_t file, const std::string& path);
// The same, then every token id checked against the model's vocabulary (check_token_ids).
TokenShards load_token_shards(const std::string& path, int64_t vocab_size);
// InputError naming the file, the dataset and the first token whose id is >= vocab_size: checked once at load so
// a shard of another tokenizer stops before training instead of inside the embedding op.
void check_token_ids(const TokenShards& shards, int64_t vocab_size, const std::string& path);

}  // namespace linspec
