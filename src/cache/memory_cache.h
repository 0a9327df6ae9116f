// The in-process cache: cache key -> loaded Kernel. The lock is held only to look up or
// insert; a compile runs outside it, and concurrent requests for one key wait on the single
// compile in flight for it (a shared future) instead of compiling again.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "tilejit/kernel.h"

namespace tilejit::detail {

class MemoryCache {
 public:
  static MemoryCache& global();

  // Returns the Kernel cached for `key`, or builds it with `build` (outside the lock) and
  // caches it. `*built` is true only in the one call that ran `build`. When `build` throws,
  // every caller waiting for that key gets the same exception and nothing is cached, so a
  // later call tries again.
  Kernel get_or_build(const std::string& key, const std::function<Kernel()>& build, bool* built);

  std::optional<Kernel> find(const std::string& key) const;
  // Files an already built Kernel under another key too (no-op when the key has one).
  void insert(const std::string& key, const Kernel& kernel);
  size_t size() const;
  void clear();
  // Changes on every clear(): caches layered above this one (compile()'s per-thread memo)
  // compare it to drop what they remembered before the clear.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  std::atomic<uint64_t> generation_{0};
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_future<Kernel>> entries_;
};

}  // namespace tilejit::detail
