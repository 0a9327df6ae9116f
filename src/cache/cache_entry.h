// A cache entry as one file, and its verification. The entry directory <key>/ holds one file,
// `entry`: a text header that names the key and, for every file of the artifact, its size and
// SHA-256, then those files' bytes back to back in the header's order:
//
//   tilejit.cache-entry/2
//   key <key>
//   file <size> <sha256> <name>        one line per file (artifact_io.h names them)
//   end
//   <the bytes of each file, in the order of the lines>
//
// A hit opens, checks and reads one file (two reads: the header, then the files it uses), where
// format 1 (manifest.json and a file each) took five opens and ~20 more syscalls. Each file
// keeps its own hash, so a reader verifies exactly the files it uses and a problem names the
// file. Internal to src/cache/.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache_files.h"

namespace tilejit::detail::cache_fs {

inline constexpr const char* kEntryFile = "entry";
inline constexpr std::string_view kEntryFormat = "tilejit.cache-entry/2";

// A key is 64 lowercase hex digits (SHA-256): anything else never names a path.
bool is_key(std::string_view text);

struct EntryHeader {
  struct File {
    std::string name;
    uint64_t size = 0;
    std::string sha256;
    uint64_t offset = 0;  // where its bytes start in the entry file
  };
  std::string key;
  std::vector<File> files;
  uint64_t entry_size = 0;  // the header and every file: the entry file's size
};
// The header at the start of `bytes`, which may hold more (or less) than the header; nullopt
// with *problem set when it is malformed or does not end within `bytes`.
std::optional<EntryHeader> parse_entry_header(std::string_view bytes, std::string* problem);

// The entry file holding `files` under `key`.
std::string encode_entry(const std::string& key, const std::map<std::string, std::string>& files);

struct Verdict {
  Access access = Access::kOk;  // kOk, kMissing (= incomplete or corrupt), kUnsafe, kError
  std::string problem;
  std::string key;                           // the key the entry names
  std::map<std::string, std::string> files;  // verified contents
};

// Reads the entry file of entry directory `entry` once, checking that it names `key` (empty:
// any key, which Verdict::key then gives) and the size and SHA-256 of every file it holds but
// `unread`. A file the caller will not use is left unread (compile() has the Program its key
// covers, so it skips program.json): what is not read is neither trusted nor used, and
// `tilejit cache verify` still checks it.
Verdict verify_entry(int entry, std::string_view key, std::string_view unread = {});

// The files `names` of entry directory `entry` (those it holds), read without checking hashes,
// for listing: nothing read here is loaded.
std::map<std::string, std::string> peek_entry(int entry,
                                              std::initializer_list<std::string_view> names);

}  // namespace tilejit::detail::cache_fs
