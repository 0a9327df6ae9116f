#include "cache/cache_stats.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cache/disk_cache.h"
#include "options/options.h"

namespace tilejit::detail {
namespace {

constexpr const char* kStatsFile = "stats.json";
constexpr const char* kStatsFormat = "tilejit.cache-stats/1";

std::array<std::atomic<uint64_t>, kCacheEventCount>& counters() {
  static auto* values = new std::array<std::atomic<uint64_t>, kCacheEventCount>{};  // leaked
  return *values;
}

// Adds `counts` to <root>/stats.json under an exclusive flock. Best effort: stats never cost
// a failure.
void add_to_file(const std::filesystem::path& root,
                 const std::array<uint64_t, kCacheEventCount>& counts) {
  ::mkdir(root.c_str(), 0700);
  const std::string path = (root / kStatsFile).string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return;
  if (::flock(fd, LOCK_EX) == 0) {
    std::string text;
    char chunk[4096];
    ssize_t n;
    while ((n = ::read(fd, chunk, sizeof chunk)) > 0) text.append(chunk, static_cast<size_t>(n));
    nlohmann::json record = nlohmann::json::parse(text, nullptr, false);
    if (!record.is_object() || record.value("format", "") != kStatsFormat)
      record = {{"format", kStatsFormat}, {"counts", nlohmann::json::object()}};
    for (size_t i = 0; i < kCacheEventCount; ++i) {
      const char* name = cache_event_name(static_cast<CacheEvent>(i));
      nlohmann::json& slot = record["counts"][name];
      slot = (slot.is_number_unsigned() ? slot.get<uint64_t>() : 0) + counts[i];
    }
    const std::string out = record.dump(2) + "\n";
    if (::ftruncate(fd, 0) == 0 && ::lseek(fd, 0, SEEK_SET) == 0)
      (void)!::write(fd, out.data(), out.size());
  }
  ::close(fd);
}

void report_at_exit() {
  const std::array<uint64_t, kCacheEventCount> counts = cache_event_counts();
  uint64_t total = 0;
  for (uint64_t count : counts) total += count;
  if (total == 0) return;
  if (env_flag("TILELANG_VERBOSE")) {
    std::string line = "tilejit: cache:";
    for (size_t i = 0; i < kCacheEventCount; ++i)
      line += fmt::format(" {}={}", cache_event_name(static_cast<CacheEvent>(i)), counts[i]);
    line += "\n";
    (void)!::write(STDERR_FILENO, line.data(), line.size());
  }
  if (const std::optional<DiskCache> disk = DiskCache::from_env())
    add_to_file(disk->root(), counts);
}

}  // namespace

const char* cache_event_name(CacheEvent event) {
  switch (event) {
    case CacheEvent::kDiskHit:
      return "disk_hits";
    case CacheEvent::kRemoteHit:
      return "remote_hits";
    case CacheEvent::kMiss:
      return "misses";
    case CacheEvent::kRemoteRejected:
      return "remote_rejected";
    case CacheEvent::kLeaseWaited:
      return "leases_waited";
    case CacheEvent::kRemoteFailure:
      return "remote_failures";
  }
  return "?";
}

void count_cache_event(CacheEvent event) {
  static std::once_flag registered;
  std::call_once(registered, [] { std::atexit(report_at_exit); });
  counters()[static_cast<size_t>(event)].fetch_add(1, std::memory_order_relaxed);
}

std::array<uint64_t, kCacheEventCount> cache_event_counts() {
  std::array<uint64_t, kCacheEventCount> counts{};
  for (size_t i = 0; i < kCacheEventCount; ++i)
    counts[i] = counters()[i].load(std::memory_order_relaxed);
  return counts;
}

std::map<std::string, uint64_t> recorded_cache_stats(const std::filesystem::path& root) {
  std::map<std::string, uint64_t> stats;
  const int fd = ::open((root / kStatsFile).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return stats;
  ::flock(fd, LOCK_SH);
  std::string text;
  char chunk[4096];
  ssize_t n;
  while ((n = ::read(fd, chunk, sizeof chunk)) > 0) text.append(chunk, static_cast<size_t>(n));
  ::close(fd);
  const nlohmann::json record = nlohmann::json::parse(text, nullptr, false);
  if (!record.is_object() || !record.contains("counts") || !record["counts"].is_object())
    return stats;
  for (const auto& [name, value] : record["counts"].items()) {
    if (value.is_number_unsigned()) stats[name] = value.get<uint64_t>();
  }
  return stats;
}

void reset_recorded_cache_stats(const std::filesystem::path& root) {
  ::unlink((root / kStatsFile).c_str());
}

}  // namespace tilejit::detail
