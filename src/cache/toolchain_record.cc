#include "cache/toolchain_record.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cache/cache_files.h"
#include "cache/disk_cache.h"
#include "cache/header_hashes.h"
#include "toolchain/sha256.h"
#include "toolchain/toolchain.h"

namespace tilejit::detail {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace cache_fs;

namespace {

constexpr const char* kRecordFormat = "tilejit.toolchain/1";

std::atomic<uint64_t> probes{0};

// The binary tilejit is linked into: a rebuilt tilejit may fingerprint differently.
const std::string& tilejit_binary() {
  static const std::string path = tilejit_module_path().value_or(fs::path()).string();
  return path;
}

struct RecordedFile {
  std::string path;
  std::optional<FileSignature> signature;  // nullopt: the path did not exist
};

json file_to_json(const RecordedFile& file) {
  json entry = {{"path", file.path}};
  if (!file.signature) {
    entry["absent"] = true;
    return entry;
  }
  entry["device"] = file.signature->device;
  entry["inode"] = file.signature->inode;
  entry["size"] = file.signature->size;
  entry["mtime_ns"] = file.signature->mtime_ns;
  entry["ctime_ns"] = file.signature->ctime_ns;
  return entry;
}

std::optional<RecordedFile> file_from_json(const json& entry) {
  if (!entry.is_object() || !entry.contains("path") || !entry["path"].is_string())
    return std::nullopt;
  RecordedFile file{entry["path"].get<std::string>(), std::nullopt};
  if (entry.value("absent", false)) return file;
  for (const char* field : {"device", "inode", "size"}) {
    if (!entry.contains(field) || !entry[field].is_number_unsigned()) return std::nullopt;
  }
  for (const char* field : {"mtime_ns", "ctime_ns"}) {
    if (!entry.contains(field) || !entry[field].is_number_integer()) return std::nullopt;
  }
  file.signature = FileSignature{entry["device"].get<uint64_t>(), entry["inode"].get<uint64_t>(),
                                 entry["size"].get<uint64_t>(), entry["mtime_ns"].get<int64_t>(),
                                 entry["ctime_ns"].get<int64_t>()};
  return file;
}

enum class Found { kValid, kStale, kMissing };

// The recorded fingerprint when the record `name` is for `selector` and every file it lists
// still has its recorded signature. A record that does not parse is removed with a warning.
Found load_record(const fs::path& root, const std::string& name, const std::string& selector,
                  std::string* fingerprint) {
  const VersionDir version = open_version_for_reading(root);
  if (version.access != Access::kOk) return Found::kMissing;
  Opened dir = open_dir_at(version.get(), DiskCache::kToolchainDir, "toolchain records", false);
  if (dir.access != Access::kOk) return Found::kMissing;
  FileRead file = read_file_at(dir.fd.get(), name, "toolchain record " + name);
  if (file.access != Access::kOk) {
    if (file.access != Access::kMissing) warn("ignoring toolchain record: {}", file.problem);
    return Found::kMissing;
  }
  const json record = json::parse(file.bytes, nullptr, /*allow_exceptions=*/false);
  std::vector<RecordedFile> files;
  bool valid = record.is_object() && record.value("format", "") == kRecordFormat &&
               record.value("selector", "") == selector && record.contains("fingerprint") &&
               record["fingerprint"].is_string() && record.contains("files") &&
               record["files"].is_array();
  if (valid) {
    for (const json& entry : record["files"]) {
      std::optional<RecordedFile> recorded = file_from_json(entry);
      if (!recorded) {
        valid = false;
        break;
      }
      files.push_back(std::move(*recorded));
    }
  }
  if (!valid) {
    warn("removing broken toolchain record {}; probing the toolchain again", name);
    ::unlinkat(dir.fd.get(), name.c_str(), 0);
    return Found::kMissing;
  }
  for (const RecordedFile& recorded : files) {
    if (stat_signature(recorded.path) != recorded.signature) return Found::kStale;
  }
  *fingerprint = record["fingerprint"].get<std::string>();
  return Found::kValid;
}

void store_record(const fs::path& root, const std::string& name, const std::string& selector,
                  const std::string& fingerprint, const std::vector<RecordedFile>& files) {
  Layout layout = open_layout(root, true);
  if (layout.access != Access::kOk) return;  // a store of an entry warns about the cache
  Opened dir =
      open_dir_at(layout.version.get(), DiskCache::kToolchainDir, "toolchain records", true);
  if (dir.access != Access::kOk) {
    warn_once("toolchain records not stored: {}", dir.problem);
    return;
  }
  json listed = json::array();
  for (const RecordedFile& file : files) listed.push_back(file_to_json(file));
  const json record = {{"format", kRecordFormat},
                       {"selector", selector},
                       {"fingerprint", fingerprint},
                       {"files", listed}};
  // Written whole into staging, then renamed over the old record: readers see one or the other.
  const std::string staged = fmt::format("toolchain.{}.{}", ::getpid(), random_suffix());
  std::string problem;
  if (!write_file_at(layout.staging.get(), staged, record.dump(2) + "\n", &problem)) {
    warn("toolchain record not stored: {}", problem);
    ::unlinkat(layout.staging.get(), staged.c_str(), 0);
    return;
  }
  if (::renameat(layout.staging.get(), staged.c_str(), dir.fd.get(), name.c_str()) != 0) {
    warn("toolchain record not stored: {}", std::strerror(errno));
    ::unlinkat(layout.staging.get(), staged.c_str(), 0);
  }
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string recorded_fingerprint(const std::optional<std::string>& selector,
                                 const std::function<ToolchainProbe()>& probe) {
  std::optional<DiskCache> disk = selector ? DiskCache::from_env() : std::nullopt;
  if (!disk) {
    probes.fetch_add(1);
    return probe().fingerprint;
  }
  const std::string name = sha256_hex(*selector) + ".json";
  std::string fingerprint;
  if (load_record(disk->root(), name, *selector, &fingerprint) == Found::kValid) return fingerprint;

  const int64_t start = now_ns();
  probes.fetch_add(1);
  ToolchainProbe probed = probe();
  std::vector<RecordedFile> files;
  bool trusted = true;
  if (!tilejit_binary().empty()) probed.files.push_back(tilejit_binary());
  for (const std::string& path : probed.files) {
    RecordedFile file{path, stat_signature(path)};
    // Changed during the probe, or so recently that a change in the same timestamp tick
    // could follow unseen: the probe stands for this process only.
    if (file.signature && (file.signature->mtime_ns >= start - HeaderHashes::kTrustAfterNs ||
                           file.signature->ctime_ns >= start - HeaderHashes::kTrustAfterNs)) {
      trusted = false;
    }
    files.push_back(std::move(file));
  }
  if (trusted) store_record(disk->root(), name, *selector, probed.fingerprint, files);
  return std::move(probed.fingerprint);
}

uint64_t toolchain_probes() {
  return probes.load();
}

}  // namespace tilejit::detail
