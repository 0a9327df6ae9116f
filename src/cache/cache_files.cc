#include "cache/cache_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <set>

#include "cache/disk_cache.h"

namespace tilejit::detail::cache_fs {
namespace fs = std::filesystem;

namespace {

// A staging directory younger than this is never reclaimed, even when unlocked: its owner
// may be between mkdir and flock.
constexpr auto kStagingGrace = std::chrono::seconds(5);

// Opens (creating with mode 0700 what is missing, when asked) the cache root. Only the root's
// last component must not be a symlink; its parents are the user's own business.
Opened open_root(const fs::path& root, bool create) {
  const std::string what = fmt::format("cache directory '{}'", root.string());
  if (create) {
    fs::path prefix;
    for (const fs::path& part : root) {
      prefix /= part;
      if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
        Opened result;
        result.problem = fmt::format("cannot create {}: {}", what, std::strerror(errno));
        return result;
      }
    }
  }
  return open_dir_at(AT_FDCWD, root.c_str(), what, false);
}

}  // namespace

void warn_line(const std::string& message) {
  const std::string line = "tilejit: warning: cache: " + message + "\n";
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

void warn_line_once(const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> seen;
  {
    std::lock_guard lock(mutex);
    if (!seen.insert(message).second) return;
  }
  warn_line(message);
}

std::string unsafe_reason(const struct stat& st, const std::string& what) {
  if (st.st_uid != ::geteuid()) {
    return fmt::format("{} is owned by uid {}, not by this user (uid {})", what, st.st_uid,
                       ::geteuid());
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return fmt::format("{} is writable by group or others (mode {:04o})", what, st.st_mode & 07777);
  }
  return {};
}

Opened open_dir_at(int parent, const char* name, const std::string& what, bool create) {
  Opened result;
  if (create && ::mkdirat(parent, name, 0700) != 0 && errno != EEXIST) {
    result.problem = fmt::format("cannot create {}: {}", what, std::strerror(errno));
    return result;
  }
  // O_NOFOLLOW: a symlink planted in the cache is refused, never followed.
  const int fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      result.access = Access::kMissing;
    } else if (errno == ELOOP || errno == ENOTDIR) {
      result.access = Access::kUnsafe;
      result.problem = fmt::format("{} is a symlink or not a directory", what);
    } else {
      result.problem = fmt::format("cannot open {}: {}", what, std::strerror(errno));
    }
    return result;
  }
  result.fd = UniqueFd(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    result.problem = fmt::format("cannot stat {}: {}", what, std::strerror(errno));
    return result;
  }
  result.problem = unsafe_reason(st, what);
  result.access = result.problem.empty() ? Access::kOk : Access::kUnsafe;
  return result;
}

OpenedFile open_file_at(int dir, const std::string& name, const std::string& what) {
  OpenedFile result;
  const int fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) {
      result.access = Access::kMissing;
      result.problem = fmt::format("{} is missing", what);
    } else if (errno == ELOOP) {
      result.access = Access::kUnsafe;
      result.problem = fmt::format("{} is a symlink", what);
    } else {
      result.problem = fmt::format("cannot open {}: {}", what, std::strerror(errno));
    }
    return result;
  }
  result.fd = UniqueFd(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    result.problem = fmt::format("cannot stat {}: {}", what, std::strerror(errno));
    return result;
  }
  if (!S_ISREG(st.st_mode)) {
    result.access = Access::kUnsafe;
    result.problem = fmt::format("{} is not a regular file", what);
    return result;
  }
  if (std::string reason = unsafe_reason(st, what); !reason.empty()) {
    result.access = Access::kUnsafe;
    result.problem = std::move(reason);
    return result;
  }
  result.size = static_cast<uint64_t>(st.st_size);
  result.access = Access::kOk;
  return result;
}

size_t read_at(int fd, char* data, size_t size, uint64_t offset, std::string* problem) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *problem = std::strerror(errno);
      return done;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

