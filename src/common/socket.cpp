// TCP socket helpers (see socket.hpp).
#include "common/socket.hpp"

#include "common/log.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

std::optional<Endpoint> parse_endpoint(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) return std::nullopt;
    unsigned port = 0;
    const char* first = text.data() + colon + 1;
    const char* last = text.data() + text.size();
    const auto [end, status] = std::from_chars(first, last, port);
    if (status != std::errc{} || end != last || first == last || port > 65535) return std::nullopt;
    return Endpoint{text.substr(0, colon), static_cast<std::uint16_t>(port)};
}

namespace {

struct AddressList {
    addrinfo* head = nullptr;
    ~AddressList() { if (head) ::freeaddrinfo(head); }
};

// IPv4 only: local_port() and accept_connection() read a sockaddr_in.
int resolve(const std::string& host, std::uint16_t port, bool passive, AddressList& list) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    const std::string service = std::to_string(port);
    return ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &list.head);
}

// Waits for a non-blocking connect to finish; false on abort or failure.
bool finish_connect(int fd, int abort_fd, std::string& error) {
    pollfd fds[2] = {{fd, POLLOUT, 0}, {abort_fd, POLLIN, 0}};
    for (;;) {
        const int ready = ::poll(fds, abort_fd >= 0 ? 2 : 1, -1);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return error = errno_text("poll"), false;
        break;
    }
    if (abort_fd >= 0 && fds[1].revents) return error = "interrupted by a signal", false;
    int status = 0;
    socklen_t length = sizeof status;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &status, &length);
    if (status != 0) return error = std::string("connect: ") + std::strerror(status), false;
    return true;
}

} // namespace

Fd listen_tcp(const std::string& host, std::uint16_t port, int backlog, std::string& error) {
    AddressList addresses;
    if (const int status = resolve(host, port, true, addresses); status != 0) {
        error = std::string("getaddrinfo: ") + ::gai_strerror(status);
        return Fd{};
    }
    const addrinfo* address = addresses.head;
    // Non-blocking, so the accept loop can take every pending connection and
    // stop at EAGAIN.
    Fd listener(::socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listener) return error = errno_text("socket"), Fd{};
    const int on = 1;
    ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (::bind(listener.get(), address->ai_addr, address->ai_addrlen) != 0)
        return error = errno_text("bind"), Fd{};
    if (::listen(listener.get(), backlog) != 0) return error = errno_text("listen"), Fd{};
    return listener;
}

std::uint16_t local_port(int socket_fd) {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    if (::getsockname(socket_fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
    return ntohs(address.sin_port);
}

Fd accept_connection(int listener, std::string& peer) {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    int fd;
    do fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&address), &length, SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return Fd{};
    char text[INET_ADDRSTRLEN] = "?";
    ::inet_ntop(AF_INET, &address.sin_addr, text, sizeof text);
    peer = std::string(text) + ":" + std::to_string(ntohs(address.sin_port));
    return Fd(fd);
}

Fd connect_tcp(const Endpoint& endpoint, int abort_fd, std::string& error) {
    AddressList addresses;
    if (const int status = resolve(endpoint.host, endpoint.port, false, addresses); status != 0) {
        error = std::string("getaddrinfo: ") + ::gai_strerror(status);
        return Fd{};
    }
    const addrinfo* address = addresses.head;
    Fd socket(::socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!socket) return error = errno_text("socket"), Fd{};
    if (::connect(socket.get(), address->ai_addr, address->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) return error = errno_text("connect"), Fd{};
        if (!finish_connect(socket.get(), abort_fd, error)) return Fd{};
    }
    return socket;
}

void set_no_delay(int socket_fd) {
    const int on = 1;
    ::setsockopt(socket_fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

void set_keepalive(int socket_fd) {
    const int on = 1, idle_s = 60, interval_s = 10, probes = 6;
    ::setsockopt(socket_fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    ::setsockopt(socket_fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
    ::setsockopt(socket_fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s);
    ::setsockopt(socket_fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
}

void close_lingering(Fd& socket, int timeout_ms, std::size_t max_bytes) {
    if (!socket) return;
    ::shutdown(socket.get(), SHUT_WR);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    char discard[4096];
    for (std::size_t drained = 0; drained < max_bytes;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd readable{socket.get(), POLLIN, 0};
        if (left.count() <= 0 || ::poll(&readable, 1, static_cast<int>(left.count())) <= 0) break;
        const ssize_t got = ::read(socket.get(), discard, sizeof discard);
        if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (got <= 0) break; // EOF: the peer has read our reply and closed
        drained += static_cast<std::size_t>(got);
    }
    socket.reset();
}
