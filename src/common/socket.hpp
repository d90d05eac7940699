// TCP sockets: listening, accepting and connecting, each returning an owned Fd.
#pragma once

#include "common/fd.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

struct Endpoint {
    std::string host;
    std::uint16_t port = 0;
};
// "host:port" -> Endpoint; nothing if the text has no valid port.
std::optional<Endpoint> parse_endpoint(const std::string& text);

// Binds `host:port` (port 0: the kernel picks one) and listens on a
// non-blocking socket. On failure the Fd is invalid and `error` says which
// call failed and why.
Fd listen_tcp(const std::string& host, std::uint16_t port, int backlog, std::string& error);
// The port `socket_fd` is bound to (what SERVER_PORT=0 got); 0 on error.
std::uint16_t local_port(int socket_fd);

// Accepts one connection (EINTR retried); invalid Fd when nothing is pending
// or accept failed.
Fd accept_connection(int listener, std::string& peer);

// Connects to `endpoint`, giving up when `abort_fd` becomes readable (a
// signal arrived). The socket stays non-blocking, for the *_watching I/O.
// Invalid Fd and `error` set on failure.
Fd connect_tcp(const Endpoint& endpoint, int abort_fd, std::string& error);

// Low latency for small request/reply frames (Nagle off).
void set_no_delay(int socket_fd);
// TCP keepalive (Linux's TCP_KEEP*): a peer silent for 60 s is probed every
// 10 s, and after 6 probes unanswered its connection fails, so a machine
// that vanished is noticed within about two minutes.
void set_keepalive(int socket_fd);

// "Reply, then close" done so the reply survives: a socket closed with unread
// input makes the kernel send a reset, which can destroy the last reply before
// the peer reads it. So: shut down the sending side, read and discard what the
// peer already sent (at most `max_bytes`, for at most `timeout_ms`), then close.
void close_lingering(Fd& socket, int timeout_ms, std::size_t max_bytes);
