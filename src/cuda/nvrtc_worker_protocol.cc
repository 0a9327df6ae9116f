#include "cuda/nvrtc_worker_protocol.h"

#include <malloc.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include <fmt/format.h>

#include "tilejit/errors.h"

namespace tilejit::cuda::worker {
namespace {

class Writer {
 public:
  void u8(uint8_t value) { bytes_.push_back(static_cast<char>(value)); }
  void boolean(bool value) { u8(value ? 1 : 0); }
  void i32(int32_t value) { raw(&value, sizeof value); }
  void u64(uint64_t value) { raw(&value, sizeof value); }
  void string(std::string_view text) {
    u64(text.size());
    bytes_.append(text);
  }
  void strings(const std::vector<std::string>& list) {
    u64(list.size());
    for (const std::string& text : list) string(text);
  }
  void string_map(const std::map<std::string, std::string>& map) {
    u64(map.size());
    for (const auto& [key, value] : map) {
      string(key);
      string(value);
    }
  }
  std::string take() { return std::move(bytes_); }

 private:
  void raw(const void* data, size_t size) { bytes_.append(static_cast<const char*>(data), size); }
  std::string bytes_;
};

// Every read checks the remaining length first; a count is checked against the bytes left
// before anything is reserved, so garbage never turns into a huge allocation.
class Reader {
 public:
  Reader(std::string_view bytes, const char* what) : rest_(bytes), what_(what) {}

  uint8_t u8() {
    uint8_t value;
    raw(&value, sizeof value);
    return value;
  }
  bool boolean() {
    const uint8_t value = u8();
    if (value > 1) malformed(fmt::format("a boolean is {}", value));
    return value == 1;
  }
  int32_t i32() {
    int32_t value;
    raw(&value, sizeof value);
    return value;
  }
  uint64_t u64() {
    uint64_t value;
    raw(&value, sizeof value);
    return value;
  }
  std::string string() {
    const uint64_t size = u64();
    if (size > rest_.size()) {
      malformed(fmt::format("a string of {} bytes with {} left", size, rest_.size()));
    }
    std::string text(rest_.substr(0, size));
    rest_.remove_prefix(size);
    return text;
  }
  std::vector<std::string> strings() {
    const uint64_t count = element_count();
    std::vector<std::string> list;
    list.reserve(count);
    for (uint64_t i = 0; i < count; ++i) list.push_back(string());
    return list;
  }
  std::map<std::string, std::string> string_map() {
    const uint64_t count = element_count();
    std::map<std::string, std::string> map;
    for (uint64_t i = 0; i < count; ++i) {
      std::string key = string();
      map.insert_or_assign(std::move(key), string());
    }
    return map;
  }
  void finish() {
    if (!rest_.empty()) malformed(fmt::format("{} bytes after the last field", rest_.size()));
  }
  [[noreturn]] void malformed(const std::string& detail) {
    throw Error(fmt::format("malformed NVRTC worker {}: {}", what_, detail));
  }

 private:
  void raw(void* out, size_t size) {
    if (rest_.size() < size) {
      malformed(fmt::format("a {}-byte field with {} bytes left", size, rest_.size()));
    }
    std::memcpy(out, rest_.data(), size);
    rest_.remove_prefix(size);
  }
  // Each element is at least one 8-byte length.
  uint64_t element_count() {
    const uint64_t count = u64();
    if (count > rest_.size() / sizeof(uint64_t)) {
      malformed(fmt::format("{} elements in {} bytes", count, rest_.size()));
    }
    return count;
  }

