#include "cache/disk_cache.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "artifact/artifact_io.h"
#include "cache/cache_entry.h"
#include "cache/cache_files.h"
#include "options/options.h"
#include "tilejit/errors.h"
#include "toolchain/unique_fd.h"

namespace tilejit::detail {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace cache_fs;

namespace {

// Format 3 (<base key>.deps) is lines of text: a new process's first hit of a TileLang kernel
// spent ~0.1 ms parsing the JSON of format 2, which had each header's hash and stat signature
// (<base key>.json); format 1 there listed paths only. Those two are still read, and replaced
// by a record of format 3.
constexpr std::string_view kDependencyFormat = "tilejit.dependencies/3";
constexpr const char* kJsonDependencyFormat = "tilejit.dependencies/2";
constexpr const char* kPathsOnlyDependencyFormat = "tilejit.dependencies/1";
constexpr const char* kDependencySuffix = ".deps";
constexpr const char* kJsonDependencySuffix = ".json";

// A record of format 3:
//   tilejit.dependencies/3
//   base_key <base key>
//   <sha256> <device> <inode> <size> <mtime_ns> <ctime_ns> <path>     a header with its hash
//   - <path>                                                          a header without one
// The path is the rest of the line (it may hold spaces; one holding a newline is not recorded).
std::string dependency_text(const std::string& base_key,
                            const std::vector<DiskCache::RecordedHeader>& headers) {
  std::string text = fmt::format("{}\nbase_key {}\n", kDependencyFormat, base_key);
  for (const DiskCache::RecordedHeader& header : headers) {
    if (!header.hash) {
      text += fmt::format("- {}\n", header.path);
      continue;
    }
    const FileSignature& signature = header.hash->signature;
    text += fmt::format("{} {} {} {} {} {} {}\n", header.hash->sha256, signature.device,
                        signature.inode, signature.size, signature.mtime_ns, signature.ctime_ns,
                        header.path);
  }
  return text;
}

// The headers of a record of format 3 for `base_key`; nullopt when `text` is not one.
std::optional<std::vector<DiskCache::RecordedHeader>> parse_dependency_text(
    std::string_view text, const std::string& base_key) {
  const auto next_line = [&](std::string_view* line) {
    const size_t end = text.find('\n');
    if (end == std::string_view::npos) return false;
    *line = text.substr(0, end);
    text.remove_prefix(end + 1);
    return true;
  };
  // The next space-separated field of `line`, consumed with its space.
  const auto field = [](std::string_view* line) {
    const size_t end = line->find(' ');
    const std::string_view value = line->substr(0, end);
    line->remove_prefix(end == std::string_view::npos ? line->size() : end + 1);
    return value;
  };
  const auto number = [&](std::string_view* line, auto* value) {
    const std::string_view digits = field(line);
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), *value);
    return error == std::errc() && end == digits.data() + digits.size() && !digits.empty();
  };
  std::string_view line;
  if (!next_line(&line) || line != kDependencyFormat || !next_line(&line) ||
      line != "base_key " + base_key) {
    return std::nullopt;
  }
  std::vector<DiskCache::RecordedHeader> headers;
  while (!text.empty()) {
    if (!next_line(&line)) return std::nullopt;  // the last line lacks its newline: truncated
    const std::string_view sha256 = field(&line);
    DiskCache::RecordedHeader header;
    if (sha256 != "-") {
      FileSignature signature;
      if (!is_key(sha256) || !number(&line, &signature.device) ||
          !number(&line, &signature.inode) || !number(&line, &signature.size) ||
          !number(&line, &signature.mtime_ns) || !number(&line, &signature.ctime_ns)) {
        return std::nullopt;
      }
      header.hash = HeaderHash{signature, std::string(sha256)};
    }
    if (line.empty()) return std::nullopt;
    header.path = std::string(line);
    headers.push_back(std::move(header));
  }
  return headers;
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

// The headers of a dependency record of `format`; nullopt when `headers` is not a list of them.
std::optional<std::vector<DiskCache::RecordedHeader>> recorded_headers(const std::string& format,
                                                                       const json& headers) {
  if (!headers.is_array()) return std::nullopt;
  std::vector<DiskCache::RecordedHeader> recorded;
  for (const json& header : headers) {
    if (format == kPathsOnlyDependencyFormat) {
      if (!header.is_string()) return std::nullopt;
      recorded.push_back({header.get<std::string>(), std::nullopt});
      continue;
    }
    if (format != kJsonDependencyFormat || !header.is_object() || !header.contains("path") ||
        !header["path"].is_string()) {
      return std::nullopt;
    }
    DiskCache::RecordedHeader entry{header["path"].get<std::string>(), std::nullopt};
    if (header.contains("sha256")) {
      const auto is_count = [&](const char* field) {
        return header.contains(field) && header[field].is_number_unsigned();
      };
      const auto is_time = [&](const char* field) {
        return header.contains(field) && header[field].is_number_integer();
      };
      if (!header["sha256"].is_string() || !is_count("device") || !is_count("inode") ||
          !is_count("size") || !is_time("mtime_ns") || !is_time("ctime_ns")) {
        return std::nullopt;
      }
      entry.hash = HeaderHash{
          FileSignature{header["device"].get<uint64_t>(), header["inode"].get<uint64_t>(),
                        header["size"].get<uint64_t>(), header["mtime_ns"].get<int64_t>(),
                        header["ctime_ns"].get<int64_t>()},
          header["sha256"].get<std::string>()};
    }
    recorded.push_back(std::move(entry));
  }
  return recorded;
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

bool DiskCache::holds_entry(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / kEntryFile, ec);
}

DiskCache::Entry DiskCache::read_entry(const fs::path& dir) {
  const std::string what = "cache entry";
  Opened opened = open_dir_at(AT_FDCWD, dir.c_str(), what, false);
  if (opened.access != Access::kOk) {
    throw Error(opened.problem.empty() ? fmt::format("{} does not exist", what) : opened.problem);
  }
  Verdict verdict = verify_entry(opened.fd.get(), "");
  if (verdict.access != Access::kOk) throw Error(fmt::format("{}: {}", what, verdict.problem));
  return Entry{std::move(verdict.key), artifact_from_files(std::move(verdict.files))};
}

DiskCache::Lookup DiskCache::lookup(const std::string& key, const Program* keyed_program) const {
  Lookup result;
  if (!is_key(key)) return result;
  const VersionDir version = open_version_for_reading(root_);
  if (version.access == Access::kUnsafe) {
    warn_once(
        "refusing to use the disk cache: {}. dlopen of cached code is code execution; compiling "
        "into a private directory instead (fix the permissions or set TILELANG_CACHE_DIR)",
        version.problem);
    result.status = Status::kUnsafe;
    return result;
  }
  if (version.access != Access::kOk) return result;
  const std::string shard_name = key.substr(0, 2);
  Opened shard = open_dir_at(version.get(), shard_name.c_str(), "cache shard " + shard_name, false);
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

  // With the Program at hand, its program.json is not needed (artifact_from_files).
  Verdict verdict =
      verify_entry(entry.fd.get(), key, keyed_program ? kProgramFile : std::string_view());
  if (verdict.access == Access::kUnsafe) {
    warn("refusing cache entry {}: {}; compiling into a private directory instead", key,
         verdict.problem);
    result.status = Status::kUnsafe;
    return result;
  }
  if (verdict.access == Access::kOk) {
    try {
      result.artifact = artifact_from_files(std::move(verdict.files), keyed_program);
    } catch (const Error& e) {
      verdict.access = Access::kMissing;
      verdict.problem = e.what();
    }
  }
  if (verdict.access != Access::kOk) {
    warn("removing broken cache entry {}: {}; rebuilding", key, verdict.problem);
    discard_entry(open_layout(root_, false), shard.fd.get(), entry.fd.get(), key);
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
  if (!write_file_at(staging.get(), kEntryFile, encode_entry(key, artifact_to_files(artifact)),
                     &problem)) {
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

std::optional<std::vector<DiskCache::RecordedHeader>> DiskCache::load_dependencies(
    const std::string& base_key) const {
  if (!is_key(base_key)) return std::nullopt;
  const VersionDir version = open_version_for_reading(root_);
  if (version.access != Access::kOk) return std::nullopt;
  Opened dir = open_dir_at(version.get(), kDependencyDir, "dependency records", false);
  if (dir.access != Access::kOk) return std::nullopt;
  const auto read = [&](const std::string& name) {
    FileRead file = read_file_at(dir.fd.get(), name, "dependency record " + name);
    if (file.access != Access::kOk && file.access != Access::kMissing)
      warn("ignoring dependency record: {}", file.problem);
    return file;
  };
  const auto remove_broken = [&](const std::string& name) {
    warn("removing broken dependency record {}", name);
    ::unlinkat(dir.fd.get(), name.c_str(), 0);
  };
  const std::string name = base_key + kDependencySuffix;
  FileRead file = read(name);
  if (file.access == Access::kOk) {
    std::optional<std::vector<RecordedHeader>> headers =
        parse_dependency_text(file.bytes, base_key);
    if (!headers) remove_broken(name);
    return headers;
  }
  if (file.access != Access::kMissing) return std::nullopt;

  // A record of format 1 or 2, written by an earlier tilejit: read, then replaced by format 3.
  const std::string json_name = base_key + kJsonDependencySuffix;
  file = read(json_name);
  if (file.access != Access::kOk) return std::nullopt;
  const json record = json::parse(file.bytes, nullptr, /*allow_exceptions=*/false);
  std::optional<std::vector<RecordedHeader>> headers;
  if (record.is_object() && record.value("base_key", "") == base_key &&
      record.contains("headers")) {
    headers = recorded_headers(record.value("format", ""), record["headers"]);
  }
  if (!headers) {
    remove_broken(json_name);
    return headers;
  }
  store_dependencies(base_key, *headers);
  ::unlinkat(dir.fd.get(), json_name.c_str(), 0);
  return headers;
}

void DiskCache::store_dependencies(const std::string& base_key,
                                   const std::vector<RecordedHeader>& headers) const {
  if (!is_key(base_key)) return;
  if (std::any_of(headers.begin(), headers.end(), [](const RecordedHeader& header) {
        return header.path.empty() || header.path.find('\n') != std::string::npos;
      })) {
    return;  // not representable in a line; without a record, the next process builds
  }
  Layout layout = open_layout(root_, true);
  if (layout.access != Access::kOk) return;  // store() has warned, or will
  Opened dir = open_dir_at(layout.version.get(), kDependencyDir, "dependency records", true);
  if (dir.access != Access::kOk) {
    warn_once("dependency records not stored: {}", dir.problem);
    return;
  }
  // Written whole into staging, then renamed over the old record: readers see one or the other.
  const std::string staged = fmt::format("deps.{}.{}", ::getpid(), random_suffix());
  std::string problem;
  if (!write_file_at(layout.staging.get(), staged, dependency_text(base_key, headers), &problem)) {
    warn("dependency record not stored: {}", problem);
    ::unlinkat(layout.staging.get(), staged.c_str(), 0);
    return;
  }
  const std::string name = base_key + kDependencySuffix;
  if (::renameat(layout.staging.get(), staged.c_str(), dir.fd.get(), name.c_str()) != 0) {
    warn("dependency record not stored: {}", std::strerror(errno));
    ::unlinkat(layout.staging.get(), staged.c_str(), 0);
  }
}

}  // namespace tilejit::detail