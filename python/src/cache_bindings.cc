// The cache functions that par_compile's cluster mode needs (python/tilejit/_cluster.py):
// workers pack the entries they built, the caller unpacks them into its own disk cache.
#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <map>
#include <string>
#include <vector>

#include "bindings.h"
#include "cache/cache_archive.h"
#include "cache/cache_stats.h"
#include "cache/disk_cache.h"
#include "tilejit/errors.h"
#include "tilejit/kernel.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace tilejit::python {
namespace {

detail::DiskCache disk_or_raise(const char* what) {
  std::optional<detail::DiskCache> disk = detail::DiskCache::from_env();
  if (!disk)
    throw Error(std::string(what) + ": the disk cache is disabled (TILELANG_DISABLE_CACHE)");
  return *disk;
}

}  // namespace

void bind_cache(nb::module_& m) {
  m.def(
      "_cache_pack",
      [](const std::vector<std::string>& keys) {
        std::string archive;
        {
          nb::gil_scoped_release release;
          archive = detail::pack_cache_entries(disk_or_raise("cache pack"), keys);
        }
        return nb::bytes(archive.data(), archive.size());
      },
      "keys"_a, "The verified disk cache entries `keys` as one archive (cache_archive.h).");
  m.def(
      "_cache_pack_kernels",
      [](const std::vector<Kernel>& kernels) {
        std::string archive;
        {
          nb::gil_scoped_release release;
          archive = detail::pack_kernels(kernels);
        }
        return nb::bytes(archive.data(), archive.size());
      },
      "kernels"_a, "The artifacts of CompiledKernels, under their cache keys, as one archive.");
  m.def(
      "_cache_unpack",
      [](nb::bytes archive) {
        const std::string bytes(archive.c_str(), archive.size());
        nb::gil_scoped_release release;
        return detail::unpack_cache_entries(disk_or_raise("cache unpack"), bytes);
      },
      "archive"_a, "Checks an archive from _cache_pack, stores its entries; returns their keys.");
  m.def(
      "_cache_stats",
      [] {
        std::map<std::string, uint64_t> counts;
        const auto values = detail::cache_event_counts();
        for (size_t i = 0; i < values.size(); ++i)
          counts[detail::cache_event_name(static_cast<detail::CacheEvent>(i))] = values[i];
        return counts;
      },
      "This process's cache counts: disk_hits, remote_hits, misses, remote_rejected, "
      "leases_waited, remote_failures.");
}

}  // namespace tilejit::python
