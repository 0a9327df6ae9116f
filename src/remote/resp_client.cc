#include "remote/resp_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace tilejit::detail {
namespace {

using Clock = std::chrono::steady_clock;

// A bulk reply larger than this is not a cache entry of ours; refusing it bounds memory.
constexpr int64_t kMaxBulkBytes = int64_t{1} << 30;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

// Waits until `fd` is ready for `events` or the deadline passes.
void wait_ready(int fd, short events, Clock::time_point deadline, const char* what) {
  while (true) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return;
    if (n == 0) throw RespFailure{fmt::format("{} timed out", what)};
    if (errno != EINTR) throw RespFailure{fmt::format("{}: {}", what, std::strerror(errno))};
  }
}

bool parse_int(std::string_view text, int64_t* value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::optional<RedisAddress> RedisAddress::parse(std::string_view url, std::string* problem) {
  constexpr std::string_view kScheme = "redis://";
  if (!url.starts_with(kScheme)) {
    *problem = fmt::format("'{}' does not start with redis://", url);
    return std::nullopt;
  }
  std::string_view rest = url.substr(kScheme.size());
  RedisAddress address;
  const std::string_view authority = rest.substr(0, rest.find('/'));
  std::string_view host_port = authority;
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view credentials = authority.substr(0, at);
    const size_t separator = credentials.find(':');
    if (separator == std::string_view::npos || separator + 1 == credentials.size()) {
      *problem = fmt::format("'{}': credentials must be [user]:password@", url);
      return std::nullopt;
    }
    address.user = std::string(credentials.substr(0, separator));
    address.password = std::string(credentials.substr(separator + 1));
    host_port = authority.substr(at + 1);
  }
  const size_t colon = host_port.rfind(':');
  address.host = std::string(host_port.substr(0, colon));
  int64_t number = 0;
  if (colon != std::string_view::npos) {
    if (!parse_int(host_port.substr(colon + 1), &number) || number <= 0 || number > 65535) {
      *problem = fmt::format("'{}': the port must be a number from 1 to 65535", url);
      return std::nullopt;
    }
    address.port = static_cast<int>(number);
  }
  if (address.host.empty()) {
    *problem = fmt::format("'{}' names no host", url);
    return std::nullopt;
  }
  if (rest.size() > authority.size() + 1) {
    if (!parse_int(rest.substr(authority.size() + 1), &number) || number < 0 || number > 65535) {
      *problem = fmt::format("'{}': the database must be a non-negative number", url);
      return std::nullopt;
    }
    address.db = static_cast<int>(number);
  }
  return address;
}

std::string RedisAddress::str() const {
  // Never the password: this text goes into warnings.
  return fmt::format("redis://{}{}:{}/{}", password.empty() ? "" : "***@", host, port, db);
}

RespConnection::RespConnection(const RedisAddress& address, std::chrono::milliseconds timeout)
    : timeout_(timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port);
  if (const int rc = ::getaddrinfo(address.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw RespFailure{fmt::format("cannot resolve '{}': {}", address.host, ::gai_strerror(rc))};
  }
  std::string problem = "no address";
  for (addrinfo* ai = found; ai != nullptr && !fd_; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      problem = std::strerror(errno);
      ::close(fd);
      continue;
    }
    try {
      wait_ready(fd, POLLOUT, deadline, "connect");
    } catch (const RespFailure& failure) {
      problem = failure.what;
      ::close(fd);
      continue;
    }
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      problem = std::strerror(error);
      ::close(fd);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // small request/reply pairs
    fd_ = UniqueFd(fd);
  }
  ::freeaddrinfo(found);
  if (!fd_) throw RespFailure{fmt::format("cannot connect to {}: {}", address.str(), problem)};
  if (!address.password.empty()) {
    const RespReply reply = address.user.empty()
                                ? command({"AUTH", address.password})
                                : command({"AUTH", address.user, address.password});
    if (reply.kind != RespReply::Kind::kStatus)
      throw RespFailure{fmt::format("AUTH failed: {}", reply.text)};
  }
  if (address.db != 0) {
    const std::string db = std::to_string(address.db);
    const RespReply reply = command({"SELECT", db});
    if (reply.kind != RespReply::Kind::kStatus) {
      throw RespFailure{fmt::format("SELECT {} failed: {}", db, reply.text)};
    }
  }
}

RespReply RespConnection::command(const std::vector<std::string_view>& args) {
  if (!fd_) throw RespFailure{"connection is closed"};
  const Clock::time_point deadline = Clock::now() + timeout_;
  std::string request = fmt::format("*{}\r\n", args.size());
  for (std::string_view arg : args) {
    request += fmt::format("${}\r\n", arg.size());
    request += arg;
    request += "\r\n";
  }
  try {
    send_all(request, deadline);
    return read_reply(deadline);
  } catch (const RespFailure&) {
    // A half-read reply would be taken for the next command's: the connection is done.
    fd_.reset();
    throw;
  }
}

void RespConnection::send_all(std::string_view bytes, Clock::time_point deadline) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      wait_ready(fd_.get(), POLLOUT, deadline, "send");
    } else if (n < 0 && errno != EINTR) {
      throw RespFailure{fmt::format("send: {}", std::strerror(errno))};
    }
  }
}

void RespConnection::fill(Clock::time_point deadline) {
  buffer_.erase(0, buffer_offset_);
  buffer_offset_ = 0;
  char chunk[65536];
  while (true) {
    const ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return;
    }
    if (n == 0) throw RespFailure{"the server closed the connection"};
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_ready(fd_.get(), POLLIN, deadline, "reply");
    } else if (errno != EINTR) {
      throw RespFailure{fmt::format("recv: {}", std::strerror(errno))};
    }
  }
}

std::string RespConnection::read_line(Clock::time_point deadline) {
  while (true) {
    const size_t end = buffer_.find("\r\n", buffer_offset_);
    if (end != std::string::npos) {
      std::string line = buffer_.substr(buffer_offset_, end - buffer_offset_);
      buffer_offset_ = end + 2;
      return line;
    }
    fill(deadline);
  }
}

RespReply RespConnection::read_reply(Clock::time_point deadline) {
  const std::string line = read_line(deadline);
  if (line.empty()) throw RespFailure{"malformed reply: an empty line"};
  RespReply reply;
  const std::string_view body = std::string_view(line).substr(1);
  switch (line[0]) {
    case '+':
      reply.kind = RespReply::Kind::kStatus;
      reply.text = body;
      return reply;
    case '-':
      reply.kind = RespReply::Kind::kError;
      reply.text = body;
      return reply;
    case ':':
      reply.kind = RespReply::Kind::kInteger;
      if (!parse_int(body, &reply.integer)) throw RespFailure{"malformed integer reply"};
      return reply;
    case '$': {
      int64_t length = 0;
      if (!parse_int(body, &length) || length < -1 || length > kMaxBulkBytes)
        throw RespFailure{"malformed bulk reply"};
      if (length == -1) return reply;  // nil
      const size_t needed = static_cast<size_t>(length) + 2;
      while (buffer_.size() - buffer_offset_ < needed) fill(deadline);
      reply.kind = RespReply::Kind::kBulk;
      reply.text = buffer_.substr(buffer_offset_, static_cast<size_t>(length));
      buffer_offset_ += needed;
      return reply;
    }
    default:
      // Arrays and RESP3 types: no command the tier sends returns one.
      throw RespFailure{fmt::format("unexpected reply type '{}'", line[0])};
  }
}

}  // namespace tilejit::detail
