// The agencies waiting for the draw (see waiting_room.hpp).
#include "server/waiting_room.hpp"

#include "common/io.hpp"
#include "common/log.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kLinger = std::chrono::milliseconds(2000); // to write the answer, and for the client to read it and close
constexpr std::size_t kMaxDiscard = 64 * 1024;            // bytes read and dropped before giving up on a peer
constexpr std::uint32_t kWatch = EPOLLIN | EPOLLRDHUP;

std::string text_of(const wire::Bytes& bytes) { return std::string(bytes.begin(), bytes.end()); }

} // namespace

void WaitingRoom::add(WaitingAgency waiting) {
    const auto [first, last] = by_agency_.equal_range(waiting.agency);
    if (static_cast<std::size_t>(std::distance(first, last)) >= kMaxPerAgency)
        close(first->second, "replaced by a newer connection of the agency");
    const std::uint64_t id = ++last_id_;
    set_non_blocking(waiting.client.get());
    if (!poller_.add(waiting.client.get(), kWatch, token_of(id))) {
        log_action(LogLevel::error, "epoll", Outcome::fail, {{"peer", waiting.peer}, {"error", errno_text("epoll_ctl")}});
        return; // the connection closes: the client reconnects and asks again
    }
    Connection& connection = connections_[id];
    connection.socket = std::move(waiting.client);
    connection.agency = waiting.agency;
    connection.peer = std::move(waiting.peer);
    by_agency_.emplace(connection.agency, id);
    if (winners_) answer(id, connection);
    else
        log_action(LogLevel::info, "esperando_sorteo", Outcome::in_progress,
                   {{"agencia", connection.agency}, {"peer", connection.peer}});
}

void WaitingRoom::open_doors(Winners winners) {
    winners_ = std::move(winners);
    std::vector<std::uint64_t> ids; // answering may close (erase) a connection: not while iterating
    for (const auto& [id, connection] : connections_)
        if (!connection.answered) ids.push_back(id);
    for (std::uint64_t id : ids) {
        const auto found = connections_.find(id);
        if (found != connections_.end()) answer(id, found->second);
    }
}

// Only the agency's own documents, or ERROR 7 when the draw could not read
// the store: never a partial list. The answer and the lingering close that
// follows get kLinger in all: a client that does not read is not kept.
void WaitingRoom::answer(std::uint64_t id, Connection& connection) {
    const auto documents = winners_(connection.agency);
    connection.winners = documents ? static_cast<long long>(documents->size()) : -1;
    connection.outbox = text_of(documents ? wire::encode_winners_reply(*documents)
                                          : wire::encode_error(wire::ErrorCode::storage_failure));
    connection.answered = true;
    lingering_.emplace(Clock::now() + kLinger, id);
    write_reply(id, connection);
}

// What the socket takes now; the rest when epoll says it is writable. Once
// all is written: the lingering close (our FIN, then the client's).
void WaitingRoom::write_reply(std::uint64_t id, Connection& connection) {
    while (!connection.outbox.empty()) {
        const ssize_t put = ::send(connection.socket.get(), connection.outbox.data(), connection.outbox.size(), MSG_NOSIGNAL);
        if (put > 0) {
            connection.outbox.erase(0, static_cast<std::size_t>(put));
            continue;
        }
        if (put < 0 && errno == EINTR) continue;
        if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            poller_.modify(connection.socket.get(), kWatch | EPOLLOUT, token_of(id));
            return;
        }
        log_action(LogLevel::warning, "ganadores_enviados", Outcome::fail,
                   {{"agencia", connection.agency}, {"peer", connection.peer}, {"error", errno_text("send")}});
        close(id, "client left");
        return;
    }
    if (connection.winners >= 0)
        log_action(LogLevel::info, "ganadores_enviados", Outcome::success,
                   {{"agencia", connection.agency}, {"cant_ganadores", connection.winners}});
    else
        log_action(LogLevel::warning, "WINNERS", Outcome::fail,
                   {{"agencia", connection.agency}, {"error", to_string(wire::ErrorCode::storage_failure)}});
    poller_.modify(connection.socket.get(), kWatch, token_of(id));
    ::shutdown(connection.socket.get(), SHUT_WR);
}

void WaitingRoom::on_event(std::uint64_t token, std::uint32_t events) {
    const std::uint64_t id = token >> kTokenShift;
    const auto found = connections_.find(id);
    if (found == connections_.end()) return;
    if ((events & EPOLLOUT) && !found->second.outbox.empty()) write_reply(id, found->second);
    else if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) drain(id, found->second);
}

// A waiting client has nothing more to send: EOF means it left (or, once
// answered, that it read the reply). Bytes are read and dropped, within a bound.
void WaitingRoom::drain(std::uint64_t id, Connection& connection) {
    char discard[4096];
    for (std::size_t dropped = 0; dropped < kMaxDiscard;) {
        const ssize_t got = ::recv(connection.socket.get(), discard, sizeof discard, 0);
        if (got > 0) {
            dropped += static_cast<std::size_t>(got);
            continue;
        }
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        close(id, connection.answered ? "answered" : "client left");
        return;
    }
    close(id, "sent too much while waiting");
}

int WaitingRoom::expire() {
    const auto now = Clock::now();
    while (!lingering_.empty() && lingering_.begin()->first <= now) {
        const std::uint64_t id = lingering_.begin()->second;
        lingering_.erase(lingering_.begin());
        if (connections_.count(id)) close(id, "answered");
    }
    return lingering_.empty() ? -1 : ms_until(lingering_.begin()->first);
}

void WaitingRoom::close_all() {
    const std::string goodbye = text_of(wire::encode_error(wire::ErrorCode::shutting_down));
    while (!connections_.empty()) {
        const auto first = connections_.begin();
        Connection& connection = first->second;
        if (!connection.answered) {
            // ERROR 6, our FIN, and whatever the client had sent read away: a
            // close with unread input would send a reset that can destroy the reply.
            (void)::send(connection.socket.get(), goodbye.data(), goodbye.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            ::shutdown(connection.socket.get(), SHUT_WR);
            char discard[4096];
            while (::recv(connection.socket.get(), discard, sizeof discard, MSG_DONTWAIT) > 0) {}
            log_action(LogLevel::info, "request_interrupted", Outcome::in_progress,
                       {{"agencia", connection.agency}, {"request", "WINNERS"}, {"reason", "shutting down"}});
        }
        close(first->first, "server shutting down");
    }
}

void WaitingRoom::close(std::uint64_t id, const char* why) {
    const auto found = connections_.find(id);
    if (found == connections_.end()) return;
    const std::uint32_t agency = found->second.agency;
    for (auto [first, last] = by_agency_.equal_range(agency); first != last; ++first) {
        if (first->second != id) continue;
        by_agency_.erase(first);
        break;
    }
    poller_.remove(found->second.socket.get());
    log_action(LogLevel::info, "close_socket", Outcome::success,
               {{"peer", found->second.peer}, {"agencia", agency}, {"reason", why}});
    connections_.erase(found);
}
