#include "data/corpus.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace linspec {

namespace {
}  // namespace

std::vector<Document> read_corpus_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error(path, ": cannot open the input file");
  std::vector<Document> docs;
  if (path.ends_with(".jsonl") || path.ends_with(".json")) {
    std::string line;
    int64_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw_input_error(path, ":", lineno, ": invalid JSON: ", e.what());
      }
      if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
        throw_input_error(path, ":", lineno, ": expected an object with a string key \"text\"");
      docs.push_back({j["text"].get<std::string>(), path + ":" + std::to_string(lineno)});
    }
  } else {
    std::stringstream ss;
    ss << in.rdbuf();
    docs.push_back({ss.str(), path});
  }
  return docs;
}

}  // namespace linspec
