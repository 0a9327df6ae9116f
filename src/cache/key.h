// The cache key: SHA-256 over everything that changes the compiled binary (docs/cache.md).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "options/options.h"
#include "tilejit/kernel.h"
#include "tilejit/program.h"
#include "toolchain/sha256.h"

namespace tilejit::detail {

// The key of everything but header contents: the canonical Program JSON (with the resolved
// out_idx), the binary-affecting options, target, `toolchain_fingerprint` and the artifact
// format. A Program without user include directories is cached under this key itself.
// `artifact_format_version` is a parameter only so that tests can show it is part of the key.
std::string compute_cache_key(const Program& program, const ResolvedOptions& options,
                              std::string_view toolchain_fingerprint,
                              int artifact_format_version = CompiledArtifact::kFormatVersion);

// The key of a Program with user include directories: `base_key` plus, for each header the
// compiler read from them (`headers`: absolute paths), its path and the SHA-256 of its
// contents (or that it is missing), and every file of the same relative path in an earlier
// include directory, which the compiler would now find first.
std::string key_with_headers(std::string_view base_key,
                             const std::vector<std::filesystem::path>& include_dirs,
                             const std::vector<std::string>& headers);

}  // namespace tilejit::detail
