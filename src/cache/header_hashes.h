// Header content hashes trusted while a file's stat signature is unchanged, in the style of
// ccache's direct mode (docs/cache.md, "Headers"): a key of a Program with include
// directories costs one stat per header instead of reading and hashing hundreds of files.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace tilejit::detail {

// What identifies a file and its last change: an edit changes the ctime (which utime()
// cannot set) and, unless undone by utime(), the mtime and perhaps the size; a file renamed
// over it has another inode.
struct FileSignature {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  bool operator==(const FileSignature&) const = default;
};

// The signature of the file at `path` (following symlinks, as the compiler does); nullopt
// when it cannot be stat-ed. With `dir`, an open directory (or AT_FDCWD), `path` is resolved
// from it: a header found from its include directory's descriptor costs the kernel a walk of
// the components below that directory only (path walks were most of a TileLang GEMM's key:
// 64 stats of paths 12 components deep).
std::optional<FileSignature> stat_signature(const std::string& path);
std::optional<FileSignature> stat_signature_at(int dir, const char* path);

// A header's SHA-256 and the signature it had when it was read.
struct HeaderHash {
  FileSignature signature;
  std::string sha256;
  bool operator==(const HeaderHash&) const = default;
};

// The process's memo: path -> the hash of its contents, trusted while stat() returns the
// same signature.
class HeaderHashes {
 public:
  static HeaderHashes& global();

  // A hash is remembered only when the file's mtime and ctime are older than this before the
  // read began: a write lands at least one timestamp tick after the read started, so a later
  // write in the same tick as the one read cannot keep the signature (the "racy" case;
  // 2 s covers filesystems with 1 s and 2 s timestamps).
  static constexpr int64_t kTrustAfterNs = 2'000'000'000;

  // The SHA-256 of the file's contents; nullopt when it cannot be read. Reads it only when
  // its signature differs from the remembered one. `path` names it in the memo; the file is
  // found as `relative` from the open directory `dir` when given (stat_signature_at).
  std::optional<std::string> sha256(const std::string& path, int dir = -1,
                                    const char* relative = nullptr);
  // The remembered hash, whether or not the file still has that signature.
  std::optional<HeaderHash> remembered(const std::string& path) const;
  // Takes a hash from a dependency record written by another process; sha256() still checks
  // the signature before trusting it.
  void adopt(const std::string& path, const HeaderHash& hash);

  // For tests: how many header files sha256() has read, and forgetting every hash.
  uint64_t reads() const { return reads_.load(); }
  void clear();

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, HeaderHash> hashes_;
  std::atomic<uint64_t> reads_{0};
};

}  // namespace tilejit::detail
