#include "cache/key.h"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <optional>
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
