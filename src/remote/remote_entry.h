// The framing of a remote cache entry (docs/cluster.md): what the remote tier stores in Redis
// under a key, and the only bytes of a remote value it ever uses after checking them.
//
//   offset  size  field
//   0       4     magic "TJRC"
//   4       4     format version (little-endian u32), kRemoteEntryVersion
//   8       4     key length n (u32), then n bytes: the full cache key
//   12+n    4     metadata length m (u32), then m bytes: JSON (producer host, time, backend)
//   ...     8     payload length p (u64), then p bytes: the artifact's files
//   (cache/cache_archive.h: encode_files) end-32  32    HMAC-SHA256 under the cluster secret over
//   every byte before it
//
// A content hash would not do: anyone who can write to the server could store their own
// library with its own hash under our key. The MAC binds the bytes, the key and the
// metadata to a holder of the secret.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "tilejit/kernel.h"

namespace tilejit::detail {

constexpr std::string_view kRemoteEntryMagic = "TJRC";
constexpr uint32_t kRemoteEntryVersion = 1;
constexpr size_t kRemoteEntryMacBytes = 32;

std::string hmac_sha256(std::string_view secret, std::string_view bytes);

std::string encode_remote_entry(const std::string& key, const CompiledArtifact& artifact,
                                std::string_view secret);

struct DecodedEntry {
  std::optional<CompiledArtifact> artifact;  // set only when every check passed
  std::string problem;                       // why not, otherwise
};
// Checks magic, version, MAC (constant time), the repeated key and every length, then builds
// the artifact from the payload.
DecodedEntry decode_remote_entry(std::string_view value, const std::string& key,
                                 std::string_view secret);

}  // namespace tilejit::detail
