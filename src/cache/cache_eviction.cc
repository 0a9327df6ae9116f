// The disk cache's maintenance: listing, clearing and LRU eviction (disk_cache.h).
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "artifact/artifact_io.h"
#include "cache/cache_entry.h"
#include "cache/disk_cache.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
using nlohmann::json;
using namespace cache_fs;

std::vector<DiskCache::EntryInfo> DiskCache::list(bool verify) const {
  std::vector<EntryInfo> entries;
  Layout layout = open_layout(root_, false);
  if (layout.access == Access::kUnsafe) throw Error("cache: " + layout.problem);
  if (layout.access != Access::kOk) return entries;
  for (const std::string& shard_name : list_dir(layout.version.get())) {
    if (shard_name == kStagingDir || shard_name == kDependencyDir || shard_name == kPchDir ||
        shard_name == kToolchainDir)
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
      std::map<std::string, std::string> named =
          peek_entry(entry.fd.get(), {kArtifactFile, kProgramFile});
      const auto string_field = [&](const char* file, const char* field) {
        const json parsed = json::parse(named[file], nullptr, false);
        return parsed.is_object() && parsed.contains(field) && parsed[field].is_string()
                   ? parsed[field].get<std::string>()
                   : std::string();
      };
      info.backend = string_field(kArtifactFile, "backend");
      info.program_name = string_field(kProgramFile, "name");
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
    if (shard_name == kStagingDir || shard_name == kDependencyDir || shard_name == kPchDir ||
        shard_name == kToolchainDir)
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
  for (const char* records : {kDependencyDir, kToolchainDir}) {
    Opened dir = open_dir_at(layout.version.get(), records, "cache records", false);
    if (dir.access != Access::kOk) continue;
    for (const std::string& name : list_dir(dir.fd.get()))
      ::unlinkat(dir.fd.get(), name.c_str(), 0);
  }
  reclaim_abandoned_staging(layout.staging.get());
  return removed;
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
