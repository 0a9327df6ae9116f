// libFuzzer target: the header of a disk-cache entry (cache_entry.h) on arbitrary bytes, the
// part of the cache a damaged or planted file reaches first. A header that parses must be
// self-consistent (files back to back after it, sizes summing to the entry's size, names
// valid and distinct), and encoding files of those names and sizes must give a header that
// parses to the same names, sizes and layout. Nothing may crash, hang or overflow.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "cache/cache_entry.h"

namespace {

using tilejit::detail::cache_fs::EntryHeader;

void check_consistent(const EntryHeader& header, size_t header_bytes) {
  uint64_t offset = header_bytes;
  for (size_t i = 0; i < header.files.size(); ++i) {
    const EntryHeader::File& file = header.files[i];
    if (file.offset != offset || file.name.empty() || file.name.front() == '.' ||
        file.name.find('/') != std::string::npos || file.sha256.size() != 64)
      std::abort();
    for (size_t j = 0; j < i; ++j) {
      if (header.files[j].name == file.name) std::abort();
    }
    offset += file.size;
  }
  if (offset != header.entry_size) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string problem;
  const auto header = tilejit::detail::cache_fs::parse_entry_header(bytes, &problem);
  if (!header) {
    if (problem.empty()) std::abort();  // a refusal always says why
    return 0;
  }
  if (!tilejit::detail::cache_fs::is_key(header->key)) std::abort();
  const size_t header_bytes = bytes.find("\nend\n") + 5;
  check_consistent(*header, header_bytes);

  // Re-encoded with files of the same names and sizes (kept small), the header must read back
  // with the same files.
  uint64_t total = 0;
  for (const EntryHeader::File& file : header->files) total += file.size;
  if (total > (1u << 16)) return 0;
  std::map<std::string, std::string> files;
  for (const EntryHeader::File& file : header->files)
    files[file.name] = std::string(static_cast<size_t>(file.size), 'x');
  const std::string encoded = tilejit::detail::cache_fs::encode_entry(header->key, files);
  const auto again = tilejit::detail::cache_fs::parse_entry_header(encoded, &problem);
  if (!again || again->key != header->key || again->files.size() != files.size() ||
      again->entry_size != encoded.size())
    std::abort();
  check_consistent(*again, encoded.size() - total);
  for (const EntryHeader::File& file : again->files) {
    if (files.at(file.name).size() != file.size) std::abort();
  }
  return 0;
}
