#include "cache/key.h"

#include <fcntl.h>

#include <algorithm>
#include <optional>
#include <system_error>

#include <fmt/format.h>

#include "cache/header_hashes.h"
#include "tilejit/errors.h"
#include "toolchain/unique_fd.h"

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
  // Each directory opened once, as the compiler would find it now; headers are stat-ed from
  // it (stat_signature_at). One that cannot be opened has no headers to find: -1, and its
  // headers are stat-ed by path, which fails as the compiler's search would.
  std::vector<UniqueFd> dir_fds;
  dirs.reserve(include_dirs.size());
  dir_fds.reserve(include_dirs.size());
  for (const fs::path& dir : include_dirs) {
    std::string text = dir.string();
    while (!text.empty() && text.back() == '/') text.pop_back();
    dir_fds.emplace_back(
        ::open(text.empty() ? "/" : text.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    dirs.push_back(std::move(text));
  }
  Sha256 sha;
  sha.field("base_key", base_key);
  for (const std::string& header : headers) {
    sha.field("header", header);
    // Plain string operations: this runs for every header on every memory hit, where
    // std::filesystem's path splitting cost more than the stat() calls.
    size_t in_dir = dirs.size();
    for (size_t i = 0; i < dirs.size(); ++i) {
      const std::string& dir = dirs[i];
      if (header.size() > dir.size() + 1 && header.starts_with(dir) && header[dir.size()] == '/') {
        in_dir = i;
        break;
      }
    }
    // Below its directory: what follows the directory and its '/'.
    const char* relative =
        in_dir < dirs.size() ? header.c_str() + dirs[in_dir].size() + 1 : nullptr;
    const bool from_dir = relative != nullptr && dir_fds[in_dir];
    // The memo reads the file only when its stat signature changed (header_hashes.h).
    if (std::optional<std::string> hash =
            from_dir ? HeaderHashes::global().sha256(header, dir_fds[in_dir].get(), relative)
                     : HeaderHashes::global().sha256(header)) {
      sha.field("header_sha256", *hash);
    } else {
      sha.field("header_missing", header);
    }
    // A file of the same relative path in an earlier directory would now be found first.
    for (size_t j = 0; relative != nullptr && j < in_dir; ++j) {
      const bool shadowed = dir_fds[j] ? stat_signature_at(dir_fds[j].get(), relative).has_value()
                                       : stat_signature(dirs[j] + "/" + relative).has_value();
      if (shadowed) sha.field("shadowed_by", dirs[j] + "/" + relative);
    }
  }
  return sha.hex();
}

}  // namespace tilejit::detail
