#include "trainer/config.h"

#include <cmath>
#include <algorithm>
#include <functional>
#include <map>
#include <sstream>

#include "attention/registry.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/option_parse.h"
#include "trainer/yaml_scalar.h"

namespace linspec::trainer {
namespace {

enum class Kind { Int, Float, Bool, String, IntList, StringList };

// A key's value as validated, which is also the value assigned (trainer/yaml_scalar.h).
struct Value {
  long long integer = 0;
  double number = 0;
  bool flag = false;
  std::string text;
  std::vector<long long> integers;
  std::vector<std::string> texts;
};
void set(int& field, const Value& v) { field = static_cast<int>(v.integer); }
void set(double& field, const Value& v) { field = v.number; }
void set(bool& field, const Value& v) { field = v.flag; }
void set(std::string& field, const Value& v) { field = v.text; }
void set(std::vector<int>& field, const Value& v) { field.assign(v.integers.begin(), v.integers.end()); }
void set(std::vector<std::string>& field, const Value& v) { field = v.texts; }

struct Key {
  std::string path;
  Kind kind;
  double lo = -INFINITY, hi = INFINITY;
  std::vector<std::string> choices;  // for String / StringList items
  std::function<void(ExperimentConfig&, const Value&)> assign;
  std::function<YAML::Node(const ExperimentConfig&)> get;  // the default is get(ExperimentConfig{}) (config.h)
  bool required = false;  // must be given (no default)
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Int: return "an integer";
    case Kind::Float: return "a number";
    case Kind::Bool: return "true or false";
    case Kind::String: return "a string";
    case Kind::IntList: return "a list of integers";
    case Kind::StringList: return "a list of strings";
  }
  return "?";
}

// Numbers in their shortest exact text ("2e-05", not yaml-cpp's 17 digits); everything else as it is.
YAML::Node to_node(double x) { return YAML::Node(option_number_text(x)); }
template <typename T>
YAML::Node to_node(const T& x) {
  return YAML::Node(x);
}
// A flow-style sequence, so an empty list prints as "[]" the way the file would write it.
template <typename T>
YAML::Node to_node(const std::vector<T>& xs) {
  YAML::Node n = YAML::Load("[]");
  for (const T& x : xs) n.push_back(x);
  return n;
}

#define FIELD(expr)                                        \
  [](ExperimentConfig& c, const Value& v) { set(c.expr, v); }, \
      [](const ExperimentConfig& c) { return to_node(c.expr); }

// Every key under model.attention but `preset` is an option of the chosen preset, checked by the preset table.
constexpr const char* kAttentionOptionPrefix = "model.attention.";
bool is_attention_option_path(const std::string& path) {
  return path.rfind(kAttentionOptionPrefix, 0) == 0 && path != "model.attention.preset" &&
         path.find('.', std::string(kAttentionOptionPrefix).size()) == std::string::npos;
}

const std::vector<Key>& schema() {
  static const std::vector<Key> keys = {
      {"model.init", Kind::String, -INFINITY, INFINITY, {}, FIELD(model.init), true},
      {"model.teacher", Kind::String, -INFINITY, INFINITY, {}, FIELD(model.teacher)},
      {"model.attention.preset", Kind::String, -INFINITY, INFINITY, {}, FIELD(model.attention.preset)},
      {"model.keep_softmax_layers", Kind::IntList, 0, 1 << 16, {}, FIELD(model.keep_softmax_layers)},
      {"data.path", Kind::String, -INFINITY, INFINITY, {}, FIELD(data.path), true},
      {"data.seq_len", Kind::Int, 2, 1 << 22, {}, FIELD(data.seq_len)},
      {"train.steps", Kind::Int, 1, 1e9, {}, FIELD(train.steps)},
      {"train.micro_batch", Kind::Int, 1, 1 << 16, {}, FIELD(train.micro_batch)},
      {"train.grad_accum", Kind::Int, 1, 1 << 16, {}, FIELD(train.grad_accum)},
      {"train.lr", Kind::Float, 0, 10, {}, FIELD(train.lr)},
      {"train.schedule", Kind::String, -INFINITY, INFINITY,
       {"constant_with_warmup", "cosine", "linear", "constant"}, FIELD(train.schedule)},
      {"train.warmup_steps", Kind::Int, 0, 1e9, {}, FIELD(train.warmup_steps)},
      {"train.min_lr_ratio", Kind::Float, 0, 1, {}, FIELD(train.min_lr_ratio)},
      {"train.weight_decay", Kind::Float, 0, 10, {}, FIELD(train.weight_decay)},
      {"train.clip_grad_norm", Kind::Float, 0, 1e9, {}, FIELD(train.clip_grad_norm)},
      {"train.precision", Kind::String, -INFINITY, INFINITY, {"fp32", "bf16", "auto"}, FIELD(train.precision)},
      {"train.device", Kind::String, -INFINITY, INFINITY, {"auto", "cpu", "cuda"},
       FIELD(train.device)},
      {"train.recompute", Kind::Bool, -INFINITY, INFINITY, {}, FIELD(train.recompute)},
      {"train.seed", Kind::Int, 0, 2147483647.0, {}, FIELD(train.seed)},
      {"train.threads", Kind::Int, 0, 4096, {}, FIELD(train.threads)},
      {"objectives.ce", Kind::Float, 0, 1e6, {}, FIELD(objectives.ce)},
      {"objectives.attention_transfer", Kind::Float, 0, 1e6, {}, FIELD(objectives.attention_transfer)},
      {"objectives.kd.weight", Kind::Float, 0, 1e6, {}, FIELD(objectives.kd_weight)},
      {"objectives.kd.temperature", Kind::Float, 1e-3, 1e3, {}, FIELD(objectives.kd_temperature)},
      {"objectives.draft_heads.count", Kind::Int, 0, 64, {}, FIELD(objectives.draft_heads_count)},
      {"objectives.draft_heads.weight", Kind::Float, 0, 1e6, {}, FIELD(objectives.draft_heads_weight)},
      {"objectives.draft_heads.decay", Kind::Float, 0, 1, {}, FIELD(objectives.draft_heads_decay)},
      {"objectives.draft_heads.target", Kind::String, -INFINITY, INFINITY, {"self", "data"},
       FIELD(objectives.draft_heads_target)},
      {"objectives.draft_heads.shared_projection", Kind::Bool, -INFINITY, INFINITY, {},
       FIELD(objectives.draft_heads_shared_projection)},
      {"objectives.draft_model.layers", Kind::Int, 0, 1024, {}, FIELD(objectives.draft_model_layers)},
      {"objectives.draft_model.init", Kind::String, -INFINITY, INFINITY, {},
       FIELD(objectives.draft_model_init)},
      {"objectives.draft_model.divergence", Kind::String, -INFINITY, INFINITY, {"fkl", "rkl", "jsd", "tvd"},
       FIELD(objectives.draft_model_divergence)},
      {"objectives.draft_model.on_policy", Kind::Bool, -INFINITY, INFINITY, {},
       FIELD(objectives.draft_model_on_policy)},
      {"objectives.draft_model.weight", Kind::Float, 0, 1e6, {}, FIELD(objectives.draft_model_weight)},
      {"objectives.eagle.weight", Kind::Float, 0, 1e6, {}, FIELD(objectives.eagle_weight)},
      {"objectives.eagle.regression", Kind::Float, 0, 1e6, {}, FIELD(objectives.eagle_regression)},
      {"objectives.eagle.vocab", Kind::Int, 0, 16777216, {}, FIELD(objectives.eagle_vocab)},
      {"objectives.eagle.unroll", Kind::Int, 1, 8, {}, FIELD(objectives.eagle_unroll)},
      {"objectives.eagle.init", Kind::String, -INFINITY, INFINITY, {}, FIELD(objectives.eagle_init)},
      {"lora.rank", Kind::Int, 0, 65536, {}, FIELD(lora.rank)},
      {"lora.alpha", Kind::Float, 0, 1e6, {}, FIELD(lora.alpha)},
      {"lora.dropout", Kind::Float, 0, 0.999, {}, FIELD(lora.dropout)},
      {"lora.targets", Kind::StringList, -INFINITY, INFINITY, {"q", "k", "v", "o", "gate", "up", "down"},
       FIELD(lora.targets)},
      {"trainable", Kind::StringList, -INFINITY, INFINITY,
       {"lora", "norms", "embeddings", "attention_new", "all", "heads", "draft", "eagle", "lm_head"},
       FIELD(trainable)},
      {"distributed.backend", Kind::String, -INFINITY, INFINITY, {"auto", "mpi", "nccl"},
       FIELD(distributed.backend)},
      {"distributed.zero", Kind::Int, 0, 1, {}, FIELD(distributed.zero)},
      {"checkpoint.dir", Kind::String, -INFINITY, INFINITY, {}, FIELD(checkpoint.dir)},
      {"checkpoint.every", Kind::Int, 1, 1e9, {}, FIELD(checkpoint.every)},
      {"checkpoint.keep_last", Kind::Int, 1, 1e6, {}, FIELD(checkpoint.keep_last)},
      {"eval.every", Kind::Int, 1, 1e9, {}, FIELD(eval.every)},
      {"eval.batches", Kind::Int, 0, 1e6, {}, FIELD(eval.batches)},
      {"log.every", Kind::Int, 1, 1e9, {}, FIELD(log.every)},
      {"log.profile_every", Kind::Int, 0, 1e9, {}, FIELD(log.profile_every)},
  };
  return keys;
}
#undef FIELD

const Key* find_key(const std::string& path) {
  for (const auto& k : schema())
    if (k.path == path) return &k;
  return nullptr;
}

bool is_prefix_of_key(const std::string& path) {
  for (const auto& k : schema())
    if (k.path.rfind(path + ".", 0) == 0) return true;
  return false;
}


// Where a value came from: file:line, or the --set argument itself (its node's line is that of the parsed argument).
std::string value_where(const std::string& src, const YAML::Node& n) {
  return src.rfind("--set ", 0) == 0 ? src : yaml_where(src, n);
}

// Rejects keys that are not in the schema, with file:line.
void check_known(const YAML::Node& node, const std::string& prefix, const std::string& source) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string name = it->first.as<std::string>();
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    if (find_key(path)) continue;
    if (is_attention_option_path(path)) {
      if (!it->second.IsScalar())
        throw_input_error(yaml_where(source, it->second), ": key '", path, "' (an attention option) must be a scalar");
      continue;
    }
    if (!is_prefix_of_key(path)) throw_input_error(yaml_where(source, it->first), ": unknown key '", path, "'");
    if (!it->second.IsMap())
      throw_input_error(yaml_where(source, it->second), ": key '", path, "' must be a mapping of sub-keys");
    check_known(it->second, path, source);
  }
}

