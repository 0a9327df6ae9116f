#include "cache/key.h"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <system_error>

#include <fmt/format.h>

#include "tilejit/errors.h"

namespace tilejit::detail {
namespace fs = std::filesystem;

struct Sha256::Context {
  EVP_MD_CTX* md = nullptr;
};

Sha256::Sha256() : context_(new Context) {
  context_->md = EVP_MD_CTX_new();
  if (context_->md == nullptr || EVP_DigestInit_ex(context_->md, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(context_->md);
    delete context_;
    throw Error("OpenSSL: cannot initialise SHA-256");
  }
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(context_->md);
  delete context_;
}

Sha256& Sha256::update(std::string_view bytes) {
  EVP_DigestUpdate(context_->md, bytes.data(), bytes.size());
  return *this;
}

Sha256& Sha256::field(std::string_view name, std::string_view value) {
  const std::string header = fmt::format("{}:{}:{}:", name.size(), name, value.size());
  update(header);
  update(value);
  return *this;
}

std::string Sha256::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(context_->md, digest, &length);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * length, '0');
  for (unsigned i = 0; i < length; ++i) {
    out[2 * i] = kDigits[digest[i] >> 4];
    out[2 * i + 1] = kDigits[digest[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  return Sha256().update(bytes).hex();
}

std::vector<fs::path> user_include_dirs(const Program& program, const ResolvedOptions& options) {
  std::vector<fs::path> dirs(program.include_dirs.begin(), program.include_dirs.end());
  const std::vector<std::string>& flags = options.compile_flags;
  for (size_t i = 0; i < flags.size(); ++i) {
    const std::string& flag = flags[i];
    for (std::string_view prefix : {"--include-path=", "-isystem", "-I"}) {
      if (!flag.starts_with(prefix)) continue;
      std::string_view rest = std::string_view(flag).substr(prefix.size());
      if (!rest.empty()) {
        dirs.emplace_back(rest);
      } else if (i + 1 < flags.size()) {
        dirs.emplace_back(flags[++i]);
      }
      break;
    }
  }
  return dirs;
}

namespace {

// Hashes the relative path and contents of every regular file under `dir`, in sorted
// order. Which headers a source really includes depends on macros and include order, so
// every file is hashed: a change anywhere in a user include directory rebuilds.
void hash_include_dir(Sha256& sha, const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    sha.field("include_dir_missing", dir.string());
    return;
  }
  std::vector<fs::path> files;
  for (auto it =
           fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(it->path());
  }
  if (ec)
    throw Error(fmt::format("cache key: cannot list include directory '{}': {}", dir.string(),
                            ec.message()));
  std::sort(files.begin(), files.end());
  sha.field("include_dir", dir.string());
  for (const fs::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(fmt::format("cache key: cannot read header '{}'", file.string()));
    std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    sha.field("header", fs::relative(file, dir, ec).string());
    sha.field("header_sha256", sha256_hex(contents));
  }
}

}  // namespace

std::string compute_cache_key(const Program& program, const ResolvedOptions& options,
                              std::string_view toolchain_fingerprint, int artifact_format_version) {
  Sha256 sha;
  sha.field("key_format", "tilejit.cache-key/1");
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
  for (const fs::path& dir : user_include_dirs(program, options)) hash_include_dir(sha, dir);
  return sha.hex();
}

}  // namespace tilejit::detail
