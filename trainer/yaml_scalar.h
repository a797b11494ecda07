// Helpers for experiment YAML. Scalars read by the YAML 1.2 core schema, once: the value a key is validated with is the value
// it is assigned (yaml-cpp's as<T>() follows other rules: `010` is octal 8 there, `0x1p-7` a float, `yes` a bool).
//   int   [-+]?[0-9]+ (decimal, so 010 is 10) | 0o[0-7]+ | 0x[0-9a-fA-F]+, within 64 bits
//   float [-+]?(.[0-9]+ | [0-9]+(.[0-9]*)?)([eE][-+]?[0-9]+)?, plus any int; finite only (.inf/.nan are refused)
//   bool  true | True | TRUE | false | False | FALSE
// A quoted scalar ("2", '10') is a string, never a number or bool.
#pragma once
#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>

namespace linspec::trainer {

// "source:line" of a node (just "source" for nodes built in code, which have no line).
std::string yaml_where(const std::string& source, const YAML::Node& n);

// The node at a dotted path ("train.steps"), Undefined when absent; and writing one, creating mappings on the way.
YAML::Node yaml_lookup(const YAML::Node& root, const std::string& path);
void yaml_assign(YAML::Node root, const std::string& path, const YAML::Node& value);

std::optional<long long> yaml_int(const YAML::Node& n);
std::optional<double> yaml_float(const YAML::Node& n);
std::optional<bool> yaml_bool(const YAML::Node& n);

// InputError (file:line) for a mapping key that is not a plain scalar, or a key given twice in one mapping (both
// lines named), anywhere below `node`; also for a document nested more than 64 levels deep (an alias containing
// itself) or holding more than 100,000 values once aliases are expanded, so no later walk over it can run away.
void refuse_duplicate_and_complex_keys(const YAML::Node& node, const std::string& source);

}  // namespace linspec::trainer