  std::string_view rest_;
  const char* what_;
};

enum class Outcome : uint8_t { kOutput = 0, kException = 1 };

enum class ErrorKind : uint8_t {
  kError = 0,
  kProgramError = 1,
  kArgumentError = 2,
  kCompileError = 3,
  kCudaError = 4,
  kNotAvailableError = 5,
};

struct Header {
  uint32_t magic;
  uint32_t version;
  uint64_t size;
};
static_assert(sizeof(Header) == 16);

// Sends all of `size` bytes; false when the peer is gone.
bool send_all(int fd, const char* data, size_t size, int flags) {
  while (size > 0) {
    const ssize_t sent = ::send(fd, data, size, flags | MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE || errno == ECONNRESET) return false;
      throw Error(fmt::format("NVRTC worker socket: send failed: {}", std::strerror(errno)));
    }
    data += sent;
    size -= static_cast<size_t>(sent);
  }
  return true;
}

// Reads exactly `size` bytes; false when the peer closed first.
bool read_all(int fd, char* data, size_t size) {
  while (size > 0) {
    const ssize_t got = ::recv(fd, data, size, 0);
    if (got == 0) return false;
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) return false;
      throw Error(fmt::format("NVRTC worker socket: recv failed: {}", std::strerror(errno)));
    }
    data += got;
    size -= static_cast<size_t>(got);
  }
  return true;
}

}  // namespace

// glibc's defaults give memory back to the kernel as soon as 128 KiB at the top of the heap are
// free and serve each block of 128 KiB or more (growing with use) by mmap: every NVRTC compile
// then page-faults its working set in again (~810 faults per compile of a tiny kernel, ~45 with
// the settings below, measured on the CPU machine; docs/PERFORMANCE.md). The worker keeps what
// it freed for the next compile instead; this is our own process, so the caller's allocator is
// untouched. Bounded: at most 128 MiB of free heap stays with an idle worker (then trimmed to
// 16 MiB), and all of it goes when the worker exits (idle timeout, or the caller's exit).
void keep_freed_memory() {
  ::mallopt(M_TRIM_THRESHOLD, 128 << 20);
  ::mallopt(M_TOP_PAD, 16 << 20);
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
}

std::string encode_request(const Request& request) {
  // The structured bindings name every field: a field added to NvrtcOptions or CudaArch stops
  // this from compiling until the wire format carries it (out-of-process must equal
  // in-process).
  const auto& [arch, source_name, include_dirs, defines, flags, verbose, list_dependencies,
               name_expressions, pch_dir] = request.options;
  const auto& [major, minor, arch_specific] = arch;
  Writer out;
  out.string(request.working_directory);
  out.string(request.source);
  out.i32(major);
  out.i32(minor);
  out.boolean(arch_specific);
  out.string(source_name);
  out.strings(include_dirs);
  out.string_map(defines);
  out.strings(flags);
  out.boolean(verbose);
  out.boolean(list_dependencies);
  out.strings(name_expressions);
  out.string(pch_dir);
  return out.take();
}

Request decode_request(std::string_view payload) {
  Reader in(payload, "request");
  Request request;
  request.working_directory = in.string();
  request.source = in.string();
  NvrtcOptions& options = request.options;
  options.arch.major = in.i32();
  options.arch.minor = in.i32();
  options.arch.arch_specific = in.boolean();
  options.source_name = in.string();
  options.include_dirs = in.strings();
  options.defines = in.string_map();
  options.flags = in.strings();
  options.verbose = in.boolean();
  options.list_dependencies = in.boolean();
  options.name_expressions = in.strings();
  options.pch_dir = in.string();
  in.finish();
  return request;
}

std::string encode_output(const NvrtcOutput& output, uint64_t worker_ns) {
  // Every field by name, as in encode_request.
  const auto& [binary, binary_kind, target, options, log, dependencies, lowered_names, pch] =
      output;
  Writer out;
  out.u64(worker_ns);
  out.u8(static_cast<uint8_t>(Outcome::kOutput));
  out.string(binary);
  out.string(binary_kind);
  out.string(target);
  out.strings(options);
  out.string(log);
  out.strings(dependencies);
  out.strings(lowered_names);
  out.string(pch);
  return out.take();
}

