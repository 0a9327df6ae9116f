// The fd-relative file layer of the disk cache (docs/cache.md): every path below the cache root
// is opened relative to its parent's descriptor with O_NOFOLLOW, and trusted only when owned by
// this user and writable by no one else. Internal to src/cache/.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "toolchain/unique_fd.h"

namespace tilejit::detail::cache_fs {

inline constexpr const char* kStagingDir = "tmp";  // <root>/v1/tmp: private staging and trash

// One write per warning so that lines from concurrent processes do not interleave.
void warn_line(const std::string& message);
// Warns once per distinct message per process: an unsafe cache directory would otherwise
// repeat the same warning for every compile.
void warn_line_once(const std::string& message);

template <class... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  warn_line(fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void warn_once(fmt::format_string<Args...> format, Args&&... args) {
  warn_line_once(fmt::format(format, std::forward<Args>(args)...));
}

enum class Access { kOk, kMissing, kUnsafe, kError };

struct Opened {
  Access access = Access::kError;
  UniqueFd fd;
  std::string problem;  // why, for kUnsafe and kError
};

// The ownership and permission rule for everything the cache trusts: owned by this user and
// writable by no one else. A directory another user can write is a place to plant code.
std::string unsafe_reason(const struct stat& st, const std::string& what);

// Opens directory `name` under `parent` (creating it with mode 0700 when asked), refusing a
// symlink and checking unsafe_reason.
Opened open_dir_at(int parent, const char* name, const std::string& what, bool create);

struct FileRead {
  Access access = Access::kError;
  std::string bytes;
  std::string problem;
};

struct OpenedFile {
  Access access = Access::kError;
  UniqueFd fd;
  uint64_t size = 0;  // from the fstat that checked it
  std::string problem;
};
// Opens regular file `name` under `dir` for reading, refusing a symlink and checking
// unsafe_reason on the descriptor that is then read.
OpenedFile open_file_at(int dir, const std::string& name, const std::string& what);
// Reads up to `size` bytes at `offset`, retrying short reads; returns the count read, which is
// less at the end of the file or on an error (then *problem says which).
size_t read_at(int fd, char* data, size_t size, uint64_t offset, std::string* problem);
// Reads a whole file once: the bytes that are verified are the bytes that are used, so
// nothing can be swapped between the check and the use.
FileRead read_file_at(int dir, const std::string& name, const std::string& what);
// Creates `name` (O_EXCL, mode 0600) under `dir` and writes `bytes`; false with *problem set
// on failure.
bool write_file_at(int dir, const std::string& name, std::string_view bytes, std::string* problem);
// Removes `name` under `parent` without following any symlink inside it.
void remove_tree_at(int parent, const char* name);
// The names in directory `fd`, sorted, without "." and "..".
std::vector<std::string> list_dir(int fd);
std::string random_suffix();
// True when `name` under `parent` is still the inode `fd` has open.
bool same_inode(int fd, int parent, const char* name);
int64_t mtime_ns(const struct stat& st);

// The directory chain down to a shard: root, v1, and v1/tmp for staging and trash.
struct Layout {
  Access access = Access::kError;
  std::string problem;
  UniqueFd root, version, staging;
};
// Opens (creating what is missing, when asked) the chain under `root`. Only the root's last
// component must not be a symlink; its parents are the user's own business. Without `create`
// a missing staging directory is fine: lookups work without it.
Layout open_layout(const std::filesystem::path& root, bool create);

// The version directory (<root>/v1) for reading: lookups, dependency and toolchain records.
// Checked like open_layout(root, false), but kept open by the process, so that a read costs
// two fstatat() calls (the root still not a symlink and private, <root>/v1 still the inode
// held open and private) instead of opening and checking root, v1 and tmp each time. Another
// directory at the path (the cache removed and made again, TILELANG_CACHE_DIR elsewhere) is
// opened and checked anew. The staging directory is not checked here: reads do not use it
// (open_layout for a store or a removal still checks it).
struct VersionDir {
  Access access = Access::kError;
  std::string problem;
  std::shared_ptr<const UniqueFd> fd;  // shared with the process's table; valid while held
  int get() const { return fd->get(); }
};
VersionDir open_version_for_reading(const std::filesystem::path& root);

// Moves an entry out of the namespace in one rename, then deletes it at leisure. Only if the
// name still refers to the directory we examined: another process may already have replaced
// a corrupt entry by a good one.
void discard_entry(const Layout& layout, int shard, int entry, const std::string& key);
// Staging and trash directories left by processes that died (SIGKILL, power loss): their
// flock died with them, so an exclusive non-blocking flock succeeds.
void reclaim_abandoned_staging(int staging);

}  // namespace tilejit::detail::cache_fs
