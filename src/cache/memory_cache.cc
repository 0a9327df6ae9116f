#include "cache/memory_cache.h"

#include <exception>

namespace tilejit::detail {

MemoryCache& MemoryCache::global() {
  // Leaked on purpose: Kernels hold dlopen'd libraries whose unloading at exit would race
  // with other static destructors and with threads still calling kernels.
  static MemoryCache* cache = new MemoryCache;
  return *cache;
}

Kernel MemoryCache::get_or_build(const std::string& key, const std::function<Kernel()>& build,
                                 bool* built) {
  std::promise<Kernel> promise;
  std::shared_future<Kernel> future;
  bool owner = false;
  {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = entries_.try_emplace(key);
    if (inserted) {
      it->second = promise.get_future().share();
      owner = true;
    }
    future = it->second;
  }
  if (built != nullptr) *built = owner;
  if (!owner) return future.get();  // waits, outside the lock, for the build in flight

  try {
    promise.set_value(build());
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      entries_.erase(key);
    }
    promise.set_exception(std::current_exception());
  }
  return future.get();
}

std::optional<Kernel> MemoryCache::find(const std::string& key) const {
  std::shared_future<Kernel> future;
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    future = it->second;
  }
  return future.get();
}

void MemoryCache::insert(const std::string& key, const Kernel& kernel) {
  std::promise<Kernel> ready;
  ready.set_value(kernel);
  std::lock_guard lock(mutex_);
  entries_.try_emplace(key, ready.get_future().share());
}

size_t MemoryCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

void MemoryCache::clear() {
  std::lock_guard lock(mutex_);
  entries_.clear();
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace tilejit::detail
