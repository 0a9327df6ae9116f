// A cache entry's manifest and its verification: every file an entry holds is listed in
// manifest.json with its size and SHA-256, and read once, so the bytes verified are the bytes
// used. Internal to src/cache/.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "cache/cache_files.h"

namespace tilejit::detail::cache_fs {

inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kManifestFormat = "tilejit.cache-entry/1";

// A key is 64 lowercase hex digits (SHA-256): anything else never names a path.
bool is_key(std::string_view text);

struct Verdict {
  Access access = Access::kOk;  // kOk, kMissing (= incomplete or corrupt), kUnsafe, kError
  std::string problem;
  std::map<std::string, std::string> files;  // verified contents, manifest excluded
};

// Reads the manifest of entry directory `entry` and every file it lists but `unread`, checking
// size and SHA-256 and that the manifest names `key`. A file the caller will not use is left
// unread (compile() has the Program its key covers, so it skips program.json): what is not
// read is neither trusted nor used, and `tilejit cache verify` still checks it.
Verdict verify_entry(int entry, const std::string& key, std::string_view unread = {});

// The manifest.json of an entry holding `files` under `key`.
std::string manifest_for(const std::string& key, const std::map<std::string, std::string>& files);

}  // namespace tilejit::detail::cache_fs
