// Toolchain fingerprints recorded in the disk cache, so that a fresh process keys a Program
// with a few stat() calls instead of loading NVRTC or running `cc --version` (docs/cache.md,
// "Toolchain records"). The trust rule is the header memo's (header_hashes.h): a record is
// used while every file it came from has the stat signature it had when it was probed.
//
//   <root>/v1/toolchains/<sha256 of the selector>.json
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tilejit::detail {

// What a probe of a toolchain found: the fingerprint, and every path whose state it came from
// (executables, libraries, directories searched, files whose absence mattered).
struct ToolchainProbe {
  std::string fingerprint;
  std::vector<std::string> files;
};

// The fingerprint for `selector` (what picks the toolchain: backend, target, the environment
// variables and paths that choose it; cheap to compute): the recorded one when a record for
// `selector` exists in the disk cache and every file it lists is unchanged, else probe()'s,
// which is then recorded (staged and renamed into place: concurrent writers leave one whole
// record). The binary containing tilejit is one of the files of every record. A record is
// written only when each file's last change lies HeaderHashes::kTrustAfterNs before the probe
// (a change during the probe could otherwise keep its signature); a malformed record is
// ignored with a warning and rewritten. Without a disk cache (TILELANG_DISABLE_CACHE) or
// without a selector, probe() runs every time.
std::string recorded_fingerprint(const std::optional<std::string>& selector,
                                 const std::function<ToolchainProbe()>& probe);

// For tests: how many probes recorded_fingerprint() ran in this process.
uint64_t toolchain_probes();

}  // namespace tilejit::detail
