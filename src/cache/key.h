// The cache key: SHA-256 over everything that changes the compiled binary (docs/cache.md).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "tilejit/program.h"

namespace tilejit::detail {

// Incremental SHA-256 (OpenSSL EVP). Fields are length-prefixed so that no two different
// field sequences hash the same bytes.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Sha256& update(std::string_view bytes);
  Sha256& field(std::string_view name, std::string_view value);
  std::string hex();  // finishes the digest; call once

 private:
  struct Context;
  Context* context_;
};

std::string sha256_hex(std::string_view bytes);

// The directories the compiler searches for the Program's own headers: Program::include_dirs
// plus every -I/-isystem/--include-path directory in the resolved compile flags.
std::vector<std::filesystem::path> user_include_dirs(const Program& program,
                                                     const ResolvedOptions& options);

// `program` must carry the resolved out_idx. `toolchain_fingerprint` is the backend's.
// Reads every regular file under the user include directories (docs/cache.md says why all
// of them): the key changes when any header there changes.
// `artifact_format_version` is a parameter only so that tests can show it is part of the key.
std::string compute_cache_key(const Program& program, const ResolvedOptions& options,
                              std::string_view toolchain_fingerprint,
                              int artifact_format_version = CompiledArtifact::kFormatVersion);

}  // namespace tilejit::detail
