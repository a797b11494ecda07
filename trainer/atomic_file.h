// Small files replaced atomically: the `latest` snapshot pointer and the rewritten metrics log. Readers see the
// old content or the new one, never a mix, even if the process dies halfway.
#pragma once
#include <string>

#include "core/temp_files.h"

namespace linspec::trainer {

// Writes `text` to `path` + ".tmp.<pid>" (first removing those of dead writers), fsyncs it, renames it over `path` and
// fsyncs the directory. InputError naming `path` when any step fails (the temporary file is removed).
void write_text_atomically(const std::string& path, const std::string& text);

// Makes a completed rename in `dir` durable (best effort: errors are ignored).
void fsync_directory(const std::string& dir);

// True for the temporary names write_text_atomically and write_hdf5_atomically use ("<name>.tmp.<pid>").
using linspec::is_temporary_name;

}  // namespace linspec::trainer
