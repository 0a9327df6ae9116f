#include "cache/key.h"

#include <algorithm>
#include <optional>
#include <system_error>

#include <fmt/format.h>

#include "cache/header_hashes.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace fs = std::filesystem;

std::string compute_cache_key(const Program& program, const ResolvedOptions& options,
                              std::string_view toolchain_fingerprint, int artifact_format_version) {
  Sha256 sha;
  // Format 3: entries are one file (cache_entry.h), which a tilejit that wrote format 1's
  // manifest and files would take for broken entries, and the other way round.
  sha.field("key_format", "tilejit.cache-key/3");
  sha.field("artifact_format", std::to_string(artifact_format_version));
  sha.field("tilejit_version", TILEJIT_VERSION);
  sha.field("program", program.to_json());
  sha.field("backend", options.backend);
  sha.field("target", options.target.str());
  sha.field("host_compiler", options.host_compiler);
  for (const std::string& flag : options.compile_flags) sha.field("compile_flag", flag);
  for (const auto& [name, value] : options.pass_configs)
    sha.field("pass_config", name).field("=", value);
  for (int index : options.out_idx) sha.field("out_idx", std::to_string(index));
  sha.field("toolchain", toolchain_fingerprint);
  return sha.hex();
}

std::string key_with_headers(std::string_view base_key, const std::vector<fs::path>& include_dirs,
                             const std::vector<std::string>& headers) {
  // The directories as strings without a trailing '/' (they are absolute and normal, as are
  // the headers).
  std::vector<std::string> dirs;
  dirs.reserve(include_dirs.size());
  for (const fs::path& dir : include_dirs) {
    std::string text = dir.string();
    while (!text.empty() && text.back() == '/') text.pop_back();
    dirs.push_back(std::move(text));
  }
  Sha256 sha;
  sha.field("base_key", base_key);
  for (const std::string& header : headers) {
    sha.field("header", header);
    // The memo reads the file only when its stat signature changed (header_hashes.h).
    if (std::optional<std::string> hash = HeaderHashes::global().sha256(header)) {
      sha.field("header_sha256", *hash);
    } else {
      sha.field("header_missing", header);
    }
    // A file of the same relative path in an earlier directory would now be found first.
    // Plain string operations: this runs for every header on every memory hit, where
    // std::filesystem's path splitting cost more than the stat() calls.
    for (size_t i = 0; i < dirs.size(); ++i) {
      const std::string& dir = dirs[i];
      if (header.size() <= dir.size() + 1 || !header.starts_with(dir) || header[dir.size()] != '/')
        continue;
      const std::string_view relative = std::string_view(header).substr(dir.size());
      for (size_t j = 0; j < i; ++j) {
        const std::string earlier = dirs[j] + std::string(relative);
        if (stat_signature(earlier)) sha.field("shadowed_by", earlier);
      }
      break;
    }
  }
  return sha.hex();
}

}  // namespace tilejit::detail
