// A scripted stand-in for bin/server, for the tests of the client's own
// limits and final errors (client_test.cpp): it produces what a real server
// will not on demand (silence, a hang-up at a chosen frame, a RESUME that
// does not match, an ERROR on a chosen frame).
//
// It listens on 127.0.0.1 (port 0), accepts one connection at a time, reads
// whole request frames with the product's codec (common/protocol.hpp) and
// asks the test's script, frame by frame, what to do: reply, stay silent
// (read until the client closes, never answer) or hang up. It records every
// frame it read, per connection. Bounded: its thread stops when the object
// goes, after kLifetime, or after kMaxConnections connections; no wait in it
// is longer than what is left of kLifetime.
#pragma once

#include "common/protocol.hpp"
#include "harness.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace fake {

// One request as the fake server read it.
struct Frame {
    wire::RequestHeader header;
    wire::Bytes payload; // the bet records of BETS, the source name of OPEN
};

// What the fake server does with the frame it has just read.
struct Action {
    enum class Kind { reply, silence, hang_up };
    Kind kind = Kind::hang_up;
    wire::Bytes bytes; // reply only

    static Action reply(wire::Bytes bytes) { return {Kind::reply, std::move(bytes)}; }
    // No answer, ever: reads (and records) what comes until the client closes.
    static Action silence() { return {Kind::silence, {}}; }
    // Closes the connection at once, without a reply.
    static Action hang_up() { return {Kind::hang_up, {}}; }
};

// The test's script: what to do with `frame`, read on connection number
// `connection` (0 for the first one accepted). Runs on the server's thread.
using Script = std::function<Action(std::size_t connection, const Frame& frame)>;

// The answer of a real server to a source it has never seen, of an agency
// without winners after the draw: RESUME 0 (digest 0), an ACK of every bet
// of a BETS frame, ACK 0 to DONE, WINNERS with no document, ECHO echoed.
Action as_a_fresh_server(const Frame& frame);

class FakeServer {
public:
    static constexpr harness::Millis kLifetime = harness::kDeadline;
    static constexpr std::size_t kMaxConnections = 64;

    explicit FakeServer(Script script);
    // Stops the thread; a frame that did not decode is a test failure here.
    ~FakeServer();
    FakeServer(const FakeServer&) = delete;
    FakeServer& operator=(const FakeServer&) = delete;

    std::uint16_t port() const { return port_; }
    std::size_t connections() const { return accepted_; }
    // The frames read so far, one list per accepted connection.
    std::vector<std::vector<Frame>> sessions() const;
    // Waits until some connection has read a frame of `type`; false at the deadline.
    bool await_frame(wire::RequestType type, harness::Millis deadline = harness::kDeadline) const;

private:
    void run();
    void serve(int client, std::size_t connection);
    int accept_next();
    std::optional<Frame> read_frame(int client, std::size_t connection);
    bool read_exactly(int fd, std::uint8_t* out, std::size_t size);
    bool wait_readable(int fd);
    void problem(const std::string& text);

    Script script_;
    std::chrono::steady_clock::time_point stop_at_;
    int listener_ = -1;
    int wake_[2] = {-1, -1};
    std::uint16_t port_ = 0;
    std::atomic<std::size_t> accepted_{0};
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<std::vector<Frame>> sessions_; // guarded by mutex_
    std::string problems_;                     // guarded by mutex_
    std::thread thread_;
};

// A port of 127.0.0.1 that refuses every connection, for as long as the
// object lives: a socket bound to it that never listens. Unlike a port that
// was free a moment ago, no other program can take it meanwhile.
class RefusingPort {
public:
    RefusingPort();
    ~RefusingPort();
    RefusingPort(const RefusingPort&) = delete;
    RefusingPort& operator=(const RefusingPort&) = delete;

    std::uint16_t port() const { return port_; }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

} // namespace fake
