#include "cache/key_memo.h"

#include <algorithm>
#include <mutex>
#include <system_error>
#include <unordered_map>

#include "cache/disk_cache.h"
#include "cache/header_hashes.h"
#include "cache/key.h"
#include "options/include_dirs.h"

namespace tilejit::detail {
namespace {

// The options that enter the base key (compute_cache_key), compared.
bool same_options(const ResolvedOptions& a, const ResolvedOptions& b) {
  return a.backend == b.backend && a.target == b.target && a.host_compiler == b.host_compiler &&
         a.out_idx == b.out_idx && a.pass_configs == b.pass_configs &&
         a.compile_flags == b.compile_flags;
}

// Remembers the base keys (key.h) of recently compiled Programs. Printing a Program as JSON
// dominates the cost of a key (tens of microseconds); comparing it with a remembered copy
// costs far less. Header contents are not part of the base key, so every Program is welcome.
class KeyMemo {
 public:
  static KeyMemo& global() {
    static KeyMemo* memo = new KeyMemo;  // leaked: used until the very end of the process
    return *memo;
  }

  std::string key_for(const Program& program, const ResolvedOptions& options,
                      const std::function<std::string()>& toolchain_fingerprint) {
    const size_t hash =
        std::hash<std::string>{}(program.source) ^ (std::hash<std::string>{}(program.name) << 1);
    {
      std::lock_guard lock(mutex_);
      auto [first, last] = entries_.equal_range(hash);
      for (auto it = first; it != last; ++it) {
        if (same_options(it->second.options, options) && it->second.program == program)
          return it->second.key;
      }
    }
    Program resolved = program;
    resolved.out_idx = options.out_idx;
    std::string key = compute_cache_key(resolved, options, toolchain_fingerprint());
    std::lock_guard lock(mutex_);
    if (entries_.size() >= kMaxEntries)
      entries_.clear();  // a bound, not a policy: misses only cost time
    entries_.emplace(hash, Entry{program, options, key});
    return key;
  }

 private:
  static constexpr size_t kMaxEntries = 4096;
  struct Entry {
    Program program;
    ResolvedOptions options;
    std::string key;
  };

  std::mutex mutex_;
  std::unordered_multimap<size_t, Entry> entries_;
};

// For Programs with user include directories: base key -> the headers their last build
// read, in this process (the disk cache keeps the same records across processes).
class DependencyMemo {
 public:
  static DependencyMemo& global() {
    static DependencyMemo* memo = new DependencyMemo;  // leaked, like KeyMemo
    return *memo;
  }

  std::optional<std::vector<std::string>> find(const std::string& base_key) const {
    std::lock_guard lock(mutex_);
    auto it = headers_.find(base_key);
    if (it == headers_.end()) return std::nullopt;
    return it->second;
  }
  void remember(const std::string& base_key, const std::vector<std::string>& headers) {
    std::lock_guard lock(mutex_);
    headers_[base_key] = headers;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::vector<std::string>> headers_;
};

// The header paths of a dependency record, after handing its hashes to the header memo.
std::vector<std::string> adopt_record(const std::vector<DiskCache::RecordedHeader>& record) {
  std::vector<std::string> headers;
  headers.reserve(record.size());
  for (const DiskCache::RecordedHeader& header : record) {
    if (header.hash) HeaderHashes::global().adopt(header.path, *header.hash);
    headers.push_back(header.path);
  }
  return headers;
}

// The dependency record of `headers`: each with the hash the header memo trusts, if any.
std::vector<DiskCache::RecordedHeader> record_of(const std::vector<std::string>& headers) {
  std::vector<DiskCache::RecordedHeader> record;
  record.reserve(headers.size());
  for (const std::string& header : headers)
    record.push_back({header, HeaderHashes::global().remembered(header)});
  return record;
}

// True when a header changed after `start`: the build may have read the old contents.
bool header_changed_since(const std::vector<std::string>& headers,
                          std::filesystem::file_time_type start) {
  return std::any_of(headers.begin(), headers.end(), [&](const std::string& header) {
    std::error_code ec;
    const auto modified = std::filesystem::last_write_time(header, ec);
    return ec || modified >= start;
  });
}

}  // namespace

CompileKey compile_key(const Program& program, const ResolvedOptions& options,
                       const std::function<std::string()>& toolchain_fingerprint) {
  CompileKey key;
  key.base = KeyMemo::global().key_for(program, options, toolchain_fingerprint);
  key.header_dirs = user_include_dirs(program, options);
  if (key.header_dirs.empty()) {
    key.full = key.base;
    return key;
  }
  std::optional<std::vector<std::string>> headers = DependencyMemo::global().find(key.base);
  if (headers) {
    key.full = key_with_headers(key.base, key.header_dirs, *headers);
    return key;
  }
  std::optional<DiskCache> disk = DiskCache::from_env();
  if (!disk) return key;
  const std::optional<std::vector<DiskCache::RecordedHeader>> record =
      disk->load_dependencies(key.base);
  if (!record) return key;
  headers = adopt_record(*record);
  DependencyMemo::global().remember(key.base, *headers);
  key.full = key_with_headers(key.base, key.header_dirs, *headers);
  // A header read again (changed, or not trusted when recorded): record its new hash so that
  // the next process need not read it either.
  std::vector<DiskCache::RecordedHeader> now = record_of(*headers);
  if (now != *record) disk->store_dependencies(key.base, now);
  return key;
}

std::optional<std::vector<std::string>> known_headers(const CompileKey& key) {
  if (key.header_dirs.empty()) return std::nullopt;
  return DependencyMemo::global().find(key.base);
}

BuiltKey key_of_build(const CompileKey& key, const std::vector<std::string>& dependencies,
                      std::filesystem::file_time_type start, const DiskCache* records) {
  if (key.header_dirs.empty()) return {key.base, true};
  BuiltKey built{key_with_headers(key.base, key.header_dirs, dependencies), true};
  if (header_changed_since(dependencies, start)) {
    built.storable = false;
  } else {
    DependencyMemo::global().remember(key.base, dependencies);
    if (records) records->store_dependencies(key.base, record_of(dependencies));
  }
  return built;
}

}  // namespace tilejit::detail