FileRead read_file_at(int dir, const std::string& name, const std::string& what) {
  FileRead result;
  OpenedFile file = open_file_at(dir, name, what);
  if (file.access != Access::kOk) {
    result.access = file.access;
    result.problem = std::move(file.problem);
    return result;
  }
  result.bytes.resize(static_cast<size_t>(file.size));
  // Up to the size fstat gave: files in the cache are written whole before they are published
  // and never appended to, and what is read is checked against its header (or parsed) anyway.
  std::string problem;
  result.bytes.resize(
      read_at(file.fd.get(), result.bytes.data(), result.bytes.size(), 0, &problem));
  if (!problem.empty()) {
    result.problem = fmt::format("cannot read {}: {}", what, problem);
    return result;
  }
  result.access = Access::kOk;
  return result;
}

bool write_file_at(int dir, const std::string& name, std::string_view bytes, std::string* problem) {
  const int fd =
      ::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    *problem = fmt::format("cannot create '{}': {}", name, std::strerror(errno));
    return false;
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *problem = fmt::format("cannot write '{}': {}", name, std::strerror(n < 0 ? errno : ENOSPC));
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {  // delayed allocation may report ENOSPC only here
    *problem = fmt::format("cannot write '{}': {}", name, std::strerror(errno));
    return false;
  }
  return true;
}

// Removes `name` under `parent` without following any symlink inside it.
void remove_tree_at(int parent, const char* name) {
  const int fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    ::unlinkat(parent, name, 0);  // a file or a symlink: remove the link itself
    return;
  }
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    ::close(fd);
    return;
  }
  std::vector<std::string> children;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string child = entry->d_name;
    if (child != "." && child != "..") children.push_back(child);
  }
  for (const std::string& child : children) {
    struct stat st {};
    if (::fstatat(fd, child.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
      remove_tree_at(fd, child.c_str());
    } else {
      ::unlinkat(fd, child.c_str(), 0);
    }
  }
  ::closedir(dir);
  ::unlinkat(parent, name, AT_REMOVEDIR);
}

std::vector<std::string> list_dir(int fd) {
  std::vector<std::string> names;
  const int copy = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (copy < 0) return names;
  DIR* dir = ::fdopendir(copy);
  if (dir == nullptr) {
    ::close(copy);
    return names;
  }
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}
std::string random_suffix() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{:016x}", rng());
}

