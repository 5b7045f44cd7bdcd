// Crash-safe writes: content goes to "<path>.tmp-<pid>", is fsynced, then renamed over <path>,
// so a reader (or a resumed run) only ever sees the old file or the complete new one.
#pragma once
#include <functional>
#include <string>
#include <string_view>

namespace lathe {

// Writes bytes to path atomically. Throws lathe::Error naming the path on failure.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Calls write(tmp_path) to produce the file, then fsyncs and renames tmp_path over path.
void write_file_atomic_with(const std::string& path,
                            const std::function<void(const std::string& tmp_path)>& write);

// Replaces directory `path` with the fully written directory `tmp_dir` (rename; the old
// directory, if any, is removed only after the new one is in place).
void replace_directory_atomic(const std::string& tmp_dir, const std::string& path);

// Reads a whole file; throws lathe::Error naming the path if it cannot.
std::string read_file(const std::string& path);

}  // namespace lathe
