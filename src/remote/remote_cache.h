// The remote cache tier (docs/cluster.md): a Redis server shared by a cluster, behind the local
// disk cache. Read path: memory -> disk -> remote -> build. Entries are framed and signed
// (remote_entry.h); a value that fails a check is a miss, counted and logged once, never
// loaded. The first writer of a key wins (SET NX). Before building a key no tier holds, a
// process takes a short compile lease (SET NX PX) so that N processes compiling one kernel
// cost one compile; the others wait for the entry (bounded), then build themselves.
//
// No method throws because of the server: down, slow or refusing, the tier switches itself
// off for a back-off interval and compiles go on locally.
//
// Environment: TILEJIT_REMOTE_CACHE (redis://host:port/db), TILEJIT_REMOTE_CACHE_SECRET (the
// secret, or file:PATH naming a file only this user can read), and the intervals
// TILEJIT_REMOTE_CACHE_TIMEOUT_MS, _BACKOFF_MS, _LEASE_MS.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "remote/resp_client.h"
#include "tilejit/kernel.h"

namespace tilejit::detail {

class RemoteCache {
 public:
  struct Settings {
    RedisAddress address;
    std::string secret;
    std::chrono::milliseconds timeout{1000};   // any one connect, request or reply
    std::chrono::milliseconds backoff{10000};  // the tier stays off this long after a failure
    std::chrono::milliseconds lease{60000};    // a compile lease's lifetime, and the longest wait
  };

  // The tier for `url` ("" = TILEJIT_REMOTE_CACHE; "off" = none), one per url and secret per
  // process. nullptr when none is configured or it cannot be used: a malformed URL, or no
  // usable secret (each warned once).
  static RemoteCache* from_url(const std::string& url);

  explicit RemoteCache(Settings settings);
  const Settings& settings() const { return settings_; }

  // What claim() found, and the lease it holds until publish() or destruction.
  class Claim {
   public:
    Claim(Claim&& other) noexcept;
    Claim& operator=(Claim&&) = delete;
    Claim(const Claim&) = delete;
    ~Claim();

    // A verified entry, from the server: store and load it instead of building.
    std::optional<CompiledArtifact> artifact;
    // Stores a freshly built artifact (first writer wins; a value that failed our checks is
    // replaced), then releases the lease.
    void publish(const CompiledArtifact& built);

   private:
    friend class RemoteCache;
    Claim(RemoteCache* cache, std::string key) : cache_(cache), key_(std::move(key)) {}
    void release();

    RemoteCache* cache_;
    std::string key_;
    std::string lease_token_;      // non-empty while we hold the compile lease
    std::string rejected_digest_;  // SHA-1 (Redis's) of a value that failed our checks
  };

  // Looks `key` up; on a miss takes its compile lease, or waits (at most settings().lease)
  // for the entry that the lease holder publishes.
  Claim claim(const std::string& key);

  // PING; for `tilejit cache stats`. Empty when the server answers, else the problem.
  std::string probe();

  // Redis key names (documented in docs/cluster.md).
  static std::string entry_name(const std::string& key);
  static std::string lease_name(const std::string& key);

 private:
  struct Fetched {
    std::optional<CompiledArtifact> artifact;
    std::string rejected_digest;
  };
  Fetched fetch(const std::string& key, bool* rejected_seen);
  bool available() const;
  // Runs `request` on a pooled connection. On failure, switches the tier off for the
  // back-off interval and throws RespFailure.
  RespReply request(const std::vector<std::string_view>& args);

  Settings settings_;
  std::mutex pool_mutex_;
  std::vector<RespConnection> pool_;
  std::atomic<int64_t> off_until_ns_{0};  // steady_clock; 0 = on
};

}  // namespace tilejit::detail
