#include "cuda/cubin_symbols.h"

#include <cxxabi.h>
#include <elf.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "tilejit/errors.h"

namespace tilejit::cuda {
namespace {

// The st_other bit nvcc sets on kernels (cuobjdump's STO_ENTRY); device functions lack it.
constexpr unsigned char kEntryPoint = 0x10;

// Copies a T out of the image at `offset`: ELF structures in a std::string need not be aligned.
template <class T>
T read_at(std::string_view image, uint64_t offset) {
  if (offset > image.size() || image.size() - offset < sizeof(T)) {
    throw ArgumentError(fmt::format(
        "the cubin ({} bytes) is truncated: expected a {}-byte ELF structure at offset {}",
        image.size(), sizeof(T), offset));
  }
  T value;
  std::memcpy(&value, image.data() + offset, sizeof(T));
  return value;
}

std::string demangle(const std::string& symbol) {
  if (symbol.rfind("_Z", 0) != 0) return symbol;
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> text(
      abi::__cxa_demangle(symbol.c_str(), nullptr, nullptr, &status), &std::free);
  return status == 0 && text ? std::string(text.get()) : symbol;
}

// `void ns::k<float, 128>(float*, int)` -> `ns::k<float,128>`.
std::string normalized_name(std::string_view name) {
  constexpr std::string_view kVoid = "void ";
  if (name.substr(0, kVoid.size()) == kVoid) name.remove_prefix(kVoid.size());
  while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
  if (!name.empty() && name.back() == ')') {
    int depth = 0;
    for (size_t i = name.size(); i-- > 0;) {
      depth += name[i] == ')' ? 1 : name[i] == '(' ? -1 : 0;
      if (depth == 0) {
        name = name.substr(0, i);
        break;
      }
    }
  }
  std::string out;
  for (char c : name) {
    if (c != ' ' && c != '\t' && c != '\n') out += c;
  }
  return out;
}

}  // namespace

std::vector<CubinFunction> cubin_functions(std::string_view image) {
  const auto header = read_at<Elf64_Ehdr>(image, 0);
  if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64) {
    throw ArgumentError("expected a cubin (a 64-bit ELF file), got something else");
  }
  std::vector<CubinFunction> functions;
  for (uint16_t s = 0; s < header.e_shnum; ++s) {
    const auto section =
        read_at<Elf64_Shdr>(image, header.e_shoff + uint64_t{s} * header.e_shentsize);
    if (section.sh_type != SHT_SYMTAB || section.sh_entsize < sizeof(Elf64_Sym)) continue;
    const auto strings =
        read_at<Elf64_Shdr>(image, header.e_shoff + uint64_t{section.sh_link} * header.e_shentsize);
    for (uint64_t offset = 0; offset + section.sh_entsize <= section.sh_size;
         offset += section.sh_entsize) {
      const auto symbol = read_at<Elf64_Sym>(image, section.sh_offset + offset);
      const unsigned binding = ELF64_ST_BIND(symbol.st_info);
      if (ELF64_ST_TYPE(symbol.st_info) != STT_FUNC ||
          (binding != STB_GLOBAL && binding != STB_WEAK) || symbol.st_shndx == SHN_UNDEF ||
          (symbol.st_other & kEntryPoint) == 0) {
        continue;
      }
      const uint64_t begin = strings.sh_offset + symbol.st_name;
      if (symbol.st_name >= strings.sh_size || begin >= image.size()) {
        throw ArgumentError("the cubin's symbol table names a string outside its string table");
      }
      const std::string_view rest = image.substr(begin);
      std::string name(rest.substr(0, rest.find('\0')));
      std::string demangled = demangle(name);
      functions.push_back({std::move(name), std::move(demangled)});
    }
  }
  return functions;
}

bool same_kernel_name(std::string_view demangled, std::string_view kernel_name) {
  return normalized_name(demangled) == normalized_name(kernel_name);
}

}  // namespace tilejit::cuda
