#include "cache/key.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <optional>
#include <system_error>

#include <fmt/format.h>

#include "tilejit/errors.h"

namespace tilejit::detail {
namespace fs = std::filesystem;

namespace {

// Reads a whole file; nullopt when it cannot be opened (deleted since the build, say).
std::optional<std::string> read_whole_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

std::string compute_cache_key(const Program& program, const ResolvedOptions& options,
                              std::string_view toolchain_fingerprint, int artifact_format_version) {
  Sha256 sha;
  sha.field("key_format", "tilejit.cache-key/2");
  sha.field("artifact_format", std::to_string(artifact_format_version));
  sha.field("tilejit_version", TILEJIT_VERSION);
  sha.field("program", program.to_json());
  sha.field("backend", options.backend);
  sha.field("target", options.target.str());
  sha.field("target_host", options.target_host);
  for (const std::string& flag : options.compile_flags) sha.field("compile_flag", flag);
  for (const auto& [name, value] : options.pass_configs)
    sha.field("pass_config", name).field("=", value);
  for (int index : options.out_idx) sha.field("out_idx", std::to_string(index));
  sha.field("toolchain", toolchain_fingerprint);
  return sha.hex();
}

std::string key_with_headers(std::string_view base_key, const std::vector<fs::path>& include_dirs,
                             const std::vector<std::string>& headers) {
  Sha256 sha;
  sha.field("base_key", base_key);
  for (const std::string& header : headers) {
    sha.field("header", header);
    if (std::optional<std::string> contents = read_whole_file(header)) {
      sha.field("header_sha256", sha256_hex(*contents));
    } else {
      sha.field("header_missing", header);
    }
    // A file of the same relative path in an earlier directory would now be found first.
    const fs::path file(header);
    for (const fs::path& dir : include_dirs) {
      const fs::path relative = file.lexically_relative(dir);
      if (relative.empty() || *relative.begin() == "..") continue;
      for (const fs::path& earlier : include_dirs) {
        if (earlier == dir) break;
        std::error_code ec;
        if (fs::exists(earlier / relative, ec))
          sha.field("shadowed_by", (earlier / relative).string());
      }
      break;
    }
  }
  return sha.hex();
}

}  // namespace tilejit::detail