bool same_inode(int fd, int parent, const char* name) {
  struct stat a {
  }, b{};
  return ::fstat(fd, &a) == 0 && ::fstatat(parent, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
         a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

Layout open_layout(const fs::path& root, bool create) {
  Layout layout;
  Opened opened = open_root(root, create);
  if (opened.access != Access::kOk) {
    layout.access = opened.access;
    layout.problem = opened.problem;
    return layout;
  }
  layout.root = std::move(opened.fd);
  const std::string base = root.string();
  for (auto [name, slot] : {std::pair{DiskCache::kLayoutVersion, &layout.version},
                            std::pair{kStagingDir, &layout.staging}}) {
    const int parent = slot == &layout.version ? layout.root.get() : layout.version.get();
    const std::string what = slot == &layout.version
                                 ? fmt::format("'{}/{}'", base, name)
                                 : fmt::format("'{}/{}/{}'", base, DiskCache::kLayoutVersion, name);
    Opened dir = open_dir_at(parent, name, what, create);
    if (dir.access != Access::kOk) {
      layout.access = dir.access;
      layout.problem = dir.problem;
      return layout;
    }
    *slot = std::move(dir.fd);
    if (slot == &layout.version && !create) {
      // Staging is only needed to write or to remove; lookups work without it.
      Opened staging = open_dir_at(layout.version.get(), kStagingDir, "staging directory", false);
      if (staging.access == Access::kOk) layout.staging = std::move(staging.fd);
      if (staging.access == Access::kUnsafe) {
        layout.access = Access::kUnsafe;
        layout.problem = staging.problem;
        return layout;
      }
      break;
    }
  }
  layout.access = Access::kOk;
  return layout;
}

VersionDir open_version_for_reading(const fs::path& root) {
  struct Held {
    std::string root;
    dev_t device = 0;
    ino_t inode = 0;  // of <root>/v1, which `fd` holds open
    std::shared_ptr<const UniqueFd> fd;
  };
  static std::mutex mutex;
  static std::vector<Held> held;  // the cache roots this process used last, newest at the back
  constexpr size_t kHeldRoots = 8;

  VersionDir result;
  const std::string root_text = root.string();
  const fs::path version_path = root / DiskCache::kLayoutVersion;
  const std::string root_what = fmt::format("cache directory '{}'", root_text);
  const std::string version_what = fmt::format("'{}/{}'", root_text, DiskCache::kLayoutVersion);
  // The rule open_dir_at applies to an opened directory, applied to the path's inode now.
  const auto check = [&](const char* path, const std::string& what, struct stat* st) {
    if (::fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW) != 0) {
      result.access = errno == ENOENT ? Access::kMissing : Access::kError;
      if (result.access == Access::kError)
        result.problem = fmt::format("cannot stat {}: {}", what, std::strerror(errno));
      return false;
    }
    if (!S_ISDIR(st->st_mode)) {
      result.access = Access::kUnsafe;
      result.problem = fmt::format("{} is a symlink or not a directory", what);
      return false;
    }
    result.problem = unsafe_reason(*st, what);
    result.access = result.problem.empty() ? Access::kOk : Access::kUnsafe;
    return result.access == Access::kOk;
  };
  struct stat root_st {
  }, version_st{};
  if (!check(root.c_str(), root_what, &root_st) ||
      !check(version_path.c_str(), version_what, &version_st)) {
    return result;
  }
  {
    std::lock_guard lock(mutex);
    for (const Held& entry : held) {
      if (entry.root == root_text && entry.device == version_st.st_dev &&
          entry.inode == version_st.st_ino) {
        result.fd = entry.fd;
        return result;
      }
    }
  }
  // Not held yet, or the path now names another directory: the full check, then keep it.
  Layout layout = open_layout(root, false);
  if (layout.access != Access::kOk) {
    result.access = layout.access;
    result.problem = layout.problem;
    return result;
  }
  struct stat opened {};
  if (::fstat(layout.version.get(), &opened) != 0) {
    result.access = Access::kError;
    result.problem = fmt::format("cannot stat {}: {}", version_what, std::strerror(errno));
    return result;
  }
  result.access = Access::kOk;
  result.fd = std::make_shared<const UniqueFd>(std::move(layout.version));
  std::lock_guard lock(mutex);
  std::erase_if(held, [&](const Held& entry) { return entry.root == root_text; });
  if (held.size() >= kHeldRoots) held.erase(held.begin());
  held.push_back({root_text, opened.st_dev, opened.st_ino, result.fd});
  return result;
}

// Moves an entry out of the namespace in one rename, then deletes it at leisure. Only if the
// name still refers to the directory we examined: another process may already have replaced
// a corrupt entry by a good one.
void discard_entry(const Layout& layout, int shard, int entry, const std::string& key) {
  if (!layout.staging || !same_inode(entry, shard, key.c_str())) return;
  const std::string trash = fmt::format("trash.{}.{}", key.substr(0, 16), random_suffix());
  if (::renameat(shard, key.c_str(), layout.staging.get(), trash.c_str()) == 0) {
    remove_tree_at(layout.staging.get(), trash.c_str());
  }
}

// Staging and trash directories left by processes that died (SIGKILL, power loss): their
// flock died with them, so an exclusive non-blocking flock succeeds.
void reclaim_abandoned_staging(int staging) {
  const auto now = std::chrono::system_clock::now();
  for (const std::string& name : list_dir(staging)) {
    struct stat st {};
    if (::fstatat(staging, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    const auto modified = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(st.st_mtim.tv_sec) +
            std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
    if (now - modified < kStagingGrace) continue;
    if (!S_ISDIR(st.st_mode)) {
      ::unlinkat(staging, name.c_str(), 0);
      continue;
    }
    UniqueFd dir(::openat(staging, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (dir && ::flock(dir.get(), LOCK_EX | LOCK_NB) == 0) remove_tree_at(staging, name.c_str());
  }
}

int64_t mtime_ns(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

}  // namespace tilejit::detail::cache_fs
