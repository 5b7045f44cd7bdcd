#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace lathe {
namespace fs = std::filesystem;

namespace {

std::string temp_name_for(const std::string& path) {
  return path + ".tmp-" + std::to_string(::getpid());
}

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;  // best effort for directories on filesystems that refuse it
  ::fsync(fd);
  ::close(fd);
}

std::string parent_of(const std::string& path) {
  auto parent = fs::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

}  // namespace

void write_file_atomic_with(const std::string& path,
                            const std::function<void(const std::string&)>& write) {
  const std::string tmp = temp_name_for(path);
  try {
    write(tmp);
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
  fsync_path(tmp, false);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::error_code ignored;
    fs::remove(tmp, ignored);
    fail("cannot write " + path + ": " + why);
  }
  fsync_path(parent_of(path), true);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  write_file_atomic_with(path, [&](const std::string& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) fail("cannot write " + path + ": " + std::strerror(errno));
    const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    const bool closed = std::fclose(f) == 0;
    if (!ok || !closed) fail("cannot write " + path + ": " + std::strerror(errno));
  });
}

void replace_directory_atomic(const std::string& tmp_dir, const std::string& path) {
  std::error_code ec;
  const std::string old = path + ".old-" + std::to_string(::getpid());
  const bool had_old = fs::exists(path);
  if (had_old) {
    fs::rename(path, old, ec);
    if (ec) fail("cannot replace " + path + ": " + ec.message());
  }
  fs::rename(tmp_dir, path, ec);
  if (ec) {
    if (had_old) fs::rename(old, path, ec);
    fail("cannot move " + tmp_dir + " to " + path + ": " + ec.message());
  }
  fsync_path(parent_of(path), true);
  if (had_old) fs::remove_all(old, ec);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail("cannot read " + path);
  return buffer.str();
}

}  // namespace lathe
