// `tilejit cache pack` / `unpack`: verified disk cache entries as one archive, for a container
// image or for par_compile's workers to hand their results back (python/tilejit/_cluster.py).
//
//   "TJPK", version (u32), entry count (u32), then per entry: key (u32 length + bytes), the
//   artifact's files (u64 length + encode_files bytes), the SHA-256 (hex, 64 bytes) of both;
//   then the SHA-256 (hex) of everything before it.
//
// The hashes catch truncation and corruption in transit, not tampering: an archive is code,
// to be taken only from where one would take the kernels themselves (docs/cluster.md).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cache/disk_cache.h"

namespace tilejit::detail {

// The verified entries `keys` of `disk` (every entry when `keys` is empty). Throws Error
// naming a key that is not in the cache or does not verify.
std::string pack_cache_entries(const DiskCache& disk, const std::vector<std::string>& keys);
// The artifacts of loaded Kernels, under their cache keys (a par_compile worker's results,
// whichever cache tier they came from).
std::string pack_kernels(const std::vector<Kernel>& kernels);

// Files (name -> bytes) as one length-prefixed string, and back; the second returns false on
// any malformation. Also the payload of a remote cache entry (remote/remote_entry.h).
std::string encode_files(const std::map<std::string, std::string>& files);
bool decode_files(std::string_view bytes, std::map<std::string, std::string>* files);

// Checks the whole archive (hashes, framing, every artifact) before storing anything into
// `disk`; throws Error saying what is wrong. Returns the keys it holds.
std::vector<std::string> unpack_cache_entries(const DiskCache& disk, std::string_view archive);

}  // namespace tilejit::detail
