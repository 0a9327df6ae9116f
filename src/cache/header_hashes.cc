#include "cache/header_hashes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "toolchain/sha256.h"
#include "toolchain/unique_fd.h"

namespace tilejit::detail {
namespace {

int64_t nanoseconds(const struct timespec& time) {
  return static_cast<int64_t>(time.tv_sec) * 1'000'000'000 + time.tv_nsec;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Reads a whole file; nullopt when it cannot be opened or read (deleted since the build, say).
std::optional<std::string> read_whole_file(int dir, const char* path) {
  UniqueFd fd(::openat(dir, path, O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return std::nullopt;
  std::string contents;
  char buffer[16384];
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return contents;
    contents.append(buffer, static_cast<size_t>(n));
  }
}

}  // namespace

std::optional<FileSignature> stat_signature(const std::string& path) {
  return stat_signature_at(AT_FDCWD, path.c_str());
}

std::optional<FileSignature> stat_signature_at(int dir, const char* path) {
  struct stat info {};
  if (::fstatat(dir, path, &info, 0) != 0) return std::nullopt;
  return FileSignature{static_cast<uint64_t>(info.st_dev), static_cast<uint64_t>(info.st_ino),
                       static_cast<uint64_t>(info.st_size), nanoseconds(info.st_mtim),
                       nanoseconds(info.st_ctim)};
}

HeaderHashes& HeaderHashes::global() {
  static HeaderHashes* hashes = new HeaderHashes;  // leaked: used until the end of the process
  return *hashes;
}

std::optional<std::string> HeaderHashes::sha256(const std::string& path, int dir,
                                                const char* relative) {
  if (relative == nullptr) {
    dir = AT_FDCWD;
    relative = path.c_str();
  }
  const std::optional<FileSignature> before = stat_signature_at(dir, relative);
  if (!before) {
    std::lock_guard lock(mutex_);
    hashes_.erase(path);
    return std::nullopt;
  }
  {
    std::lock_guard lock(mutex_);
    auto it = hashes_.find(path);
    if (it != hashes_.end() && it->second.signature == *before) return it->second.sha256;
  }
  const int64_t read_start = now_ns();
  reads_.fetch_add(1);
  std::optional<std::string> contents = read_whole_file(dir, relative);
  if (!contents) {
    std::lock_guard lock(mutex_);
    hashes_.erase(path);
    return std::nullopt;
  }
  HeaderHash hash{*before, sha256_hex(*contents)};
  // Trusted only when the file did not change during the read and its last change lies far
  // enough before the read that a later write must move a timestamp (kTrustAfterNs).
  const std::optional<FileSignature> after = stat_signature_at(dir, relative);
  const bool trusted = after == before && before->mtime_ns < read_start - kTrustAfterNs &&
                       before->ctime_ns < read_start - kTrustAfterNs;
  std::lock_guard lock(mutex_);
  if (trusted) {
    hashes_[path] = hash;
  } else {
    hashes_.erase(path);
  }
  return std::move(hash.sha256);
}

std::optional<HeaderHash> HeaderHashes::remembered(const std::string& path) const {
  std::lock_guard lock(mutex_);
  auto it = hashes_.find(path);
  if (it == hashes_.end()) return std::nullopt;
  return it->second;
}

void HeaderHashes::adopt(const std::string& path, const HeaderHash& hash) {
  std::lock_guard lock(mutex_);
  hashes_.try_emplace(path, hash);  // a hash this process made itself is as new or newer
}

void HeaderHashes::clear() {
  std::lock_guard lock(mutex_);
  hashes_.clear();
}

}  // namespace tilejit::detail
