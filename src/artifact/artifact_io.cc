#include "artifact/artifact_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tilejit/errors.h"

namespace tilejit::detail {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kHostSourceFile = "host_source";
constexpr const char* kDeviceSourceFile = "device_source";
// The compiler's log (metadata "log" from nvrtc, "compile_log" from the host-library backends)
// goes into a file "metadata.<key>" when not empty, not into artifact.json: NVRTC's warnings on
// a TileLang GEMM are 7 KB of escaped text, which took the JSON parser of a disk hit ~40 us.
constexpr std::array<const char*, 2> kLogKeys = {"log", "compile_log"};
constexpr int kInlineLogFormatVersion = 3;  // read as well: logs inside artifact.json

std::string log_file_name(std::string_view key) {
  return "metadata." + std::string(key);
}

std::string binary_file_name(const std::string& kind) {
  if (kind == "cubin") return "kernel.cubin";
  if (kind == "ptx") return "kernel.ptx";
  if (kind == "shared_library") return "kernel.so";
  return "kernel.bin";
}

std::string& file_named(std::map<std::string, std::string>& files, const std::string& name) {
  auto it = files.find(name);
  if (it == files.end()) throw Error(fmt::format("compiled artifact: file '{}' is missing", name));
  return it->second;
}

std::string optional_file(std::map<std::string, std::string>& files, const std::string& name) {
  auto it = files.find(name);
  return it == files.end() ? std::string() : std::move(it->second);
}

}  // namespace

std::map<std::string, std::string> artifact_to_files(const CompiledArtifact& artifact) {
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> metadata = artifact.metadata;
  for (const char* key : kLogKeys) {
    auto it = metadata.find(key);
    if (it == metadata.end() || it->second.empty()) continue;
    files[log_file_name(key)] = std::move(it->second);
    metadata.erase(it);
  }
  json header = {
      {"format", "tilejit.artifact"},          {"format_version", CompiledArtifact::kFormatVersion},
      {"backend", artifact.backend},           {"target", artifact.target},
      {"binary_kind", artifact.binary_kind},   {"metadata", metadata},
      {"dependencies", artifact.dependencies},
  };
  if (!artifact.binary.empty()) {
    header["binary_file"] = binary_file_name(artifact.binary_kind);
    files[binary_file_name(artifact.binary_kind)] = artifact.binary;
  }
  files[kArtifactFile] = header.dump(2) + "\n";
  files[kProgramFile] = artifact.program.to_json() + "\n";
  if (!artifact.host_source.empty()) files[kHostSourceFile] = artifact.host_source;
  if (!artifact.device_source.empty()) files[kDeviceSourceFile] = artifact.device_source;
  return files;
}

CompiledArtifact artifact_from_files(std::map<std::string, std::string> files,
                                     const Program* keyed_program) {
  json header;
  try {
    header = json::parse(file_named(files, kArtifactFile));
  } catch (const json::exception& e) {
    throw Error(
        fmt::format("compiled artifact: {} is not valid JSON: {}", kArtifactFile, e.what()));
  }
  CompiledArtifact artifact;
  try {
    const int version = header.at("format_version").get<int>();
    if (version != CompiledArtifact::kFormatVersion && version != kInlineLogFormatVersion) {
      throw Error(fmt::format("compiled artifact: format version {} (this tilejit reads {} and {})",
                              version, kInlineLogFormatVersion, CompiledArtifact::kFormatVersion));
    }
    artifact.backend = header.at("backend").get<std::string>();
    artifact.target = header.at("target").get<std::string>();
    artifact.binary_kind = header.at("binary_kind").get<std::string>();
    artifact.metadata = header.at("metadata").get<std::map<std::string, std::string>>();
    artifact.dependencies = header.at("dependencies").get<std::vector<std::string>>();
    if (header.contains("binary_file")) {
      artifact.binary = std::move(file_named(files, header.at("binary_file").get<std::string>()));
    }
  } catch (const json::exception& e) {
    throw Error(fmt::format("compiled artifact: {} is malformed: {}", kArtifactFile, e.what()));
  }
  artifact.program =
      keyed_program ? *keyed_program : Program::from_json(file_named(files, kProgramFile));
  for (const char* key : kLogKeys) {
    auto it = files.find(log_file_name(key));
    if (it == files.end()) continue;
    if (artifact.metadata.contains(key)) {
      throw Error(fmt::format("compiled artifact: metadata '{}' is both in {} and in file '{}'",
                              key, kArtifactFile, it->first));
    }
    artifact.metadata[key] = std::move(it->second);
  }
  artifact.host_source = optional_file(files, kHostSourceFile);
  artifact.device_source = optional_file(files, kDeviceSourceFile);
  return artifact;
}

}  // namespace tilejit::detail

namespace tilejit {
namespace fs = std::filesystem;

void CompiledArtifact::save(const fs::path& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(fmt::format("cannot create directory '{}': {}", dir.string(), ec.message()));
  for (const auto& [name, contents] : detail::artifact_to_files(*this)) {
    const fs::path path = dir / name;
    // O_NOFOLLOW: never write through a symlink someone planted in the target directory.
    const int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
      throw Error(fmt::format("cannot write '{}': {}", path.string(), std::strerror(errno)));
    size_t written = 0;
    while (written < contents.size()) {
      const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int saved = errno;
        ::close(fd);
        throw Error(fmt::format("cannot write '{}': {}", path.string(), std::strerror(saved)));
      }
      written += static_cast<size_t>(n);
    }
    if (::close(fd) != 0)
      throw Error(fmt::format("cannot write '{}': {}", path.string(), std::strerror(errno)));
  }
}

CompiledArtifact CompiledArtifact::load(const fs::path& dir) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    if (!in) throw Error(fmt::format("cannot read '{}'", entry.path().string()));
    files[entry.path().filename().string()] =
        std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  if (ec)
    throw Error(fmt::format("cannot read artifact directory '{}': {}", dir.string(), ec.message()));
  return detail::artifact_from_files(files);
}

}  // namespace tilejit
