// The cache key of one compile, from a Program and its resolved options: the base key
// (key.h) remembered per Program, the user include directories, and the headers the last
// build read, from this process's memo or the disk cache's dependency record. The one home
// of that logic; compile() adds the toolchain fingerprint, the memory cache, build and load.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "options/options.h"
#include "tilejit/program.h"

namespace tilejit::detail {

class DiskCache;

struct CompileKey {
  std::string base;                                // compute_cache_key: all but header contents
  std::vector<std::filesystem::path> header_dirs;  // user include directories, search order
  // The full key: `base`, or with header contents when there are header_dirs. Unknown
  // (nullopt) while no build of this Program has recorded which headers it reads.
  std::optional<std::string> full;
};

// The key of `program` (out_idx and all from `options`, which are resolved). Calls
// `toolchain_fingerprint` only when the base key is not remembered from an earlier call (with
// an equal Program and equal binary-affecting options). When the headers are unknown in this
// process, reads the disk cache's dependency record (DiskCache::from_env), if any.
CompileKey compile_key(const Program& program, const ResolvedOptions& options,
                       const std::function<std::string()>& toolchain_fingerprint);

// The headers the last build of this key's Program read, as remembered in this process;
// nullopt when unknown (never built or recorded here, or without header_dirs).
std::optional<std::vector<std::string>> known_headers(const CompileKey& key);

// The key an artifact built for `key` is filed under, given the headers the build read
// (`dependencies`, CompiledArtifact::dependencies) and when it started.
struct BuiltKey {
  std::string key;
  // False when a header changed after `start`: the build may have read the old contents, so
  // the artifact must not be stored under the key of the new ones, and nothing is recorded.
  bool storable = true;
};
// Remembers which headers the build read (and, with `records`, stores that as the disk
// cache's dependency record) unless one changed since `start`.
BuiltKey key_of_build(const CompileKey& key, const std::vector<std::string>& dependencies,
                      std::filesystem::file_time_type start, const DiskCache* records);

}  // namespace tilejit::detail
