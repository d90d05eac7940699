// The agencies waiting for the draw, held by the coordinator. An agency's
// WINNERS before the draw is a long poll that may last as long as the
// slowest agency takes: its handler hands the connection over (channel.hpp)
// and exits, so that a waiting agency costs one descriptor here and no
// process. Once the draw is done every waiting agency is answered its own
// WINNERS (a WINNERS that arrives later is answered at once) and its
// connection closed with a lingering close. A waiting agency that leaves,
// or whose machine vanishes (TCP keepalive), is dropped.
#pragma once

#include "common/fd.hpp"
#include "common/protocol.hpp"
#include "server/channel.hpp"
#include "server/poller.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

class WaitingRoom {
public:
    // Epoll tokens of waiting connections are `id << kTokenShift | kTokenTag`
    // with ids from 1 (the caller keeps its other tokens apart by the tag).
    static constexpr unsigned kTokenShift = 2;
    static constexpr std::uint64_t kTokenTag = 2;
    // More connections waiting for one agency than this evict the oldest.
    static constexpr std::size_t kMaxPerAgency = 4;

    // An agency's winning documents, or nothing when the draw failed.
    using Winners = std::function<std::optional<std::vector<std::string>>(std::uint32_t agency)>;

    explicit WaitingRoom(Poller& poller) : poller_(poller) {}

    // Takes over `waiting`'s connection (answered at once after the draw).
    void add(WaitingAgency waiting);
    // The draw is done: answers every waiting agency with its winners, and
    // from then on each new one at once.
    void open_doors(Winners winners);
    void on_event(std::uint64_t token, std::uint32_t events);
    // Closes what lingered past its time; the wait until the next such
    // deadline, in ms (-1: none).
    int expire();
    // SIGTERM: every connection still waiting gets ERROR 6, and all close.
    void close_all();

private:
    struct Connection {
        Fd socket;
        std::uint32_t agency = 0;
        std::string peer;
        std::string outbox;  // the reply not yet written
        long long winners = -1; // documents in the answer; -1: ERROR 7 (the draw failed)
        bool answered = false;
        std::chrono::steady_clock::time_point linger_until{};
    };

    static std::uint64_t token_of(std::uint64_t id) { return id << kTokenShift | kTokenTag; }
    void answer(std::uint64_t id, Connection& connection);
    void write_reply(std::uint64_t id, Connection& connection);
    void drain(std::uint64_t id, Connection& connection);
    void close(std::uint64_t id, const char* why);

    Poller& poller_;
    Winners winners_; // set once the draw is done
    std::uint64_t last_id_ = 0;
    std::unordered_map<std::uint64_t, Connection> connections_;
    std::multimap<std::uint32_t, std::uint64_t> by_agency_; // agency -> ids, oldest first
    std::multimap<std::chrono::steady_clock::time_point, std::uint64_t> lingering_; // answered, by deadline
};
