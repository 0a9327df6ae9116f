#include "cache/disk_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "artifact/artifact_io.h"
#include "cache/key.h"
#include "options/options.h"
#include "tilejit/errors.h"
#include "toolchain/unique_fd.h"

namespace tilejit::detail {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kManifestFile = "manifest.json";
constexpr const char* kStagingDir = "tmp";
constexpr const char* kDependencyDir = "deps";  // <base key>.json: headers a build read
constexpr const char* kDependencyFormat = "tilejit.dependencies/1";
constexpr const char* kManifestFormat = "tilejit.cache-entry/1";
// A staging directory younger than this is never reclaimed, even when unlocked: its owner
// may be between mkdir and flock.
constexpr auto kStagingGrace = std::chrono::seconds(5);

template <class... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  // One write per warning so that lines from concurrent processes do not interleave.
  std::string line =
      "tilejit: warning: cache: " + fmt::format(format, std::forward<Args>(args)...) + "\n";
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

// Warns once per distinct message per process: an unsafe cache directory would otherwise
// repeat the same warning for every compile.
template <class... Args>
void warn_once(fmt::format_string<Args...> format, Args&&... args) {
  static std::mutex mutex;
  static std::set<std::string> seen;
  std::string message = fmt::format(format, std::forward<Args>(args)...);
  {
    std::lock_guard lock(mutex);
    if (!seen.insert(message).second) return;
  }
  warn("{}", message);
}

enum class Access { kOk, kMissing, kUnsafe, kError };

struct Opened {
  Access access = Access::kError;
  UniqueFd fd;
  std::string problem;  // why, for kUnsafe and kError
};

// The ownership and permission rule for everything the cache trusts: owned by this user and
// writable by no one else. A directory another user can write is a place to plant code.
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

struct FileRead {
  Access access = Access::kError;
  std::string bytes;
  std::string problem;
};

// Reads a whole file of an entry once: the bytes that are verified are the bytes that are
// used, so nothing can be swapped between the check and the use.
FileRead read_file_at(int dir, const std::string& name, const std::string& what) {
  FileRead result;
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
  UniqueFd owned(fd);
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
  result.bytes.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (true) {
    if (done == result.bytes.size()) result.bytes.resize(done + 4096);  // grew since fstat
    const ssize_t n = ::read(fd, result.bytes.data() + done, result.bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result.problem = fmt::format("cannot read {}: {}", what, std::strerror(errno));
      return result;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  result.bytes.resize(done);
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

bool is_key(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
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

struct Verdict {
  Access access = Access::kOk;  // kOk, kMissing (= incomplete or corrupt), kUnsafe, kError
  std::string problem;
  std::map<std::string, std::string> files;  // verified contents, manifest excluded
};

// Reads the manifest and every file it lists, checking size and SHA-256.
Verdict verify_entry(int entry, const std::string& key) {
  Verdict verdict;
  FileRead manifest = read_file_at(entry, kManifestFile, "manifest.json");
  if (manifest.access != Access::kOk) {
    verdict.access = manifest.access;
    verdict.problem = manifest.problem;
    return verdict;
  }
  try {
    const json parsed = json::parse(manifest.bytes);
    if (parsed.at("format").get<std::string>() != kManifestFormat ||
        parsed.at("key").get<std::string>() != key) {
      verdict.access = Access::kMissing;
      verdict.problem = "manifest.json names another format or key";
      return verdict;
    }
    for (const auto& [name, expected] : parsed.at("files").items()) {
      if (name.find('/') != std::string::npos || name == kManifestFile || name.starts_with(".")) {
        verdict.access = Access::kUnsafe;
        verdict.problem = fmt::format("manifest.json lists an invalid file name '{}'", name);
        return verdict;
      }
      FileRead file = read_file_at(entry, name, name);
      if (file.access != Access::kOk) {
        verdict.access = file.access;
        verdict.problem = file.problem;
        return verdict;
      }
      if (file.bytes.size() != expected.at("size").get<uint64_t>() ||
          sha256_hex(file.bytes) != expected.at("sha256").get<std::string>()) {
        verdict.access = Access::kMissing;
        verdict.problem =
            fmt::format("{} does not match its recorded SHA-256 (truncated or corrupted)", name);
        return verdict;
      }
      verdict.files.emplace(name, std::move(file.bytes));
    }
  } catch (const json::exception& e) {
    verdict.access = Access::kMissing;
    verdict.problem = fmt::format("manifest.json is malformed: {}", e.what());
  }
  return verdict;
}

// The directory chain down to a shard: root, v1, and v1/tmp for staging and trash.
struct Layout {
  Access access = Access::kError;
  std::string problem;
  UniqueFd root, version, staging;
};

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

fs::path default_root() {
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') {
    if (const passwd* pw = ::getpwuid(::geteuid())) home = pw->pw_dir;
  }
  if (home == nullptr || *home == '\0')
    return fs::temp_directory_path() / fmt::format("tilejit-cache-{}", ::geteuid());
  return fs::path(home) / ".cache" / "tilejit";
}

}  // namespace

fs::path DiskCache::root_from_env() {
  const char* dir = std::getenv("TILELANG_CACHE_DIR");
  return dir != nullptr && *dir != '\0' ? fs::path(dir) : default_root();
}

uint64_t DiskCache::max_bytes_from_env() {
  const char* text = std::getenv("TILELANG_CACHE_MAX_BYTES");
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || text[0] == '-') {
    warn_once("TILELANG_CACHE_MAX_BYTES='{}' is not a byte count; the cache is not capped", text);
    return 0;
  }
  return value;
}

std::optional<DiskCache> DiskCache::from_env() {
  if (env_flag("TILELANG_DISABLE_CACHE")) return std::nullopt;
  return DiskCache(root_from_env(), max_bytes_from_env());
}

DiskCache::DiskCache(fs::path root, uint64_t max_bytes)
    : root_(std::move(root)), max_bytes_(max_bytes) {
  if (root_.is_relative()) root_ = fs::absolute(root_);
}

DiskCache::Lookup DiskCache::lookup(const std::string& key) const {
  Lookup result;
  if (!is_key(key)) return result;
  Layout layout = open_layout(root_, false);
  if (layout.access == Access::kUnsafe) {
    warn_once(
        "refusing to use the disk cache: {}. dlopen of cached code is code execution; compiling "
        "into a private directory instead (fix the permissions or set TILELANG_CACHE_DIR)",
        layout.problem);
    result.status = Status::kUnsafe;
    return result;
  }
  if (layout.access != Access::kOk) return result;
  const std::string shard_name = key.substr(0, 2);
  Opened shard =
      open_dir_at(layout.version.get(), shard_name.c_str(), "cache shard " + shard_name, false);
  Opened entry;
  if (shard.access == Access::kOk)
    entry = open_dir_at(shard.fd.get(), key.c_str(), "cache entry " + key, false);
  for (const Opened* opened : {&shard, &entry}) {
    if (opened->access == Access::kUnsafe) {
      warn("refusing cache entry {}: {}; compiling into a private directory instead", key,
           opened->problem);
      result.status = Status::kUnsafe;
      return result;
    }
    if (opened->access != Access::kOk) return result;
  }
  // Shared lock while reading: an evicting process takes LOCK_EX | LOCK_NB and skips us.
  if (::flock(entry.fd.get(), LOCK_SH) != 0) return result;
  // Evicted or replaced between our open and our lock: a plain miss.
  if (!same_inode(entry.fd.get(), shard.fd.get(), key.c_str())) return result;

  Verdict verdict = verify_entry(entry.fd.get(), key);
  if (verdict.access == Access::kUnsafe) {
    warn("refusing cache entry {}: {}; compiling into a private directory instead", key,
         verdict.problem);
    result.status = Status::kUnsafe;
    return result;
  }
  if (verdict.access == Access::kOk) {
    try {
      result.artifact = artifact_from_files(verdict.files);
    } catch (const Error& e) {
      verdict.access = Access::kMissing;
      verdict.problem = e.what();
    }
  }
  if (verdict.access != Access::kOk) {
    warn("removing broken cache entry {}: {}; rebuilding", key, verdict.problem);
    discard_entry(layout, shard.fd.get(), entry.fd.get(), key);
    return result;
  }
  ::futimens(entry.fd.get(), nullptr);  // last use, for LRU eviction; fails harmlessly read-only
  result.status = Status::kHit;
  return result;
}

void DiskCache::store(const std::string& key, const CompiledArtifact& artifact) const {
  if (!is_key(key)) return;
  Layout layout = open_layout(root_, true);
  if (layout.access == Access::kUnsafe) {
    warn_once("refusing to use the disk cache: {}; the kernel is not stored", layout.problem);
    return;
  }
  if (layout.access != Access::kOk) {
    warn_once("store skipped: {}", layout.problem);
    return;
  }
  reclaim_abandoned_staging(layout.staging.get());

  const std::string shard_name = key.substr(0, 2);
  Opened shard =
      open_dir_at(layout.version.get(), shard_name.c_str(), "cache shard " + shard_name, true);
  if (shard.access != Access::kOk) {
    warn("store skipped for {}: {}", key, shard.problem);
    return;
  }
  struct stat existing {};
  if (::fstatat(shard.fd.get(), key.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0)
    return;  // published already

  const std::string staging_name =
      fmt::format("{}.{}.{}", key.substr(0, 16), ::getpid(), random_suffix());
  if (::mkdirat(layout.staging.get(), staging_name.c_str(), 0700) != 0) {
    warn("store skipped for {}: cannot create a staging directory: {}", key, std::strerror(errno));
    return;
  }
  UniqueFd staging(::openat(layout.staging.get(), staging_name.c_str(),
                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  // Held until we are done: tells reclaim_abandoned_staging in other processes we are alive.
  if (!staging || ::flock(staging.get(), LOCK_EX) != 0) {
    remove_tree_at(layout.staging.get(), staging_name.c_str());
    return;
  }

  std::string problem;
  bool written = true;
  json manifest = {{"format", kManifestFormat}, {"key", key}, {"files", json::object()}};
  for (const auto& [name, bytes] : artifact_to_files(artifact)) {
    if (!write_file_at(staging.get(), name, bytes, &problem)) {
      written = false;
      break;
    }
    manifest["files"][name] = {{"sha256", sha256_hex(bytes)}, {"size", bytes.size()}};
  }
  // The manifest goes last: an entry without one is incomplete by construction.
  written =
      written && write_file_at(staging.get(), kManifestFile, manifest.dump(2) + "\n", &problem);
  if (!written) {
    warn("store skipped for {}: {}", key, problem);
    remove_tree_at(layout.staging.get(), staging_name.c_str());
    return;
  }
  if (const char* pause_file = std::getenv("TILEJIT_TEST_PAUSE_IN_STORE");
      pause_file != nullptr && *pause_file) {
    // Test hook (test_cache_concurrency): announce that the entry is staged, then wait to be
    // killed before publishing it.
    UniqueFd marker(::open(pause_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    std::this_thread::sleep_for(std::chrono::seconds(30));
  }
  ::futimens(staging.get(), nullptr);
  if (::renameat(layout.staging.get(), staging_name.c_str(), shard.fd.get(), key.c_str()) != 0) {
    // EEXIST / ENOTEMPTY: another process published the same key first; its copy is as good.
    if (errno != EEXIST && errno != ENOTEMPTY) {
      warn("store skipped for {}: cannot publish the entry: {}", key, std::strerror(errno));
    }
    remove_tree_at(layout.staging.get(), staging_name.c_str());
    return;
  }
  staging.reset();
  if (max_bytes_ > 0) evict_to(max_bytes_);
}

void DiskCache::remove(const std::string& key) const {
  if (!is_key(key)) return;
  Layout layout = open_layout(root_, false);
  if (layout.access != Access::kOk) return;
  const std::string shard_name = key.substr(0, 2);
  Opened shard = open_dir_at(layout.version.get(), shard_name.c_str(), "cache shard", false);
  if (shard.access != Access::kOk) return;
  Opened entry = open_dir_at(shard.fd.get(), key.c_str(), "cache entry", false);
  if (entry.access != Access::kOk) return;
  discard_entry(layout, shard.fd.get(), entry.fd.get(), key);
}

std::vector<DiskCache::EntryInfo> DiskCache::list(bool verify) const {
  std::vector<EntryInfo> entries;
  Layout layout = open_layout(root_, false);
  if (layout.access == Access::kUnsafe) throw Error("cache: " + layout.problem);
  if (layout.access != Access::kOk) return entries;
  for (const std::string& shard_name : list_dir(layout.version.get())) {
    if (shard_name == kStagingDir || shard_name == kDependencyDir || shard_name == kPchDir)
      continue;
    Opened shard =
        open_dir_at(layout.version.get(), shard_name.c_str(), "cache shard " + shard_name, false);
    if (shard.access != Access::kOk) {
      EntryInfo info;
      info.key = shard_name;
      info.problem = shard.problem.empty() ? "unreadable" : shard.problem;
      entries.push_back(std::move(info));
      continue;
    }
    for (const std::string& key : list_dir(shard.fd.get())) {
      EntryInfo info;
      info.key = key;
      Opened entry = open_dir_at(shard.fd.get(), key.c_str(), "entry directory", false);
      if (entry.access != Access::kOk) {
        info.problem = entry.problem.empty() ? "unreadable" : entry.problem;
        entries.push_back(std::move(info));
        continue;
      }
      if (!is_key(key) || key.substr(0, 2) != shard_name) info.problem = "not a cache key";
      struct stat st {};
      if (::fstat(entry.fd.get(), &st) == 0) info.last_used_ns = mtime_ns(st);
      for (const std::string& name : list_dir(entry.fd.get())) {
        if (::fstatat(entry.fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
          info.bytes += st.st_size;
      }
      FileRead header = read_file_at(entry.fd.get(), "artifact.json", "artifact.json");
      if (header.access == Access::kOk) {
        const json parsed = json::parse(header.bytes, nullptr, false);
        if (parsed.is_object() && parsed.contains("backend") && parsed["backend"].is_string()) {
          info.backend = parsed["backend"].get<std::string>();
        }
      }
      FileRead program = read_file_at(entry.fd.get(), "program.json", "program.json");
      if (program.access == Access::kOk) {
        const json parsed = json::parse(program.bytes, nullptr, false);
        if (parsed.is_object() && parsed.contains("name") && parsed["name"].is_string()) {
          info.program_name = parsed["name"].get<std::string>();
        }
      }
      if (verify && info.problem.empty()) {
        ::flock(entry.fd.get(), LOCK_SH);
        Verdict verdict = verify_entry(entry.fd.get(), key);
        if (verdict.access == Access::kOk) {
          try {
            (void)artifact_from_files(verdict.files);
          } catch (const Error& e) {
            verdict.problem = e.what();
          }
        }
        info.problem = verdict.problem;
      }
      entries.push_back(std::move(info));
    }
  }
  std::sort(entries.begin(), entries.end(),
            [](const EntryInfo& a, const EntryInfo& b) { return a.last_used_ns > b.last_used_ns; });
  return entries;
}

size_t DiskCache::clear() const {
  Layout layout = open_layout(root_, false);
  if (layout.access == Access::kUnsafe) throw Error("cache: " + layout.problem);
  if (layout.access != Access::kOk) return 0;
  if (!layout.staging) {
    Opened staging = open_dir_at(layout.version.get(), kStagingDir, "staging directory", true);
    if (staging.access != Access::kOk) throw Error("cache: " + staging.problem);
    layout.staging = std::move(staging.fd);
  }
  size_t removed = 0;
  for (const std::string& shard_name : list_dir(layout.version.get())) {
    if (shard_name == kStagingDir || shard_name == kDependencyDir || shard_name == kPchDir)
      continue;
    Opened shard = open_dir_at(layout.version.get(), shard_name.c_str(), "cache shard", false);
    if (shard.access != Access::kOk) continue;
    for (const std::string& key : list_dir(shard.fd.get())) {
      Opened entry = open_dir_at(shard.fd.get(), key.c_str(), "cache entry", false);
      if (!entry.fd) continue;
      ::flock(entry.fd.get(), LOCK_EX);  // waits for readers to finish
      discard_entry(layout, shard.fd.get(), entry.fd.get(), key);
      ++removed;
    }
    ::unlinkat(layout.version.get(), shard_name.c_str(), AT_REMOVEDIR);  // fails while not empty
  }
  Opened dependencies =
      open_dir_at(layout.version.get(), kDependencyDir, "dependency records", false);
  if (dependencies.access == Access::kOk) {
    for (const std::string& name : list_dir(dependencies.fd.get())) {
      ::unlinkat(dependencies.fd.get(), name.c_str(), 0);
    }
  }
  reclaim_abandoned_staging(layout.staging.get());
  return removed;
}

std::optional<std::vector<std::string>> DiskCache::load_dependencies(
    const std::string& base_key) const {
  if (!is_key(base_key)) return std::nullopt;
  Layout layout = open_layout(root_, false);
  if (layout.access != Access::kOk) return std::nullopt;
  Opened dir = open_dir_at(layout.version.get(), kDependencyDir, "dependency records", false);
  if (dir.access != Access::kOk) return std::nullopt;
  const std::string name = base_key + ".json";
  FileRead file = read_file_at(dir.fd.get(), name, "dependency record " + name);
  if (file.access != Access::kOk) {
    if (file.access != Access::kMissing) warn("ignoring dependency record: {}", file.problem);
    return std::nullopt;
  }
  const json record = json::parse(file.bytes, nullptr, /*allow_exceptions=*/false);
  if (!record.is_object() || record.value("format", "") != kDependencyFormat ||
      record.value("base_key", "") != base_key || !record.contains("headers") ||
      !record["headers"].is_array() ||
      !std::all_of(record["headers"].begin(), record["headers"].end(),
                   [](const json& header) { return header.is_string(); })) {
    warn("removing broken dependency record {}", name);
    ::unlinkat(dir.fd.get(), name.c_str(), 0);
    return std::nullopt;
  }
  return record["headers"].get<std::vector<std::string>>();
}

void DiskCache::store_dependencies(const std::string& base_key,
                                   const std::vector<std::string>& headers) const {
  if (!is_key(base_key)) return;
  Layout layout = open_layout(root_, true);
  if (layout.access != Access::kOk) return;  // store() has warned, or will
  Opened dir = open_dir_at(layout.version.get(), kDependencyDir, "dependency records", true);
  if (dir.access != Access::kOk) {
    warn_once("dependency records not stored: {}", dir.problem);
    return;
  }
  // Written whole into staging, then renamed over the old record: readers see one or the other.
  const std::string staged = fmt::format("deps.{}.{}", ::getpid(), random_suffix());
  const json record = {{"format", kDependencyFormat}, {"base_key", base_key}, {"headers", headers}};
  std::string problem;
  if (!write_file_at(layout.staging.get(), staged, record.dump(2) + "\n", &problem)) {
    warn("dependency record not stored: {}", problem);
    ::unlinkat(layout.staging.get(), staged.c_str(), 0);
    return;
  }
  const std::string name = base_key + ".json";
  if (::renameat(layout.staging.get(), staged.c_str(), dir.fd.get(), name.c_str()) != 0) {
    warn("dependency record not stored: {}", std::strerror(errno));
    ::unlinkat(layout.staging.get(), staged.c_str(), 0);
  }
}

void DiskCache::evict_to(uint64_t max_bytes) const {
  std::vector<EntryInfo> entries = list(false);
  uint64_t total = 0;
  for (const EntryInfo& entry : entries) total += entry.bytes;
  if (total <= max_bytes) return;
  Layout layout = open_layout(root_, false);
  if (layout.access != Access::kOk || !layout.staging) return;
  // list() is newest first; evict from the back.
  for (auto it = entries.rbegin(); it != entries.rend() && total > max_bytes; ++it) {
    if (!is_key(it->key)) continue;
    const std::string shard_name = it->key.substr(0, 2);
    Opened shard = open_dir_at(layout.version.get(), shard_name.c_str(), "cache shard", false);
    if (shard.access != Access::kOk) continue;
    Opened entry = open_dir_at(shard.fd.get(), it->key.c_str(), "cache entry", false);
    if (entry.access != Access::kOk) continue;
    // Another process holds LOCK_SH while it reads this entry: leave it alone.
    if (::flock(entry.fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
    discard_entry(layout, shard.fd.get(), entry.fd.get(), it->key);
    total -= std::min(total, it->bytes);
  }
}

}  // namespace tilejit::detail
