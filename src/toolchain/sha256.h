// SHA-256 through the system's OpenSSL: the digest of cache keys, cache entries' files and
// NVRTC precompiled-header keys.
#pragma once

#include <string>
#include <string_view>

namespace tilejit::detail {

// Incremental SHA-256 (OpenSSL). Fields are length-prefixed so that no two different
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

}  // namespace tilejit::detail
