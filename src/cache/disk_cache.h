// The on-disk kernel cache (docs/cache.md): one directory per key, published by an atomic
// rename, verified by content hash on every read, never followed through a symlink and
// never trusted when another user could have written it.
//
//   <root>/v1/<key[0:2]>/<key>/entry           the artifact's files with their SHA-256s
//                                              (cache_entry.h: artifact.json, program.json,
//                                              kernel.so|kernel.cubin, ...)
//   <root>/v1/deps/<base key>.json             headers the last build of a Program read
//   <root>/v1/toolchains/<hash>.json           toolchain fingerprints (toolchain_record.h)
//   <root>/v1/tmp/                             private staging (and trash) directories
//   <root>/v1/pch/<pid>-XXXXXX/                NVRTC precompiled headers of a live process
//
// No method throws for a problem with the cache itself: a broken, unsafe or unwritable
// cache costs a rebuild and a warning on stderr, never a failed compile.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cache/header_hashes.h"
#include "tilejit/kernel.h"

namespace tilejit::detail {

class DiskCache {
 public:
  static constexpr const char* kLayoutVersion = "v1";

  // TILELANG_CACHE_DIR (default $HOME/.cache/tilejit), TILELANG_CACHE_MAX_BYTES (0 or unset:
  // no cap); nullopt when TILELANG_DISABLE_CACHE is set to a true value.
  static std::optional<DiskCache> from_env();
  // TILELANG_CACHE_DIR, else $HOME/.cache/tilejit; whether or not the cache is disabled.
  static std::filesystem::path root_from_env();
  // TILELANG_CACHE_MAX_BYTES (0: no cap); a malformed value warns and means no cap.
  static uint64_t max_bytes_from_env();
  explicit DiskCache(std::filesystem::path root, uint64_t max_bytes = 0);

  const std::filesystem::path& root() const { return root_; }
  // Where NVRTC precompiled headers go (cuda/nvrtc_pch.h): one directory per live process,
  // removed when it exits; not cache entries (list, verify and LRU skip it).
  std::filesystem::path pch_dir() const { return root_ / kLayoutVersion / kPchDir; }
  static constexpr const char* kPchDir = "pch";
  // <root>/v1/deps/<base key>.json: the headers a build read (load_dependencies).
  static constexpr const char* kDependencyDir = "deps";
  // <root>/v1/toolchains/<selector hash>.json: recorded fingerprints (toolchain_record.h).
  static constexpr const char* kToolchainDir = "toolchains";
  uint64_t max_bytes() const { return max_bytes_; }

  enum class Status {
    kHit,     // `artifact` holds the verified entry
    kMiss,    // nothing usable was there (a corrupt entry was removed with a warning)
    kUnsafe,  // the cache or the entry is not private to this user: do not store either
  };
  struct Lookup {
    Status status = Status::kMiss;
    std::optional<CompiledArtifact> artifact;
  };
  // Reads and verifies the entry under a shared flock, so that no other process evicts it
  // while it is being read. `keyed_program`: as artifact_from_files takes it (compile() passes
  // the Program it computed `key` from; every file used is still verified against the entry's
  // header).
  Lookup lookup(const std::string& key, const Program* keyed_program = nullptr) const;
  // Publishes `artifact` under `key` (staging directory + rename; the loser of a race
  // discards its copy), then evicts least recently used entries beyond the size cap.
  void store(const std::string& key, const CompiledArtifact& artifact) const;
  // Whether `dir` is a cache entry's directory (else, for Kernel::load, a saved artifact).
  static bool holds_entry(const std::filesystem::path& dir);
  // Reads one entry directory named by path (Kernel::load), verified like lookup(); the key is
  // the one the entry records. Throws Error saying what is wrong (the caller names `dir`).
  struct Entry {
    std::string key;
    CompiledArtifact artifact;
  };
  static Entry read_entry(const std::filesystem::path& dir);

  // Removes the entry (used when a verified artifact still fails to load).
  void remove(const std::string& key) const;

  // Dependency records: for a Program with user include directories, the headers its last
  // build read, under the key of everything else (key.h). They tell a new process which
  // header contents make up the full key before anything is compiled, and, with each hash
  // the recording process trusted, let it stat those headers instead of reading them. nullopt
  // when none is recorded; a malformed record is removed with a warning. Records of format 1
  // (paths only) are read as headers without hashes.
  struct RecordedHeader {
    std::string path;
    std::optional<HeaderHash> hash;
    bool operator==(const RecordedHeader&) const = default;
  };
  std::optional<std::vector<RecordedHeader>> load_dependencies(const std::string& base_key) const;
  void store_dependencies(const std::string& base_key,
                          const std::vector<RecordedHeader>& headers) const;

  struct EntryInfo {
    std::string key;
    uint64_t bytes = 0;
    int64_t last_used_ns = 0;  // nanoseconds since the epoch
    std::string backend;       // from artifact.json, when readable
    std::string program_name;
    std::string problem;  // empty when the entry verifies
  };
  // Every entry with its size and last use, newest first; `verify` also checks every hash.
  std::vector<EntryInfo> list(bool verify) const;
  // Removes every entry, every dependency and toolchain record and every staging directory no
  // live process holds; returns the number of entries removed.
  size_t clear() const;
  // Removes entries, least recently used first, until the total is at most `max_bytes`;
  // entries another process is reading are skipped.
  void evict_to(uint64_t max_bytes) const;

 private:
  std::filesystem::path root_;
  uint64_t max_bytes_ = 0;
};

}  // namespace tilejit::detail
