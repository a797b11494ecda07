// Issue 15: the one rule for sizes read from files (core/size_limits.h), HF config limits, small input files, stale
// temporaries of killed writers, output paths (dangling symlinks), and the CLI's exit code 2 on forged inputs.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>

#include "apps/command.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/size_limits.h"
#include "core/temp_files.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "tests/unit/format_test_util.h"
#include "trainer/atomic_file.h"

namespace linspec {
namespace {

namespace fs = std::filesystem;
namespace sl = size_limits;
using nlohmann::json;
using testing::temp_path;

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "message: " << (haystack)

using linspec::testing::input_error_of;

TEST(SizeLimits, EveryDimensionIsBoundedOnBothSides) {
  for (sl::Dim d : {sl::Dim::Layers, sl::Dim::Heads, sl::Dim::HeadDim, sl::Dim::Hidden, sl::Dim::Ffn, sl::Dim::Vocab,
                    sl::Dim::Context}) {
    const int64_t max = sl::max_of(d);
    EXPECT_EQ(sl::check_dim(1, d, "f", "k"), 1);
    EXPECT_EQ(sl::check_dim(max, d, "f", "k"), max);
    for (int64_t bad : {int64_t{0}, int64_t{-1}, max + 1, int64_t{1} << 40}) {
      const std::string msg = input_error_of([&] { sl::check_dim(bad, d, "cfg.json", "the_key"); });
      EXPECT_CONTAINS(msg, "cfg.json");
      EXPECT_CONTAINS(msg, "'the_key'");
      EXPECT_CONTAINS(msg, std::to_string(bad));
    }
  }
}

TEST(SizeLimits, FileBoundsOverflowAndMemoryBudget) {
  EXPECT_EQ(sl::check_in_file(10, 4, 40, "f", "x"), 40u);
  EXPECT_CONTAINS(input_error_of([] { sl::check_in_file(11, 4, 40, "f.bin", "array 'a'"); }), "array 'a'");
  EXPECT_CONTAINS(input_error_of([] { sl::check_in_file(uint64_t{1} << 62, 8, UINT64_MAX, "f", "a"); }), "do not fit");
  EXPECT_EQ(sl::array_bytes({2, 3}, 4, "f", "t"), 24u);
  EXPECT_CONTAINS(input_error_of([] { sl::array_bytes({uint64_t{1} << 40, uint64_t{1} << 30}, 4, "f", "t"); }), "overflows");

  ::setenv("LINSPEC_MEMORY_LIMIT_MB", "2", 1);
  EXPECT_EQ(sl::memory_limit_bytes(), 2u << 20);
  sl::LoadBudget budget("m.h5");
  budget.reserve(1 << 20, "tensor 'a'");
  budget.reserve(1 << 20, "tensor 'b'");
  const std::string msg = input_error_of([&] { budget.reserve(1, "tensor 'c'"); });
  EXPECT_CONTAINS(msg, "m.h5");
  EXPECT_CONTAINS(msg, "tensor 'c'");
  ::unsetenv("LINSPEC_MEMORY_LIMIT_MB");
  EXPECT_GT(sl::memory_limit_bytes(), 2u << 20);  // the machine's physical memory
}

json hf_config() {
  return json{{"model_type", "llama"},    {"vocab_size", 32},
              {"hidden_size", 16},        {"intermediate_size", 32},
              {"num_hidden_layers", 2},   {"num_attention_heads", 2},
              {"num_key_value_heads", 1}, {"max_position_embeddings", 128}};
}

TEST(ModelConfigLimits, HfSizesAreBoundedAndNamedByTheirHfKey) {
  EXPECT_NO_THROW(model_config_from_hf_json(hf_config(), "config.json"));
  struct Case {
    const char* key;
    json value;
  };
  const std::vector<Case> cases = {
      {"num_hidden_layers", 1000000000000},
      {"vocab_size", int64_t{1} << 40},
      {"hidden_size", int64_t{1} << 62},
      {"intermediate_size", int64_t{1} << 40},
      {"num_attention_heads", 1 << 20},
      {"num_key_value_heads", 1 << 20},
      {"head_dim", 1 << 20},
      {"max_position_embeddings", int64_t{1} << 40},
  };
  for (const Case& c : cases) {
    json j = hf_config();
    j[c.key] = c.value;
    const std::string msg = input_error_of([&] { model_config_from_hf_json(j, "/models/x/config.json"); });
    EXPECT_CONTAINS(msg, "/models/x/config.json");
    EXPECT_CONTAINS(msg, std::string("'") + c.key + "'");
  }
  // A float where a count belongs is refused by type, not rounded.
  json j = hf_config();
  j["num_hidden_layers"] = 1e12;
  EXPECT_CONTAINS(input_error_of([&] { model_config_from_hf_json(j, "c.json"); }), "num_hidden_layers");
  // Checkpoint configs use the native names.
  ModelConfig c = model_config_from_hf_json(hf_config(), "c.json");
  json native = c;
  native["num_layers"] = int64_t{1} << 40;
  EXPECT_CONTAINS(input_error_of([&] { model_config_from_json(native, "m.h5 (/config model)"); }), "'num_layers'");
}

TEST(SmallInputFiles, DirectoriesAndMissingFilesAreNamed) {
  const std::string dir = temp_path("config_is_a_dir");
  fs::create_directories(dir + "/config.json");
  const std::string msg = input_error_of([&] { model_config_from_hf_file(dir + "/config.json"); });
  EXPECT_CONTAINS(msg, dir + "/config.json");
  EXPECT_CONTAINS(msg, "is a directory");
  EXPECT_CONTAINS(input_error_of([&] { read_input_file(dir + "/none.json", "a test file"); }), "no such file");
  testing::write_file(dir + "/big.json", std::string(100, ' '));
  EXPECT_CONTAINS(input_error_of([&] { read_input_file(dir + "/big.json", "a test file", 99); }), "100 bytes");
  EXPECT_EQ(read_input_file(dir + "/big.json", "a test file", 100).size(), 100u);
}

// A pid that no longer runs: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

TEST(StaleTemporaries, FilesOfDeadWritersAreRemovedOnTheNextWrite) {
  EXPECT_EQ(target_of_temporary("/a/m.h5.tmp.123"), "/a/m.h5");
  EXPECT_EQ(target_of_temporary("/a/m.h5"), "/a/m.h5");
  const std::string dir = temp_path("stale");
  fs::create_directories(dir);
  const std::string out = dir + "/model.h5";
  const std::string dead = out + ".tmp." + std::to_string(dead_pid());
  const std::string live = out + ".tmp." + std::to_string(::getppid());
  const std::string other = dir + "/other.h5.tmp." + std::to_string(dead_pid());
  for (const auto& p : {dead, live, other}) testing::write_file(p, "partial");
  write_hdf5_atomically(out, [](H5Handle f) { write_tensor_group(f, "t", {{"x", Tensor::scalar(1.0)}}); });
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(live));   // another writer may be at work
  EXPECT_TRUE(fs::exists(other));  // not this target's
  EXPECT_TRUE(fs::exists(out));

