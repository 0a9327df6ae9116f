// A private redis-server for tests and benchmarks: loopback only, an unused port, no
// persistence, started and stopped by its owner with bounded waits. A server that cannot
// start throws (the test fails; it never skips).
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "remote/resp_client.h"
#include "toolchain/toolchain.h"

extern char** environ;  // POSIX: the process environment

namespace tilejit::testing {

class RedisServer {
 public:
  RedisServer() : port_(unused_port()) { start(); }
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::string url() const { return fmt::format("redis://127.0.0.1:{}/0", port_); }
  detail::RedisAddress address() const {
    detail::RedisAddress address;
    address.host = "127.0.0.1";
    address.port = port_;
    return address;
  }
  detail::RespConnection connect() const {
    return detail::RespConnection(address(), std::chrono::milliseconds(2000));
  }

  // Starts the server (again, on the same port) and waits until it answers PING.
  void start() {
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir_.path().string(),
                                     "--loglevel",
                                     "warning"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    // The server's own log goes to a file beside its (empty) data directory, not the test's.
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = (dir_.path() / "redis.log").string();
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    const int spawned =
        ::posix_spawnp(&pid_, "redis-server", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
      pid_ = -1;
      throw std::runtime_error("cannot run redis-server (scripts/install-deps.sh installs it)");
    }
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < give_up) {
      try {
        if (connect().command({"PING"}).text == "PONG") return;
      } catch (const detail::RespFailure&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop();
    throw std::runtime_error(
        fmt::format("redis-server did not answer on port {} within 10 s", port_));
  }

  // SIGKILL, as a crash would; waits for the process.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  // A port the kernel just handed out; redis binds it right after (a tiny window in which
  // another process could take it, which start() reports as a failure).
  static int unused_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
      throw std::runtime_error("cannot find an unused loopback port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  detail::TempDir dir_{"tilejit-redis"};
  int port_;
  pid_t pid_ = -1;
};

}  // namespace tilejit::testing