std::string encode_exception(std::exception_ptr error, uint64_t worker_ns) {
  Writer out;
  out.u64(worker_ns);
  out.u8(static_cast<uint8_t>(Outcome::kException));
  // Most derived first: each tilejit type, then any std::exception as a plain Error.
  try {
    std::rethrow_exception(error);
  } catch (const CompileError& e) {
    out.u8(static_cast<uint8_t>(ErrorKind::kCompileError));
    out.string(e.what());
    out.string(e.log());
    out.strings(e.options());
    out.string(e.source_name());
  } catch (const CudaError& e) {
    out.u8(static_cast<uint8_t>(ErrorKind::kCudaError));
    out.string(e.what());
    out.i32(e.code());
  } catch (const ProgramError& e) {
    out.u8(static_cast<uint8_t>(ErrorKind::kProgramError));
    out.string(e.what());
  } catch (const ArgumentError& e) {
    out.u8(static_cast<uint8_t>(ErrorKind::kArgumentError));
    out.string(e.what());
  } catch (const NotAvailableError& e) {
    out.u8(static_cast<uint8_t>(ErrorKind::kNotAvailableError));
    out.string(e.what());
  } catch (const std::exception& e) {
    out.u8(static_cast<uint8_t>(ErrorKind::kError));
    out.string(e.what());
  } catch (...) {
    out.u8(static_cast<uint8_t>(ErrorKind::kError));
    out.string("the NVRTC worker caught an exception of unknown type");
  }
  return out.take();
}

Response decode_response(std::string_view payload) {
  Reader in(payload, "response");
  Response response;
  response.worker_ns = in.u64();
  const uint8_t outcome = in.u8();
  if (outcome == static_cast<uint8_t>(Outcome::kOutput)) {
    NvrtcOutput& output = response.output;
    output.binary = in.string();
    output.binary_kind = in.string();
    output.target = in.string();
    output.options = in.strings();
    output.log = in.string();
    output.dependencies = in.strings();
    output.lowered_names = in.strings();
    output.pch = in.string();
    in.finish();
    return response;
  }
  if (outcome != static_cast<uint8_t>(Outcome::kException)) {
    in.malformed(fmt::format("unknown outcome {}", outcome));
  }
  const uint8_t kind = in.u8();
  std::string message = in.string();
  auto rebuilt = [&](auto error) {
    in.finish();
    response.error = std::make_exception_ptr(std::move(error));
    return response;
  };
  switch (static_cast<ErrorKind>(kind)) {
    case ErrorKind::kCompileError: {
      std::string log = in.string();
      std::vector<std::string> options = in.strings();
      std::string source_name = in.string();
      return rebuilt(CompileError(std::move(message), std::move(log), std::move(options),
                                  std::move(source_name)));
    }
    case ErrorKind::kCudaError: {
      const int32_t code = in.i32();
      return rebuilt(CudaError(std::move(message), code));
    }
    case ErrorKind::kProgramError:
      return rebuilt(ProgramError(message));
    case ErrorKind::kArgumentError:
      return rebuilt(ArgumentError(message));
    case ErrorKind::kNotAvailableError:
      return rebuilt(NotAvailableError(message));
    case ErrorKind::kError:
      return rebuilt(Error(message));
  }
  in.malformed(fmt::format("unknown error kind {}", kind));
}

Frame read_frame(int fd) {
  Frame frame;
  Header header;
  if (!read_all(fd, reinterpret_cast<char*>(&header), sizeof header)) return frame;
  frame.version = header.magic == kMagic ? header.version : 0;
  if (header.magic != kMagic || header.version != kProtocolVersion ||
      header.size > kMaxPayloadBytes) {
    frame.status = Frame::Status::kForeign;
    return frame;
  }
  frame.payload.resize(header.size);
  if (!read_all(fd, frame.payload.data(), frame.payload.size())) {
    frame.payload.clear();
    return frame;
  }
  frame.status = Frame::Status::kComplete;
  return frame;
}

bool write_frame(int fd, std::string_view payload) {
  const Header header{kMagic, kProtocolVersion, payload.size()};
  return send_all(fd, reinterpret_cast<const char*>(&header), sizeof header, MSG_MORE) &&
         send_all(fd, payload.data(), payload.size(), 0);
}

}  // namespace tilejit::cuda::worker
