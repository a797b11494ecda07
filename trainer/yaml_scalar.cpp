#include "trainer/yaml_scalar.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <regex>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace linspec::trainer {
namespace {

// The text of a plain (unquoted) scalar; quoted scalars carry the non-specific tag "!".
std::optional<std::string> plain_text(const YAML::Node& n) {
  if (!n.IsScalar() || n.Tag() == "!") return std::nullopt;
  return n.Scalar();
}

}  // namespace

std::string yaml_where(const std::string& source, const YAML::Node& n) {
  return n.Mark().line >= 0 ? source + ":" + std::to_string(n.Mark().line + 1) : source;
}

// Walks the tree without copying it (YAML::Clone drops the line marks error messages need); reset() rebinds the
// handle where operator= would write into the node it refers to.
YAML::Node yaml_lookup(const YAML::Node& root, const std::string& path) {
  YAML::Node cur;
  cur.reset(root);
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) {
    const YAML::Node& here = cur;
    if (!here.IsMap() || !here[part]) return YAML::Node(YAML::NodeType::Undefined);
    cur.reset(here[part]);
  }
  return cur;
}

void yaml_assign(YAML::Node root, const std::string& path, const YAML::Node& value) {
  std::vector<std::string> parts;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) parts.push_back(part);
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = chain.back()[parts[i]];
    if (!next.IsMap()) {
      chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next = chain.back()[parts[i]];
    }
    chain.push_back(next);
  }
  chain.back()[parts.back()] = value;
}

std::optional<long long> yaml_int(const YAML::Node& n) {
  static const std::regex decimal("[-+]?[0-9]+"), octal("0o[0-7]+"), hex("0x[0-9a-fA-F]+");
  const auto text = plain_text(n);
  if (!text) return std::nullopt;
  int base = 0;
  size_t skip = 0;
  if (std::regex_match(*text, decimal))
    base = 10;
  else if (std::regex_match(*text, octal))
    base = 8, skip = 2;
  else if (std::regex_match(*text, hex))
    base = 16, skip = 2;
  else
    return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text->c_str() + skip, &end, base);
  if (errno == ERANGE || *end != '\0') return std::nullopt;
  return v;
}

std::optional<double> yaml_float(const YAML::Node& n) {
  static const std::regex number("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (const auto i = yaml_int(n)) return static_cast<double>(*i);
  const auto text = plain_text(n);
  if (!text || !std::regex_match(*text, number)) return std::nullopt;
  const double v = std::strtod(text->c_str(), nullptr);
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<bool> yaml_bool(const YAML::Node& n) {
  const auto text = plain_text(n);
  if (!text) return std::nullopt;
  if (*text == "true" || *text == "True" || *text == "TRUE") return true;
  if (*text == "false" || *text == "False" || *text == "FALSE") return false;
  return std::nullopt;
}

namespace {
// Aliases share nodes, so a document can refer to itself (`a: &x [*x]`) or expand exponentially (each level a list of
// aliases to the one before: a "billion laughs"). Every walk over a config (this one, merging, cloning, validation)
// would then recurse without end or for hours; real configs are a few levels deep and a few hundred nodes.
constexpr int kMaxYamlDepth = 64;
constexpr int64_t kMaxYamlNodes = 100'000;  // counted as a walk sees them: an alias counts once per use

struct KeyWalk {
  const std::string& source;
  int64_t visited = 0;

  void check(const YAML::Node& node, int depth) {
    if (depth > kMaxYamlDepth)
      throw_input_error(yaml_where(source, node), ": nested more than ", kMaxYamlDepth,
                        " levels deep (or an alias that contains itself)");
    if (++visited > kMaxYamlNodes)
      throw_input_error(source, ": more than ", kMaxYamlNodes, " values once aliases are expanded");
    if (node.IsSequence())
      for (const auto& item : node) check(item, depth + 1);
    if (!node.IsMap()) return;
    std::map<std::string, YAML::Mark> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar())
        throw_input_error(yaml_where(source, it->first), ": a mapping key must be a plain name, not a ",
                          it->first.IsMap()        ? "mapping"
                          : it->first.IsSequence() ? "list"
                                                   : "null");
      const auto [at, fresh] = seen.emplace(it->first.Scalar(), it->first.Mark());
      if (!fresh)
        throw_input_error(yaml_where(source, it->first), ": key '", it->first.Scalar(), "' is given twice (lines ",
                          at->second.line + 1, " and ", it->first.Mark().line + 1, ")");
      check(it->second, depth + 1);
    }
  }
};
}  // namespace

void refuse_duplicate_and_complex_keys(const YAML::Node& node, const std::string& source) {
  KeyWalk{source}.check(node, 0);
}

}  // namespace linspec::trainer
