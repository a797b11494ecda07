// Temporary names of atomic writes: every output is written to "<path>.tmp.<pid>" and renamed into place
// (model/checkpoint.h write_hdf5_atomically, trainer/atomic_file.h). A writer killed with -9 cannot clean up, so
// each new write removes the temporaries of its target left by processes that no longer run.
#pragma once
#include <string>
#include <vector>

namespace linspec {

// "<path>.tmp.<pid of this process>".
std::string temporary_path(const std::string& path);
// True for "<name>.tmp.<digits>" with a non-empty name.
bool is_temporary_name(const std::string& file_name);
// The target a temporary path stands for ("m.h5.tmp.12" -> "m.h5"); any other path is returned unchanged.
std::string target_of_temporary(const std::string& path);
// Removes "<file name of path>.tmp.<pid>" beside `path` whose pid no longer runs; returns the removed paths.
// A live pid (another writer at work, or a reused pid) keeps its file.
std::vector<std::string> remove_stale_temporaries(const std::string& path);

}  // namespace linspec
