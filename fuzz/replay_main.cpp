// Replays fuzz inputs without libFuzzer (any compiler): every file in the directories given on the command line is
// passed once to the target's LLVMFuzzerTestOneInput, the entry function the fuzzer drives. An exception other than
// InputError, a sanitizer report or a crash fails the run, naming the file. ctest runs it over fuzz/corpus/<target>
// and fuzz/regressions/<target>.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    // A directory named on the command line must exist: a missing corpus is an error, not zero inputs replayed.
    if (!fs::is_directory(argv[i])) {
      std::fprintf(stderr, "replay: %s: not a directory\n", argv[i]);
      return 2;
    }
    for (const auto& e : fs::recursive_directory_iterator(argv[i]))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "replay: no inputs\n");
    return 2;
  }
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", f.c_str(), bytes.size());
    try {
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "replay: %s: uncaught %s\n", f.c_str(), e.what());
      return 1;
    }
  }
  std::printf("replay: %zu inputs, no findings\n", files.size());
  return 0;
}
