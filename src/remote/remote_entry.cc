#include "remote/remote_entry.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "artifact/artifact_io.h"
#include "cache/byte_io.h"
#include "cache/cache_archive.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "?";
  return name;
}

}  // namespace

std::string hmac_sha256(std::string_view secret, std::string_view bytes) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), mac,
           &length) == nullptr) {
    throw Error("remote cache: OpenSSL HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(mac), length);
}

std::string encode_remote_entry(const std::string& key, const CompiledArtifact& artifact,
                                std::string_view secret) {
  const nlohmann::json metadata = {
      {"producer", host_name()},
      {"pid", ::getpid()},
      {"created_unix", std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count()},
      {"backend", artifact.backend},
      {"program", artifact.program.name},
  };
  const std::string metadata_text = metadata.dump();
  const std::string payload = encode_files(artifact_to_files(artifact));
  std::string out(kRemoteEntryMagic);
  put_u32(&out, kRemoteEntryVersion);
  put_u32(&out, static_cast<uint32_t>(key.size()));
  out += key;
  put_u32(&out, static_cast<uint32_t>(metadata_text.size()));
  out += metadata_text;
  put_u64(&out, payload.size());
  out += payload;
  out += hmac_sha256(secret, out);
  return out;
}

DecodedEntry decode_remote_entry(std::string_view value, const std::string& key,
                                 std::string_view secret) {
  DecodedEntry result;
  if (value.size() < kRemoteEntryMagic.size() + 4 + kRemoteEntryMacBytes ||
      value.substr(0, kRemoteEntryMagic.size()) != kRemoteEntryMagic) {
    result.problem = "not a tilejit remote cache entry (bad magic)";
    return result;
  }
  ByteReader reader(value.substr(0, value.size() - kRemoteEntryMacBytes));
  std::string_view skipped;
  uint32_t version = 0;
  (void)reader.take(kRemoteEntryMagic.size(), &skipped);
  (void)reader.u32(&version);
  if (version != kRemoteEntryVersion) {
    result.problem =
        fmt::format("format version {} (this build reads {})", version, kRemoteEntryVersion);
    return result;
  }
  // The MAC before any other field: nothing unauthenticated is interpreted beyond its length.
  const std::string_view signed_bytes = value.substr(0, value.size() - kRemoteEntryMacBytes);
  const std::string expected = hmac_sha256(secret, signed_bytes);
  if (CRYPTO_memcmp(expected.data(), value.data() + signed_bytes.size(), kRemoteEntryMacBytes) !=
      0) {
    result.problem = "the HMAC does not match (corrupted, or written without this secret)";
    return result;
  }
  uint32_t key_length = 0, metadata_length = 0;
  uint64_t payload_length = 0;
  std::string_view stored_key, metadata, payload;
  if (!reader.u32(&key_length) || !reader.take(key_length, &stored_key) ||
      !reader.u32(&metadata_length) || !reader.take(metadata_length, &metadata) ||
      !reader.u64(&payload_length) || !reader.take(payload_length, &payload) || !reader.at_end()) {
    result.problem = "a field length runs past the value";
    return result;
  }
  if (stored_key != key) {
    // A valid entry copied under another key: signed, but not for this key.
    result.problem = fmt::format("it was written for key {}", stored_key.substr(0, 16));
    return result;
  }
  if (!nlohmann::json::accept(metadata)) {
    result.problem = "its metadata is not JSON";
    return result;
  }
  std::map<std::string, std::string> files;
  if (!decode_files(payload, &files)) {
    result.problem = "its payload is malformed";
    return result;
  }
  try {
    result.artifact = artifact_from_files(files);
  } catch (const Error& e) {
    result.problem = e.what();
  }
  return result;
}

}  // namespace tilejit::detail
