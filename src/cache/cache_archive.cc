#include "cache/cache_archive.h"

#include <fmt/format.h>

#include "artifact/artifact_io.h"
#include "cache/byte_io.h"
#include "cache/cache_entry.h"
#include "cache/key.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

constexpr std::string_view kArchiveMagic = "TJPK";
constexpr uint32_t kArchiveVersion = 1;
constexpr size_t kDigestHex = 64;

std::string pack(const std::vector<std::pair<std::string, const CompiledArtifact*>>& entries) {
  std::string out(kArchiveMagic);
  put_u32(&out, kArchiveVersion);
  put_u32(&out, static_cast<uint32_t>(entries.size()));
  for (const auto& [key, artifact] : entries) {
    const std::string files = encode_files(artifact_to_files(*artifact));
    std::string record;
    put_u32(&record, static_cast<uint32_t>(key.size()));
    record += key;
    put_u64(&record, files.size());
    record += files;
    out += record;
    out += sha256_hex(record);
  }
  out += sha256_hex(out);
  return out;
}

}  // namespace

std::string encode_files(const std::map<std::string, std::string>& files) {
  std::string out;
  put_u32(&out, static_cast<uint32_t>(files.size()));
  for (const auto& [name, bytes] : files) {
    put_u32(&out, static_cast<uint32_t>(name.size()));
    out += name;
    put_u64(&out, bytes.size());
    out += bytes;
  }
  return out;
}

bool decode_files(std::string_view bytes, std::map<std::string, std::string>* files) {
  ByteReader reader(bytes);
  uint32_t count = 0;
  if (!reader.u32(&count)) return false;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t name_length = 0;
    uint64_t length = 0;
    std::string_view name, contents;
    if (!reader.u32(&name_length) || !reader.take(name_length, &name) || !reader.u64(&length) ||
        !reader.take(length, &contents)) {
      return false;
    }
    if (!files->emplace(std::string(name), std::string(contents)).second) return false;
  }
  return reader.at_end();
}

std::string pack_cache_entries(const DiskCache& disk, const std::vector<std::string>& keys) {
  std::vector<std::string> wanted = keys;
  if (wanted.empty()) {
    for (const DiskCache::EntryInfo& entry : disk.list(false)) wanted.push_back(entry.key);
  }
  std::vector<CompiledArtifact> artifacts;
  artifacts.reserve(wanted.size());
  for (const std::string& key : wanted) {
    DiskCache::Lookup found = disk.lookup(key);
    if (!found.artifact) {
      throw Error(
          fmt::format("cache pack: entry {} is not in {} or does not verify (compile the "
                      "Program first, or run `tilejit cache verify`)",
                      key, disk.root().string()));
    }
    artifacts.push_back(std::move(*found.artifact));
  }
  std::vector<std::pair<std::string, const CompiledArtifact*>> entries;
  for (size_t i = 0; i < wanted.size(); ++i) entries.emplace_back(wanted[i], &artifacts[i]);
  return pack(entries);
}

std::string pack_kernels(const std::vector<Kernel>& kernels) {
  std::vector<std::pair<std::string, const CompiledArtifact*>> entries;
  for (const Kernel& kernel : kernels) entries.emplace_back(kernel.cache_key(), &kernel.artifact());
  return pack(entries);
}

std::vector<std::string> unpack_cache_entries(const DiskCache& disk, std::string_view archive) {
  auto fail = [](const std::string& why) { return Error("cache unpack: " + why); };
  if (archive.size() < kArchiveMagic.size() + 8 + kDigestHex ||
      archive.substr(0, kArchiveMagic.size()) != kArchiveMagic) {
    throw fail("not a tilejit cache archive (bad magic)");
  }
  const std::string_view body = archive.substr(0, archive.size() - kDigestHex);
  if (sha256_hex(body) != archive.substr(body.size())) {
    throw fail("the archive's SHA-256 does not match (truncated or corrupted)");
  }
  ByteReader reader(body);
  std::string_view skipped;
  uint32_t version = 0, count = 0;
  (void)reader.take(kArchiveMagic.size(), &skipped);
  if (!reader.u32(&version) || version != kArchiveVersion) {
    throw fail(
        fmt::format("archive format version {} (this build reads {})", version, kArchiveVersion));
  }
  if (!reader.u32(&count)) throw fail("the entry count is missing");
  std::vector<std::pair<std::string, CompiledArtifact>> entries;
  for (uint32_t i = 0; i < count; ++i) {
    ByteReader record_start = reader;
    uint32_t key_length = 0;
    uint64_t files_length = 0;
    std::string_view key, files, digest;
    if (!reader.u32(&key_length) || !reader.take(key_length, &key) || !reader.u64(&files_length) ||
        !reader.take(files_length, &files) || !reader.take(kDigestHex, &digest)) {
      throw fail(fmt::format("entry {} runs past the end of the archive", i));
    }
    std::string_view record;
    (void)record_start.take(4 + key.size() + 8 + files.size(), &record);
    if (!cache_fs::is_key(key)) throw fail(fmt::format("entry {} has no valid key", i));
    if (sha256_hex(record) != digest) {
      throw fail(fmt::format("entry {} does not match its SHA-256", key));
    }
    std::map<std::string, std::string> decoded;
    if (!decode_files(files, &decoded)) throw fail(fmt::format("entry {} is malformed", key));
    try {
      entries.emplace_back(std::string(key), artifact_from_files(decoded));
    } catch (const Error& e) {
      throw fail(fmt::format("entry {}: {}", key, e.what()));
    }
  }
  if (!reader.at_end()) throw fail("bytes follow the last entry");
  std::vector<std::string> keys;
  for (const auto& [key, artifact] : entries) {
    disk.store(key, artifact);
    keys.push_back(key);
  }
  return keys;
}

}  // namespace tilejit::detail
