// The wire format between tilejit and tilejit-nvrtc-worker (worker/nvrtc_worker_main.cc): per
// compile, one request frame (the source, every NvrtcOptions field, the caller's working
// directory) and one response frame (every NvrtcOutput field, or the exception compile_cuda
// threw, with its type), over a stream socket. Both ends are built from this file, so the
// format needs no compatibility beyond the version word: a mismatch is reported, not decoded.
//
// Frame: u32 magic, u32 version, u64 payload length, payload. Integers are in host byte order
// (both ends run on one machine). Decoding is bounds-checked throughout: a truncated or
// garbled payload is an Error, never a read past the buffer or a giant allocation.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "cuda/nvrtc.h"

namespace tilejit::cuda::worker {

inline constexpr uint32_t kMagic = 0x574e4a54;  // "TJNW" in little-endian bytes
// 2: precompiled headers; 3: name expressions and lowered names; 4: the worker's compile time.
inline constexpr uint32_t kProtocolVersion = 4;
// A worker that has had no request for this long exits, releasing NVRTC's memory.
inline constexpr std::chrono::seconds kIdleTimeout{60};
// Far above any real source or cubin; a length beyond it is garbage, not a reason to allocate.
inline constexpr uint64_t kMaxPayloadBytes = uint64_t{1} << 31;

// Called once at the start of a worker process (tilejit-nvrtc-worker, and bench_nvrtc_startup's
// stand-ins for it): malloc keeps what NVRTC frees for the next compile. Never in the caller.
void keep_freed_memory();

struct Request {
  std::string working_directory;  // relative include dirs resolve against the caller's
  std::string source;
  NvrtcOptions options;
};

std::string encode_request(const Request& request);
// Throws Error when the payload is not a well-formed request.
Request decode_request(std::string_view payload);

// A compile's outcome in the worker: its output, or the exception it threw, and how long the
// worker spent on the request (decoding and compiling: the part a round trip is not IPC).
std::string encode_output(const NvrtcOutput& output, uint64_t worker_ns);
std::string encode_exception(std::exception_ptr error, uint64_t worker_ns);

// The outcome as the caller sees it.
struct Response {
  uint64_t worker_ns = 0;    // the worker's time on the request
  NvrtcOutput output;        // when `error` is null
  std::exception_ptr error;  // the worker's exception, rebuilt as the same tilejit type:
                             // CompileError (log, options, source name), ArgumentError,
                             // NotAvailableError, ProgramError, CudaError (code), else Error
};
// Throws Error (saying "malformed") when the payload is not a well-formed response.
Response decode_response(std::string_view payload);

struct Frame {
  enum class Status {
    kComplete,  // payload holds the frame
    kClosed,    // the peer closed the socket (or reset it), possibly part-way through a frame
    kForeign,   // not our magic (version 0), another protocol version, or an absurd length
  };
  Status status = Status::kClosed;
  uint32_t version = 0;
  std::string payload;
};

// Reads one frame; EINTR is retried. Throws Error on a read error other than a closed peer.
Frame read_frame(int fd);
// Writes one frame with MSG_NOSIGNAL (a dead peer is an error code, never SIGPIPE). Returns
// false when the peer has closed the socket; throws Error on any other failure.
bool write_frame(int fd, std::string_view payload);

}  // namespace tilejit::cuda::worker
