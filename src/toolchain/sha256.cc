#include "toolchain/sha256.h"

// The low-level SHA256_* functions, deprecated since OpenSSL 3.0 but still provided (4.x too):
// the EVP interface fetches the digest from a provider, and its first use in a process loads
// the configuration and builds the algorithm tables, 0.5-0.9 ms measured on the dev machine,
// which was most of the first cache key of a fresh process; SHA256_Init costs ~10 us
// (docs/PERFORMANCE.md, "Fresh-process disk hits").
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <fmt/format.h>

#include "tilejit/errors.h"

namespace tilejit::detail {

struct Sha256::Context {
  SHA256_CTX sha;
};

Sha256::Sha256() : context_(new Context) {
  if (SHA256_Init(&context_->sha) != 1) {
    delete context_;
    throw Error("OpenSSL: cannot initialise SHA-256");
  }
}

Sha256::~Sha256() {
  delete context_;
}

Sha256& Sha256::update(std::string_view bytes) {
  SHA256_Update(&context_->sha, bytes.data(), bytes.size());
  return *this;
}

Sha256& Sha256::field(std::string_view name, std::string_view value) {
  const std::string header = fmt::format("{}:{}:{}:", name.size(), name, value.size());
  update(header);
  update(value);
  return *this;
}

std::string Sha256::hex() {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  constexpr unsigned length = SHA256_DIGEST_LENGTH;
  SHA256_Final(digest, &context_->sha);
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

}  // namespace tilejit::detail