  const std::string text = dir + "/latest";
  const std::string dead_text = text + ".tmp." + std::to_string(dead_pid());
  testing::write_file(dead_text, "x");
  trainer::write_text_atomically(text, "snapshot-1.h5\n");
  EXPECT_FALSE(fs::exists(dead_text));
}

TEST(OutputPaths, DanglingSymlinksCountAsExisting) {
  const std::string dir = temp_path("outputs");
  fs::create_directories(dir);
  const std::string link = dir + "/out.h5";
  fs::create_symlink(dir + "/nowhere.h5", link);
  const std::string msg = input_error_of([&] { apps::check_output_path(link, /*force=*/false); });
  EXPECT_CONTAINS(msg, link);
  EXPECT_CONTAINS(msg, "--force");
  EXPECT_NO_THROW(apps::check_output_path(link, /*force=*/true));
  EXPECT_NO_THROW(apps::check_output_path(dir + "/fresh.h5", false));
  const std::string in = dir + "/in.gguf";
  testing::write_file(in, "x");
  fs::create_symlink(in, dir + "/alias.h5");
  EXPECT_CONTAINS(input_error_of([&] { apps::check_output_path(dir + "/alias.h5", true, in, "--from"); }), "--from");
}

// ---- the CLI: forged inputs exit 2 with the file and key named ----

struct CliRun {
  int rc;
  std::string err;
};
CliRun run_cli(const std::string& args) {
  const std::string err = temp_path("cli_stderr.txt");
  const int status = std::system((std::string(LINSPEC_BINARY) + " " + args + " >/dev/null 2>" + err).c_str());
  return {WEXITSTATUS(status), testing::read_file(err)};
}

TEST(CliHardening, ForgedGgufAndDanglingOutputExitTwo) {
  ASSERT_TRUE(fs::exists(LINSPEC_BINARY)) << LINSPEC_BINARY << " is not built (tests depend on it)";
  testing::GgufBuilder b;
  b.str("general.architecture", "llama");
  std::string layers;
  testing::put<uint64_t>(layers, uint64_t{1} << 40);
  b.raw_kv("llama.block_count", 10, layers);
  b.u32("llama.embedding_length", 8);
  b.u32("llama.feed_forward_length", 8);
  b.u32("llama.attention.head_count", 2);
  b.f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  b.f32_tensor("token_embd.weight", {8, 4}, std::vector<float>(32, 0.5f));
  const std::string gguf = temp_path("forged_layers.gguf");
  testing::write_file(gguf, b.build());
  const std::string out = temp_path("forged_out.h5");
  CliRun r = run_cli("convert --from " + gguf + " --out " + out);
  EXPECT_EQ(r.rc, 2) << r.err;
  EXPECT_CONTAINS(r.err, gguf);
  EXPECT_CONTAINS(r.err, "llama.block_count");
  EXPECT_FALSE(fs::exists(out));

  const std::string link = temp_path("dangling_out.h5");
  fs::create_symlink(temp_path("no_such_target.h5"), link);
  r = run_cli("convert --from " + gguf + " --out " + link);
  EXPECT_EQ(r.rc, 2) << r.err;
  EXPECT_CONTAINS(r.err, link);
  EXPECT_TRUE(fs::is_symlink(link));
}

}  // namespace
}  // namespace linspec
