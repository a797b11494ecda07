// Corpus readers: a plain-text file is one document; a .jsonl file has one document per line, the
// string under "text". Errors name the file and line.
#pragma once
#include <string>
#include <vector>

namespace linspec {

struct Document {
  std::string text;
  std::string origin;  // "file" or "file:line"
};

std::vector<Document> read_corpus_file(const std::string& path);

}  // namespace linspec