Value validate_value(const Key& k, const YAML::Node& n, const std::string& src) {
  auto fail = [&](const std::string& why) {
    throw_input_error(value_where(src, n), ": key '", k.path, "' ", why);
  };
  auto check_range = [&](double v) {
    if (v < k.lo || v > k.hi) {
      std::ostringstream os;
      os << "= " << v << " is out of range [" << k.lo << ", " << k.hi << "]";
      fail(os.str());
    }
  };
  auto check_choice = [&](const std::string& s) {
    if (k.choices.empty() || std::find(k.choices.begin(), k.choices.end(), s) != k.choices.end()) return;
    std::string all;
    for (const auto& c : k.choices) all += (all.empty() ? "" : ", ") + c;
    fail("= '" + s + "' is not one of: " + all);
  };
  Value v;
  const std::string must_be = std::string("must be ") + kind_name(k.kind) + " (YAML 1.2: decimal, 0o octal, 0x hex)";
  switch (k.kind) {
    case Kind::Int: {
      const auto i = yaml_int(n);
      if (!i) fail(must_be);
      check_range(static_cast<double>(*i));
      v.integer = *i;
      break;
    }
    case Kind::Float: {
      const auto x = yaml_float(n);
      if (!x) fail(std::string("must be ") + kind_name(k.kind));
      check_range(*x);
      v.number = *x;
      break;
    }
    case Kind::Bool: {
      const auto b = yaml_bool(n);
      if (!b) fail(std::string("must be ") + kind_name(k.kind));
      v.flag = *b;
      break;
    }
    case Kind::String:
      if (!n.IsScalar()) fail(std::string("must be ") + kind_name(k.kind));
      check_choice(n.Scalar());
      v.text = n.Scalar();
      break;
    case Kind::IntList:
      if (!n.IsSequence()) fail(std::string("must be ") + kind_name(k.kind));
      for (const auto& item : n) {
        const auto i = yaml_int(item);
        if (!i) fail("has a non-integer item");
        check_range(static_cast<double>(*i));
        v.integers.push_back(*i);
      }
      break;
    case Kind::StringList:
      if (!n.IsSequence()) fail(std::string("must be ") + kind_name(k.kind));
      for (const auto& item : n) {
        if (!item.IsScalar()) fail("has a non-string item");
        check_choice(item.Scalar());
        v.texts.push_back(item.Scalar());
      }
      break;
  }
  return v;
}

}  // namespace

