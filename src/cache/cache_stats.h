// Counters of the disk and remote cache tiers, per process, added at exit to a file beside the
// disk cache (<root>/stats.json) so that `tilejit cache stats` reports them across runs, and
// printed at exit under TILELANG_VERBOSE. Memory hits are not counted: that path stays free of
// shared writes (DESIGN.md §4).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace tilejit::detail {

enum class CacheEvent {
  kDiskHit,         // loaded from the local disk cache
  kRemoteHit,       // fetched from the remote tier (verified), stored on disk, loaded
  kMiss,            // no tier had it: built
  kRemoteRejected,  // a remote value failed a check (never loaded)
  kLeaseWaited,     // waited on another process's compile lease
  kRemoteFailure,   // the server was down, slow or refusing: the tier backed off
};
constexpr size_t kCacheEventCount = 6;

// Stable names, used in stats.json and printed by `tilejit cache stats`.
const char* cache_event_name(CacheEvent event);

// Counts one event; the first call registers the at-exit report.
void count_cache_event(CacheEvent event);
std::array<uint64_t, kCacheEventCount> cache_event_counts();  // this process, so far

// The counters recorded in `root`/stats.json by finished processes (empty when none).
std::map<std::string, uint64_t> recorded_cache_stats(const std::filesystem::path& root);
void reset_recorded_cache_stats(const std::filesystem::path& root);

}  // namespace tilejit::detail
