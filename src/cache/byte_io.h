// Little-endian length-prefixed fields, for the remote entry framing (remote_entry.h) and the
// cache archive (cache_archive.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tilejit::detail {

inline void put_u32(std::string* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}
inline void put_u64(std::string* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// Reads fields in order; every method returns false (and reads nothing) past the end.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}
  bool u32(uint32_t* value) { return integer(4, value); }
  bool u64(uint64_t* value) { return integer(8, value); }
  bool take(uint64_t n, std::string_view* out) {
    if (n > bytes_.size() - offset_) return false;
    *out = bytes_.substr(offset_, static_cast<size_t>(n));
    offset_ += static_cast<size_t>(n);
    return true;
  }
  bool at_end() const { return offset_ == bytes_.size(); }

 private:
  template <class T>
  bool integer(size_t n, T* value) {
    if (n > bytes_.size() - offset_) return false;
    *value = 0;
    for (size_t i = 0; i < n; ++i)
      *value |= static_cast<T>(static_cast<unsigned char>(bytes_[offset_ + i])) << (8 * i);
    offset_ += n;
    return true;
  }
  std::string_view bytes_;
  size_t offset_ = 0;
};

}  // namespace tilejit::detail
