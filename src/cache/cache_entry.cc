#include "cache/cache_entry.h"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>

#include "toolchain/sha256.h"

namespace tilejit::detail::cache_fs {

namespace {

// The header of an entry is a few hundred bytes: the first read takes it, and often the start
// of the files too, which the preadv that follows reads again (a few KB, cheaper than stitching
// the bytes already read onto the files).
constexpr size_t kFirstRead = 4096;
constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::string_view kHeaderEnd = "\nend\n";

bool is_file_name(std::string_view name) {
  return !name.empty() && !name.starts_with('.') &&
         name.find_first_of(std::string_view("/\0", 2)) == std::string_view::npos;
}

// The entry file of `entry`, opened and checked, with its header parsed and its size matched
// against the header.
struct OpenedEntry {
  Access access = Access::kError;
  std::string problem;
  UniqueFd fd;
  EntryHeader header;
};

OpenedEntry open_entry(int entry) {
  OpenedEntry result;
  OpenedFile file = open_file_at(entry, kEntryFile, kEntryFile);
  if (file.access != Access::kOk) {
    result.access = file.access;
    result.problem = std::move(file.problem);
    return result;
  }
  std::string head;
  size_t wanted = static_cast<size_t>(std::min<uint64_t>(file.size, kFirstRead));
  while (true) {
    head.resize(wanted);
    std::string problem;
    head.resize(read_at(file.fd.get(), head.data(), head.size(), 0, &problem));
    if (!problem.empty()) {
      result.problem = fmt::format("cannot read {}: {}", kEntryFile, problem);
      return result;
    }
    const size_t limit = static_cast<size_t>(std::min<uint64_t>(file.size, kMaxHeaderBytes));
    if (head.find(kHeaderEnd) != std::string::npos || head.size() < wanted || wanted >= limit)
      break;
    wanted = limit;
  }
  std::optional<EntryHeader> header = parse_entry_header(head, &result.problem);
  if (!header) {
    result.access = Access::kMissing;
    return result;
  }
  if (header->entry_size != file.size) {
    result.access = Access::kMissing;
    result.problem =
        fmt::format("{} holds {} bytes where its header lists {} (truncated or corrupted)",
                    kEntryFile, file.size, header->entry_size);
    return result;
  }
  result.access = Access::kOk;
  result.fd = std::move(file.fd);
  result.header = std::move(*header);
  return result;
}

// Reads every file of `entry`'s header that `wanted` selects into `files`: files that lie back
// to back are read by one preadv. Returns the problem, empty when all were read.
template <class Wanted>
std::string read_files(const OpenedEntry& entry, const Wanted& wanted,
                       std::map<std::string, std::string>* files) {
  const std::vector<EntryHeader::File>& all = entry.header.files;
  for (size_t first = 0; first < all.size();) {
    if (!wanted(all[first].name)) {
      ++first;
      continue;
    }
    std::vector<iovec> pieces;
    size_t last = first;
    for (; last < all.size() && wanted(all[last].name); ++last) {
      std::string& bytes = (*files)[all[last].name];
      bytes.resize(static_cast<size_t>(all[last].size));
      if (!bytes.empty()) pieces.push_back({bytes.data(), bytes.size()});
    }
    uint64_t offset = all[first].offset;
    for (size_t next = 0; next < pieces.size();) {
      const int count = static_cast<int>(std::min<size_t>(pieces.size() - next, IOV_MAX));
      ssize_t n = ::preadv(entry.fd.get(), &pieces[next], count, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fmt::format("cannot read {}: {}", kEntryFile, std::strerror(errno));
      if (n == 0) return fmt::format("{} was truncated while being read", kEntryFile);
      offset += static_cast<uint64_t>(n);
      for (; next < pieces.size() && static_cast<size_t>(n) >= pieces[next].iov_len; ++next)
        n -= static_cast<ssize_t>(pieces[next].iov_len);
      if (n > 0) {  // a short read inside a piece: the rest of it comes next
        pieces[next].iov_base = static_cast<char*>(pieces[next].iov_base) + n;
        pieces[next].iov_len -= static_cast<size_t>(n);
      }
    }
    first = last;
  }
  return "";
}

}  // namespace

bool is_key(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::optional<EntryHeader> parse_entry_header(std::string_view bytes, std::string* problem) {
  const size_t end = bytes.find(kHeaderEnd);
  if (end == std::string_view::npos) {
    *problem = fmt::format("{} has no complete header", kEntryFile);
    return std::nullopt;
  }
  std::string_view text = bytes.substr(0, end + 1);  // every line with its newline
  const auto next_line = [&] {
    const size_t newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline + 1);
    return line;
  };
  const auto malformed = [&](std::string_view why) {
    *problem = fmt::format("{}'s header is malformed: {}", kEntryFile, why);
    return std::nullopt;
  };
  if (next_line() != kEntryFormat) return malformed(fmt::format("it is not {}", kEntryFormat));
  EntryHeader header;
  const std::string_view key_line = next_line();
  if (!key_line.starts_with("key ") || !is_key(key_line.substr(4)))
    return malformed("no key on its second line");
  header.key = std::string(key_line.substr(4));
  uint64_t offset = end + kHeaderEnd.size();
  while (!text.empty()) {
    std::string_view line = next_line();
    if (!line.starts_with("file ")) return malformed(fmt::format("unexpected line '{}'", line));
    line.remove_prefix(5);
    EntryHeader::File file;
    const auto [size_end, error] =
        std::from_chars(line.data(), line.data() + line.size(), file.size);
    const size_t size_digits = static_cast<size_t>(size_end - line.data());
    if (error != std::errc() || size_digits == 0 || line.size() < size_digits + 67 ||
        line[size_digits] != ' ' || !is_key(line.substr(size_digits + 1, 64)) ||
        line[size_digits + 65] != ' ') {
      return malformed(fmt::format("unreadable file line 'file {}'", line));
    }
    file.sha256 = std::string(line.substr(size_digits + 1, 64));
    file.name = std::string(line.substr(size_digits + 66));
    if (!is_file_name(file.name))
      return malformed(fmt::format("invalid file name '{}'", file.name));
    if (std::any_of(header.files.begin(), header.files.end(),
                    [&](const EntryHeader::File& other) { return other.name == file.name; }))
      return malformed(fmt::format("file '{}' is listed twice", file.name));
    if (file.size > UINT64_MAX - offset) return malformed("file sizes overflow");
    file.offset = offset;
    offset += file.size;
    header.files.push_back(std::move(file));
  }
  header.entry_size = offset;
  return header;
}

std::string encode_entry(const std::string& key, const std::map<std::string, std::string>& files) {
  std::string header = fmt::format("{}\nkey {}\n", kEntryFormat, key);
  size_t total = 0;
  for (const auto& [name, bytes] : files) {
    header += fmt::format("file {} {} {}\n", bytes.size(), sha256_hex(bytes), name);
    total += bytes.size();
  }
  header += "end\n";
  header.reserve(header.size() + total);
  for (const auto& [name, bytes] : files) header += bytes;
  return header;
}

Verdict verify_entry(int entry, std::string_view key, std::string_view unread) {
  Verdict verdict;
  OpenedEntry opened = open_entry(entry);
  if (opened.access != Access::kOk) {
    verdict.access = opened.access;
    verdict.problem = std::move(opened.problem);
    return verdict;
  }
  if (!key.empty() && opened.header.key != key) {
    verdict.access = Access::kMissing;
    verdict.problem = fmt::format("{} names another key", kEntryFile);
    return verdict;
  }
  verdict.key = opened.header.key;
  if (std::string problem = read_files(
          opened, [&](std::string_view name) { return name != unread; }, &verdict.files);
      !problem.empty()) {
    verdict.access = Access::kError;
    verdict.problem = std::move(problem);
    return verdict;
  }
  for (const EntryHeader::File& file : opened.header.files) {
    if (file.name == unread) continue;
    if (sha256_hex(verdict.files.at(file.name)) != file.sha256) {
      verdict.access = Access::kMissing;
      verdict.problem =
          fmt::format("{} does not match its recorded SHA-256 (corrupted)", file.name);
      verdict.files.clear();
      return verdict;
    }
  }
  return verdict;
}

std::map<std::string, std::string> peek_entry(int entry,
                                              std::initializer_list<std::string_view> names) {
  std::map<std::string, std::string> files;
  OpenedEntry opened = open_entry(entry);
  if (opened.access != Access::kOk) return files;
  const auto wanted = [&](std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  if (!read_files(opened, wanted, &files).empty()) files.clear();
  return files;
}

}  // namespace tilejit::detail::cache_fs