std::string ExperimentConfig::resolved_yaml() const {
  YAML::Emitter out;
  out << resolved;
  return out.c_str();
}

YAML::Node load_yaml_text(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw_input_error(source, ":", e.mark.line + 1, ": YAML syntax error: ", e.msg);
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw_input_error(source, ": the top level must be a mapping of keys");
  refuse_duplicate_and_complex_keys(root, source);
  return root;
}

ExperimentConfig parse_experiment(const std::string& text, const std::string& source,
                                  const std::vector<std::string>& overrides) {
  return parse_experiment_root(load_yaml_text(text, source), source, overrides);
}

YAML::Node merged_yaml(const YAML::Node& base, const YAML::Node& over) {
  YAML::Node out(YAML::NodeType::Map);
  auto put = [&out](const YAML::Node& key, const YAML::Node& value) {
    YAML::Node v;
    if (value.IsMap()) v.reset(merged_yaml(value, YAML::Node(YAML::NodeType::Map)));
    else v.reset(value);
    out.force_insert(key, v);  // the key node itself, so its line mark stays
  };
  for (auto it = base.begin(); it != base.end(); ++it) {
    const YAML::Node& o = over;
    const YAML::Node replacement = over.IsMap() ? o[it->first.Scalar()] : YAML::Node();
    if (replacement && replacement.IsMap() && it->second.IsMap())
      out.force_insert(it->first, merged_yaml(it->second, replacement));
    else if (!replacement)
      put(it->first, it->second);
  }
  if (over.IsMap())
    for (auto it = over.begin(); it != over.end(); ++it) {
      const YAML::Node& b = base;
      const YAML::Node original = b[it->first.Scalar()];
      if (original && original.IsMap() && it->second.IsMap()) continue;  // merged above
      put(it->first, it->second);
    }
  return out;
}

