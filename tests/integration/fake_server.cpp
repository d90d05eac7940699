// The scripted fake server (see fake_server.hpp).
#include "fake_server.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace fake {

namespace {

using Clock = std::chrono::steady_clock;

// A TCP socket bound to 127.0.0.1:0 and its port; -1 on failure.
int bind_loopback(std::uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        ADD_FAILURE() << "bind 127.0.0.1:0: " << std::strerror(errno);
        if (fd >= 0) ::close(fd);
        return -1;
    }
    port = ntohs(address.sin_port);
    return fd;
}

} // namespace

Action as_a_fresh_server(const Frame& frame) {
    switch (frame.header.type) {
    case wire::RequestType::open: return Action::reply(wire::encode_resume_reply(0, 0));
    case wire::RequestType::bets: return Action::reply(wire::encode_reply(wire::ReplyType::ack, frame.header.count));
    case wire::RequestType::done: return Action::reply(wire::encode_reply(wire::ReplyType::ack, 0));
    case wire::RequestType::winners: return Action::reply(wire::encode_winners_reply({}));
    case wire::RequestType::echo: {
        const auto head = wire::encode_request_header(frame.header);
        wire::Bytes echo(head.begin(), head.end());
        echo.insert(echo.end(), frame.payload.begin(), frame.payload.end());
        return Action::reply(std::move(echo));
    }
    }
    return Action::hang_up();
}

// ---- FakeServer ----------------------------------------------------------------------

FakeServer::FakeServer(Script script)
    : script_(std::move(script)), stop_at_(Clock::now() + kLifetime) {
    listener_ = bind_loopback(port_);
    if (listener_ < 0) return;
    if (::listen(listener_, 16) != 0 || ::pipe2(wake_, O_CLOEXEC) != 0) {
        ADD_FAILURE() << "fake server: " << std::strerror(errno);
        return;
    }
    thread_ = std::thread([this] { run(); });
}

FakeServer::~FakeServer() {
    if (thread_.joinable()) {
        (void)!::write(wake_[1], "x", 1);
        thread_.join();
    }
    for (int fd : {listener_, wake_[0], wake_[1]})
        if (fd >= 0) ::close(fd);
    std::lock_guard<std::mutex> lock(mutex_);
    if (!problems_.empty()) ADD_FAILURE() << "fake server:" << problems_;
}

std::vector<std::vector<Frame>> FakeServer::sessions() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return sessions_;
}

bool FakeServer::await_frame(wire::RequestType type, harness::Millis deadline) const {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, deadline, [&] {
        for (const auto& session : sessions_)
            for (const Frame& frame : session)
                if (frame.header.type == type) return true;
        return false;
    });
}

// One connection at a time: the client under test never holds two.
void FakeServer::run() {
    for (std::size_t connection = 0; connection < kMaxConnections; ++connection) {
        const int client = accept_next();
        if (client < 0) return;
        serve(client, connection);
        ::close(client);
    }
}

int FakeServer::accept_next() {
    if (!wait_readable(listener_)) return -1;
    const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
        problem(std::string("accept: ") + std::strerror(errno));
        return -1;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    sessions_.emplace_back();
    ++accepted_;
    changed_.notify_all();
    return client;
}

// The script's answer to each frame, until it hangs up, goes silent, or the
// client closes.
void FakeServer::serve(int client, std::size_t connection) {
    while (const auto frame = read_frame(client, connection)) {
        const Action action = script_(connection, *frame);
        if (action.kind == Action::Kind::hang_up) return;
        if (action.kind == Action::Kind::silence) {
            while (read_frame(client, connection)) {}
            return;
        }
        if (!harness::send_all(client, action.bytes)) return;
    }
}

// The next whole frame, recorded; nothing at the end of the connection.
std::optional<Frame> FakeServer::read_frame(int client, std::size_t connection) {
    std::uint8_t head[wire::kRequestHeaderSize];
    if (!read_exactly(client, head, sizeof head)) return std::nullopt;
    const auto header = wire::decode_request_header(head);
    if (!header.ok()) {
        problem("connection " + std::to_string(connection) + ": a request header that does not decode (" +
                std::string(header.reason()) + ")");
        return std::nullopt;
    }
    Frame frame{header.value(), wire::Bytes(wire::payload_size(header.value()))};
    if (!read_exactly(client, frame.payload.data(), frame.payload.size())) return std::nullopt;
    std::lock_guard<std::mutex> lock(mutex_);
    sessions_[connection].push_back(frame);
    changed_.notify_all();
    return frame;
}

bool FakeServer::read_exactly(int fd, std::uint8_t* out, std::size_t size) {
    while (size > 0) {
        if (!wait_readable(fd)) return false;
        const ssize_t got = ::recv(fd, out, size, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return false; // end of connection (EOF or reset)
        out += got;
        size -= static_cast<std::size_t>(got);
    }
    return true;
}

// True when `fd` is ready (data, end of file or error); false when the
// object is going or kLifetime is over.
bool FakeServer::wait_readable(int fd) {
    for (;;) {
        const auto left = std::chrono::duration_cast<harness::Millis>(stop_at_ - Clock::now()).count();
        if (left <= 0) return false;
        pollfd fds[2] = {{wake_[0], POLLIN, 0}, {fd, POLLIN, 0}};
        const int ready = ::poll(fds, 2, static_cast<int>(left));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0 || fds[0].revents != 0) return false;
        if (ready > 0) return true;
    }
}

void FakeServer::problem(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex_);
    problems_ += "\n  " + text;
}

// ---- RefusingPort ----------------------------------------------------------------------

RefusingPort::RefusingPort() : fd_(bind_loopback(port_)) {}

RefusingPort::~RefusingPort() {
    if (fd_ >= 0) ::close(fd_);
}

} // namespace fake
