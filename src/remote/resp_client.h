// A Redis client for the remote cache tier (remote_cache.h): the subset of RESP2 that the
// tier speaks (commands as arrays of bulk strings; replies: simple string, error, integer,
// bulk string, nil) over one TCP connection with a deadline on every operation.
//
// Why not hiredis: the tier needs four commands, a hard time limit on connect, read and
// write (a slow server must cost milliseconds, never a hung compile), and nothing else.
// That is ~200 lines here against a library whose blocking API bounds reads only through
// socket options; writing the subset keeps the core free of a new link dependency (the
// Python extension links it statically) and makes every timeout explicit.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "toolchain/unique_fd.h"

namespace tilejit::detail {

// redis://[[user]:password@]host[:port][/db]; port 6379, db 0 and no AUTH by default.
struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string user;      // AUTH user password (Redis 6 ACLs); empty: AUTH password
  std::string password;  // empty: no AUTH

  // nullopt, with `*problem` set, when `url` is not of that form.
  static std::optional<RedisAddress> parse(std::string_view url, std::string* problem);
  std::string str() const;
};

struct RespReply {
  enum class Kind { kStatus, kError, kInteger, kBulk, kNil };
  Kind kind = Kind::kNil;
  std::string text;  // status, error message or bulk bytes
  int64_t integer = 0;
};

// Thrown for anything that makes the connection unusable: refused, timed out, closed, or a
// reply that is not RESP. A server error reply (-ERR ...) is a RespReply, not an exception.
struct RespFailure {
  std::string what;
};

class RespConnection {
 public:
  // Connects, authenticates when the address has a password, selects `address.db`; throws
  // RespFailure.
  RespConnection(const RedisAddress& address, std::chrono::milliseconds timeout);
  RespConnection(RespConnection&&) noexcept = default;
  RespConnection& operator=(RespConnection&&) noexcept = default;

  // Sends one command and reads its reply within the timeout; throws RespFailure.
  RespReply command(const std::vector<std::string_view>& args);

 private:
  void send_all(std::string_view bytes, std::chrono::steady_clock::time_point deadline);
  void fill(std::chrono::steady_clock::time_point deadline);  // reads more into buffer_
  std::string read_line(std::chrono::steady_clock::time_point deadline);
  RespReply read_reply(std::chrono::steady_clock::time_point deadline);

  UniqueFd fd_;
  std::chrono::milliseconds timeout_;
  std::string buffer_;  // received, not yet parsed (from buffer_offset_)
  size_t buffer_offset_ = 0;
};

}  // namespace tilejit::detail