ExperimentConfig parse_experiment_root(const YAML::Node& given, const std::string& source,
                                       const std::vector<std::string>& overrides) {
  // A copy of the mappings (overrides are written into it) sharing the keys and values, which carry the line marks.
  YAML::Node root = merged_yaml(given, YAML::Node(YAML::NodeType::Map));
  check_known(root, "", source);

  // Provenance for error messages: keys set by --set are reported as such.
  std::map<std::string, std::string> origin;
  for (const auto& ov : overrides) {
    const auto eq = ov.find('=');
    if (eq == std::string::npos || eq == 0) throw_input_error("--set ", ov, ": expected key=value");
    // An empty value would parse as null, i.e. "use the default": almost always an unset shell variable, not intent.
    if (eq + 1 == ov.size()) throw_input_error("--set ", ov, ": the value is empty");
    const std::string path = ov.substr(0, eq);
    if (!find_key(path) && !is_attention_option_path(path))
      throw_input_error("--set ", ov, ": unknown key '", path, "'");
    YAML::Node value;
    try {
      value = YAML::Load(ov.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw_input_error("--set ", ov, ": cannot parse the value: ", e.msg);
    }
    refuse_duplicate_and_complex_keys(value, "--set " + ov);
    yaml_assign(root, path, value);
    origin[path] = "--set " + ov;
  }

  ExperimentConfig cfg;
  cfg.source = source;
  YAML::Node resolved(YAML::NodeType::Map);
  for (const Key& k : schema()) {
    YAML::Node n = yaml_lookup(root, k.path);
    const std::string src = origin.count(k.path) ? origin[k.path] : source;
    if (!n.IsDefined() || n.IsNull()) {
      if (k.required) throw_input_error(source, ": required key '", k.path, "' is missing");
      static const ExperimentConfig defaults;
      n = k.get(defaults);
    }
    k.assign(cfg, validate_value(k, n, src));
    yaml_assign(resolved, k.path, YAML::Clone(n));
  }
  auto source_of = [&](const std::string& path) { return origin.count(path) ? origin[path] : source; };
  // The preset and its options, checked one option at a time so an error names the key that holds it.
  const std::string preset_key = "model.attention.preset";
  const AttentionPreset& preset = attention_preset(cfg.model.attention.preset, source_of(preset_key) + ": key '" +
                                                                                   preset_key + "'");
  if (const YAML::Node a = yaml_lookup(root, "model.attention"); a.IsMap()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      const std::string name = it->first.as<std::string>(), path = kAttentionOptionPrefix + name;
      if (!is_attention_option_path(path)) continue;
      if (it->second.IsNull()) continue;
      const std::map<std::string, std::string> one = {{name, it->second.Scalar()}};
      parse_preset_options(preset, one, value_where(source_of(path), it->second) + ": key '" + path + "'");
      cfg.model.attention.options[name] = it->second.Scalar();
    }
  }
  const PresetOptions options = parse_preset_options(preset, cfg.model.attention.options, source_of(preset_key));
  for (const auto& [name, value] : options.values())
    yaml_assign(resolved, kAttentionOptionPrefix + name, YAML::Node(value));
  if (cfg.train.warmup_steps > cfg.train.steps)
    throw_input_error(source_of("train.warmup_steps"), ": key 'train.warmup_steps' (", cfg.train.warmup_steps, ") exceeds 'train.steps' (",
                      cfg.train.steps, ")");
  cfg.resolved = resolved;
  return cfg;
}

std::string read_config_file(const std::string& path) { return read_input_file(path, "the experiment config"); }

ExperimentConfig load_experiment(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_experiment(read_config_file(path), path, overrides);
}

}  // namespace linspec::trainer
