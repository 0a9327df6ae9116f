#include "cache/cache_entry.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "toolchain/sha256.h"

namespace tilejit::detail::cache_fs {
using nlohmann::json;

bool is_key(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Verdict verify_entry(int entry, const std::string& key, std::string_view unread) {
  Verdict verdict;
  FileRead manifest = read_file_at(entry, kManifestFile, "manifest.json");
  if (manifest.access != Access::kOk) {
    verdict.access = manifest.access;
    verdict.problem = manifest.problem;
    return verdict;
  }
  try {
    const json parsed = json::parse(manifest.bytes);
    if (parsed.at("format").get<std::string>() != kManifestFormat ||
        parsed.at("key").get<std::string>() != key) {
      verdict.access = Access::kMissing;
      verdict.problem = "manifest.json names another format or key";
      return verdict;
    }
    for (const auto& [name, expected] : parsed.at("files").items()) {
      if (name.find('/') != std::string::npos || name == kManifestFile || name.starts_with(".")) {
        verdict.access = Access::kUnsafe;
        verdict.problem = fmt::format("manifest.json lists an invalid file name '{}'", name);
        return verdict;
      }
      if (name == unread) continue;
      FileRead file = read_file_at(entry, name, name);
      if (file.access != Access::kOk) {
        verdict.access = file.access;
        verdict.problem = file.problem;
        return verdict;
      }
      if (file.bytes.size() != expected.at("size").get<uint64_t>() ||
          sha256_hex(file.bytes) != expected.at("sha256").get<std::string>()) {
        verdict.access = Access::kMissing;
        verdict.problem =
            fmt::format("{} does not match its recorded SHA-256 (truncated or corrupted)", name);
        return verdict;
      }
      verdict.files.emplace(name, std::move(file.bytes));
    }
  } catch (const json::exception& e) {
    verdict.access = Access::kMissing;
    verdict.problem = fmt::format("manifest.json is malformed: {}", e.what());
  }
  return verdict;
}

std::string manifest_for(const std::string& key, const std::map<std::string, std::string>& files) {
  json manifest = {{"format", kManifestFormat}, {"key", key}, {"files", json::object()}};
  for (const auto& [name, bytes] : files) {
    manifest["files"][name] = {{"sha256", sha256_hex(bytes)}, {"size", bytes.size()}};
  }
  return manifest.dump(2) + "\n";
}

}  // namespace tilejit::detail::cache_fs
