// Hostile input against the real bin/server (SPEC §5 wire protocol, §6
// server): malformed frames, truncated frames, invalid bets, wrong agencies,
// batch gaps, bets after DONE, random garbage, silent clients, too many
// connections, WINNERS isolation and long poll, and SIGTERM in the middle of
// all that.
//
// The rule checked after every case: it costs only its own connection. The
// offending connection gets the documented reply and/or is closed, the server
// process is still alive, a connection opened before the case still works and
// a fresh one does too; nothing the hostile traffic sent reaches the store,
// no handler dies of a signal and every log line still parses.
//
// Frames are built with the product's codec (common/protocol.hpp) when they
// are valid and by hand when they are not. Every wait has a deadline; the
// only timed waits are the few that assert the absence of a reply.
#include "harness.hpp"
#include "scenario.hpp"

#include "common/protocol.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using harness::Millis;
using harness::TempDir;
using harness::with_action;
using wire::Bytes;
using wire::ErrorCode;
using wire::ReplyType;

namespace {

using Clock = std::chrono::steady_clock;

constexpr Millis kIo{10000};     // any reply, EOF or log line we wait for
constexpr Millis kSilence{200};  // "no reply arrives": the only timed wait
constexpr Millis kShutdown{2000}; // SPEC §6: exit within 2 s of SIGTERM

// Field offsets inside a 146-byte bet record (SPEC §5).
constexpr std::size_t kFirstName = 0;
constexpr std::size_t kLastName = 64;
constexpr std::size_t kDocument = 128;
constexpr std::size_t kBirthdate = 136;
constexpr std::size_t kNumber = 144;

long long ms_since(Clock::time_point start) {
    return std::chrono::duration_cast<Millis>(Clock::now() - start).count();
}

// ---- raw bytes --------------------------------------------------------------------

// A request header exactly as given, whatever it means.
Bytes header(std::uint16_t type, std::uint32_t agency, std::uint32_t batch, std::uint16_t count) {
    Bytes bytes(wire::kRequestHeaderSize);
    wire::put_u16(&bytes[0], type);
    wire::put_u32(&bytes[2], agency);
    wire::put_u32(&bytes[6], batch);
    wire::put_u16(&bytes[10], count);
    return bytes;
}

Bytes concat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

Bytes reply_bytes(ReplyType type, std::uint32_t value) { return wire::encode_reply(type, value); }

std::string describe(const Bytes& bytes) {
    if (bytes.size() == wire::kReplyHeaderSize) {
        const auto reply = wire::decode_reply_header(bytes.data());
        if (reply.ok()) {
            static const char* const kNames[] = {"?", "ACK", "ERROR", "WINNERS", "ECHO"};
            return std::string(kNames[static_cast<int>(reply.value().type)]) + " " +
                   std::to_string(reply.value().value);
        }
    }
    std::ostringstream out;
    out << bytes.size() << " bytes [";
    for (std::size_t i = 0; i < std::min<std::size_t>(bytes.size(), 24); ++i)
        out << (i ? " " : "") << std::hex << static_cast<int>(bytes[i]);
    out << (bytes.size() > 24 ? " ...]" : "]");
    return out.str();
}

// ---- bets -------------------------------------------------------------------------

// A valid bet, distinct per (agency, i).
Bet make_bet(std::uint32_t agency, int i, std::uint16_t number = 1234) {
    Bet bet;
    bet.agency = agency;
    bet.first_name = "Nombre " + std::to_string(i);
    bet.last_name = "Apellido";
    bet.document = std::to_string(30000000 + agency * 100000 + static_cast<std::uint32_t>(i));
    bet.birthdate = "1990-01-15";
    bet.number = number;
    return bet;
}

std::vector<Bet> make_bets(std::uint32_t agency, int first, int count) {
    std::vector<Bet> bets;
    for (int i = first; i < first + count; ++i) bets.push_back(make_bet(agency, i));
    return bets;
}

scenario::Bet expected(const Bet& bet) {
    return {bet.agency, bet.first_name, bet.last_name, bet.document, bet.birthdate, bet.number};
}

std::multiset<scenario::Bet> expected(const std::vector<Bet>& bets) {
    std::multiset<scenario::Bet> out;
    for (const Bet& bet : bets) out.insert(expected(bet));
    return out;
}

template <typename... Lists>
std::vector<Bet> join(std::vector<Bet> first, const Lists&... rest) {
    (first.insert(first.end(), rest.begin(), rest.end()), ...);
    return first;
}

// Overwrites one field of bet `index` in a BETS frame: `value`, right-padded
// with spaces to `width`.
Bytes patch(Bytes frame, std::size_t index, std::size_t offset, std::size_t width, const std::string& value) {
    std::uint8_t* field = &frame[wire::kRequestHeaderSize + index * wire::kBetSize + offset];
    std::memset(field, ' ', width);
    std::memcpy(field, value.data(), std::min(width, value.size()));
    return frame;
}

// ---- a raw TCP client ---------------------------------------------------------------

enum class End { open, eof, reset, error }; // open: deadline or byte limit reached first

const char* to_text(End end) {
    switch (end) {
    case End::open: return "still open";
    case End::eof: return "EOF";
    case End::reset: return "connection reset";
    case End::error: return "socket error";
    }
    return "?";
}

struct Received {
    Bytes bytes;
    End end = End::open;
};

class Conn {
public:
    explicit Conn(std::uint16_t port, int receive_buffer = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) return;
        if (receive_buffer > 0) // before connect, so the window is small from the start
            ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(port);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            close();
            return;
        }
        socklen_t length = sizeof address;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
        char text[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, &address.sin_addr, text, sizeof text);
        peer_ = std::string(text) + ":" + std::to_string(ntohs(address.sin_port));
    }
    ~Conn() { close(); }
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

    bool connected() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    // "127.0.0.1:<port>" as the server logs it (`peer: ...`).
    const std::string& peer() const { return peer_; }

    bool send(const Bytes& bytes) { return connected() && harness::send_all(fd_, bytes); }
    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    // Abortive close: the peer gets a RST instead of a FIN.
    void reset() {
        linger abort{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
        close();
    }

    // Reads until `want` bytes arrived (0: no limit), the peer closed, or the deadline.
    Received receive(std::size_t want, Millis deadline = kIo) {
        Received got;
        const auto end = Clock::now() + deadline;
        while (want == 0 || got.bytes.size() < want) {
            const auto left = std::chrono::duration_cast<Millis>(end - Clock::now()).count();
            if (left <= 0) break;
            pollfd readable{fd_, POLLIN, 0};
            const int ready = ::poll(&readable, 1, static_cast<int>(left));
            if (ready < 0 && errno == EINTR) continue;
            if (ready <= 0) break;
            std::uint8_t buffer[64 * 1024];
            const std::size_t room = want == 0 ? sizeof buffer : std::min(sizeof buffer, want - got.bytes.size());
            const ssize_t n = ::recv(fd_, buffer, room, 0);
            if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
            if (n == 0) {
                got.end = End::eof;
                break;
            }
            if (n < 0) {
                got.end = errno == ECONNRESET ? End::reset : End::error;
                break;
            }
            got.bytes.insert(got.bytes.end(), buffer, buffer + n);
        }
        return got;
    }

    // Sends `bytes` while reading whatever comes back, until the peer closes
    // or the deadline. A send refused because the peer is gone is expected.
    Received pump(const Bytes& bytes, Millis deadline = kIo) {
        ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
        Received got;
        std::size_t sent = 0;
        bool can_send = true;
        const auto end = Clock::now() + deadline;
        for (;;) {
            const auto left = std::chrono::duration_cast<Millis>(end - Clock::now()).count();
            if (left <= 0) break;
            const bool sending = can_send && sent < bytes.size();
            pollfd fds{fd_, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
            const int ready = ::poll(&fds, 1, static_cast<int>(left));
            if (ready < 0 && errno == EINTR) continue;
            if (ready <= 0) break;
            if (fds.revents & (POLLIN | POLLHUP | POLLERR)) {
                std::uint8_t buffer[64 * 1024];
                const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
                if (n == 0) {
                    got.end = End::eof;
                    break;
                }
                if (n > 0) got.bytes.insert(got.bytes.end(), buffer, buffer + n);
                else if (errno == ECONNRESET) {
                    got.end = End::reset;
                    break;
                } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
                    got.end = End::error;
                    break;
                }
            }
            if (sending && (fds.revents & POLLOUT)) {
                const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
                if (n > 0) sent += static_cast<std::size_t>(n);
                else if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) can_send = false;
            }
        }
        ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
        sent_ = sent;
        return got;
    }
    std::size_t pumped() const { return sent_; }

private:
    int fd_ = -1;
    std::string peer_;
    std::size_t sent_ = 0;
};

// ---- reply assertions ----------------------------------------------------------------

// The next reply is exactly `type value` (6 bytes).
::testing::AssertionResult replies(Conn& conn, ReplyType type, std::uint32_t value) {
    const Received got = conn.receive(wire::kReplyHeaderSize);
    const Bytes want = reply_bytes(type, value);
    if (got.bytes == want) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "expected " << describe(want) << ", got " << describe(got.bytes)
                                         << " (" << to_text(got.end) << ")";
}

::testing::AssertionResult acks(Conn& conn, std::uint32_t count) { return replies(conn, ReplyType::ack, count); }
::testing::AssertionResult refuses(Conn& conn, ErrorCode code) {
    return replies(conn, ReplyType::error, static_cast<std::uint32_t>(code));
}

// Exactly `ERROR code` and then the server closes the connection (EOF; a
// reset is accepted only when `reset_ok`, i.e. when the test left unread
// bytes on the server's side, which makes the kernel answer with a RST).
::testing::AssertionResult error_then_closed(Conn& conn, ErrorCode code, bool reset_ok = false) {
    const Received got = conn.receive(0);
    const Bytes want = wire::encode_error(code);
    const bool closed = got.end == End::eof || (reset_ok && got.end == End::reset);
    if (got.bytes == want && closed) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "expected " << describe(want) << " then EOF, got " << describe(got.bytes)
                                         << " then " << to_text(got.end);
}

// The server closes the connection without sending anything.
::testing::AssertionResult closed_silently(Conn& conn, Millis deadline = kIo) {
    const Received got = conn.receive(0, deadline);
    if (got.bytes.empty() && got.end == End::eof) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "expected EOF and no bytes, got " << describe(got.bytes) << " then "
                                         << to_text(got.end);
}

// Nothing arrives (and the connection stays open) for kSilence.
::testing::AssertionResult stays_silent(Conn& conn) {
    const Received got = conn.receive(1, kSilence);
    if (got.bytes.empty() && got.end == End::open) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "expected no reply for " << kSilence.count() << " ms, got "
                                         << describe(got.bytes) << " (" << to_text(got.end) << ")";
}

// An ECHO frame comes back byte for byte on this connection.
::testing::AssertionResult echoes(Conn& conn, const std::string& payload) {
    if (!conn.connected()) return ::testing::AssertionFailure() << "not connected";
    const Bytes frame = wire::encode_echo_frame(payload);
    if (!conn.send(frame)) return ::testing::AssertionFailure() << "cannot send ECHO: " << std::strerror(errno);
    const Received got = conn.receive(frame.size());
    if (got.bytes == frame) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "ECHO of " << frame.size() << " bytes answered with " << describe(got.bytes)
                                         << " (" << to_text(got.end) << ")";
}

// The documents of a WINNERS reply (nullopt + failure text otherwise).
std::optional<std::multiset<std::string>> winners(Conn& conn, std::string& problem) {
    const Received head = conn.receive(wire::kReplyHeaderSize);
    if (head.bytes.size() != wire::kReplyHeaderSize) {
        problem = "no WINNERS reply: " + describe(head.bytes) + " (" + to_text(head.end) + ")";
        return std::nullopt;
    }
    const auto reply = wire::decode_reply_header(head.bytes.data());
    if (!reply.ok() || reply.value().type != ReplyType::winners) {
        problem = "expected WINNERS, got " + describe(head.bytes);
        return std::nullopt;
    }
    const std::size_t count = reply.value().value;
    if (count == 0) return std::multiset<std::string>{};
    const Received body = conn.receive(count * wire::kDocumentSize);
    if (body.bytes.size() != count * wire::kDocumentSize) {
        problem = "WINNERS " + std::to_string(count) + " but only " + std::to_string(body.bytes.size()) + " bytes";
        return std::nullopt;
    }
    const auto documents = wire::decode_documents(body.bytes.data(), count);
    if (!documents.ok()) {
        problem = "bad documents in WINNERS";
        return std::nullopt;
    }
    return std::multiset<std::string>(documents.value().begin(), documents.value().end());
}

// ---- logs ---------------------------------------------------------------------------

std::string escape(const std::string& text) {
    static const std::regex kSpecial(R"([.^$|()\[\]{}*+?\\])");
    return std::regex_replace(text, kSpecial, R"(\$&)");
}

std::size_t count_matching(const std::string& log, const std::regex& pattern) {
    std::size_t count = 0;
    for (const std::string& line : harness::read_lines(log))
        if (std::regex_search(line, pattern)) ++count;
    return count;
}

// Waits until at least `count` lines of `log` match; returns how many did.
std::size_t await_count(const std::string& log, const std::regex& pattern, std::size_t count, Millis deadline = kIo) {
    const auto end = Clock::now() + deadline;
    for (;;) {
        const std::size_t found = count_matching(log, pattern);
        if (found >= count || Clock::now() >= end) return found;
        std::this_thread::sleep_for(Millis(3));
    }
}

// A `result: fail` line about this peer (the server must say why it dropped it).
std::regex fail_about(const Conn& conn) {
    return std::regex("(WARNING|ERROR) +action: [a-z_]+ \\| result: fail \\|.*peer: " + escape(conn.peer()) +
                      "( \\||$)");
}

// ---- the fixture --------------------------------------------------------------------

class Hostile : public ::testing::Test {
protected:
    // Starts the server; with `observer`, also opens a well-behaved connection
    // before any hostile traffic, which must keep working throughout.
    void start(unsigned agencies, const scenario::Env& extra = {}, bool observer = true) {
        ASSERT_NO_FATAL_FAILURE(scenario::start_server(dir_, agencies, server_, extra));
        if (!observer) return;
        observer_ = std::make_unique<Conn>(server_.port);
        ASSERT_TRUE(observer_->connected());
        ASSERT_TRUE(echoes(*observer_, "observer, before"));
    }

    std::uint16_t port() const { return server_.port; }
    std::string server_log() { return harness::read_file(server_.log); }

    // The case cost only its own connection.
    void expect_unharmed(const std::string& after) {
        SCOPED_TRACE("after " + after);
        ASSERT_TRUE(server_.process.running()) << "the server died; log:\n" << server_log();
        if (observer_) {
            EXPECT_TRUE(echoes(*observer_, "observer, after " + after)) << "the earlier connection";
        }
        Conn fresh(port());
        ASSERT_TRUE(fresh.connected()) << "cannot connect any more";
        EXPECT_TRUE(echoes(fresh, "fresh, after " + after)) << "a new connection";
    }

    std::multiset<scenario::Bet> store() { return scenario::read_store(server_.store); }
    std::size_t store_lines() {
        std::size_t lines = 0;
        for (const std::string& line : harness::read_lines(server_.store))
            if (!line.empty()) ++lines;
        return lines;
    }

    // SIGTERM; returns when it was sent.
    Clock::time_point send_sigterm() {
        const auto sent = Clock::now();
        server_.process.send_signal(SIGTERM);
        return sent;
    }

    // After SIGTERM at `sent`: exit code 0 within SPEC §6's 2 s, last line `exit | success`.
    void expect_graceful_exit(Clock::time_point sent) {
        const int code = server_.process.wait_exit(Millis(10000));
        EXPECT_EQ(code, 0) << "server exit code after SIGTERM";
        EXPECT_LT(ms_since(sent), kShutdown.count()) << "SPEC §6: exit within 2 s of SIGTERM";
        const auto lines = harness::parse_log(server_.log);
        ASSERT_FALSE(lines.empty());
        EXPECT_EQ(lines.back().action, "exit") << lines.back().raw;
        EXPECT_EQ(lines.back().result, "success") << lines.back().raw;
    }

    // Every test ends with SIGTERM (the observer, if any, still connected):
    // exit 0 within 2 s, every log line parses, no handler died of a signal
    // during the test and none had to be SIGKILLed at shutdown.
    void TearDown() override {
        if (!server_.process.started()) return;
        if (server_.process.running()) {
            ASSERT_NO_FATAL_FAILURE(expect_graceful_exit(send_sigterm()));
        }
        observer_.reset();
        const auto lines = harness::parse_log(server_.log);
        EXPECT_EQ(harness::fail_lines(with_action(lines, "handler_exit", "fail")), "") << "a handler died of a signal";
        std::string killed;
        for (const auto& line : with_action(lines, "handler_kill")) killed += "\n  " + line.raw;
        EXPECT_EQ(killed, "") << "handlers had to be SIGKILLed at shutdown (they must exit on their own)";
    }

    TempDir dir_; // first member: destroyed last, kept when the test failed
    scenario::Server server_;
    std::unique_ptr<Conn> observer_;
};

// ---- malformed frames: ERROR 1, then the connection is closed -------------------------------

struct Malformed {
    const char* name;
    Bytes frame;
};

std::ostream& operator<<(std::ostream& out, const Malformed& m) { return out << m.name; }

class HostileMalformed : public Hostile, public ::testing::WithParamInterface<Malformed> {};

TEST_P(HostileMalformed, Error1ThenCloseAndNothingElseIsHurt) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    Conn bad(port());
    ASSERT_TRUE(bad.connected());
    ASSERT_TRUE(bad.send(GetParam().frame));
    EXPECT_TRUE(error_then_closed(bad, ErrorCode::malformed_frame));
    EXPECT_TRUE(harness::wait_for_line(server_.log, fail_about(bad), kIo, &server_.process))
        << "no WARNING/ERROR line about " << bad.peer() << "; log:\n" << server_log();
    ASSERT_NO_FATAL_FAILURE(expect_unharmed(GetParam().name));
    EXPECT_EQ(store_lines(), 0u) << "a malformed frame stored something";
}

INSTANTIATE_TEST_SUITE_P(
    Hostile, HostileMalformed,
    ::testing::Values(Malformed{"type_0", header(0, 1, 0, 0)}, Malformed{"type_5", header(5, 1, 0, 0)},
                      Malformed{"type_FFFF", header(0xFFFF, 1, 1, 1)},
                      Malformed{"bets_count_0", header(1, 1, 1, 0)},
                      Malformed{"bets_count_57", header(1, 1, 1, 57)},
                      Malformed{"bets_count_FFFF", header(1, 1, 1, 0xFFFF)},
                      Malformed{"echo_count_8181", header(4, 0, 0, 8181)},
                      Malformed{"echo_count_FFFF", header(4, 0, 0, 0xFFFF)},
                      Malformed{"done_batch_1", header(2, 1, 1, 0)},
                      Malformed{"done_count_1", header(2, 1, 0, 1)},
                      Malformed{"winners_batch_1", header(3, 1, 1, 0)},
                      Malformed{"winners_count_1", header(3, 1, 0, 1)},
                      Malformed{"bets_batch_0", header(1, 1, 0, 1)}),
    [](const ::testing::TestParamInfo<Malformed>& info) { return std::string(info.param.name); });

// A session that already stored a batch loses only its connection; the
// agency's state survives and its next batch goes on a new connection.
TEST_F(Hostile, MalformedFrameMidSessionKeepsWhatWasStored) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const auto first = make_bets(1, 0, 3), second = make_bets(1, 3, 2);
    {
        Conn conn(port());
        ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 1, first)));
        ASSERT_TRUE(acks(conn, 3));
        ASSERT_TRUE(conn.send(header(9, 1, 2, 1)));
        EXPECT_TRUE(error_then_closed(conn, ErrorCode::malformed_frame));
    }
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("a malformed frame after a stored batch"));
    Conn again(port());
    ASSERT_TRUE(again.send(wire::encode_bets_frame(1, 2, second)));
    EXPECT_TRUE(acks(again, 2));
    EXPECT_EQ(store(), expected(join(first, second)));
}

// ---- truncated frames and peers that vanish -------------------------------------------------

// A header announcing 3 bets, 100 bytes, and the client's write side closed:
// the server gives up on the connection, says why, and stores nothing.
TEST_F(Hostile, TruncatedFrameIsDroppedAndNothingStored) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const Bytes full = wire::encode_bets_frame(1, 1, make_bets(1, 0, 3));
    struct Case {
        const char* name;
        std::size_t payload;
    };
    for (const Case& c : {Case{"header of 3 bets + 100 bytes", 100},
                          Case{"header of 3 bets + 2 whole bets + 100 bytes", 2 * wire::kBetSize + 100}}) {
        SCOPED_TRACE(c.name);
        Conn conn(port());
        ASSERT_TRUE(conn.send(Bytes(full.begin(), full.begin() + wire::kRequestHeaderSize + c.payload)));
        conn.shutdown_write();
        EXPECT_TRUE(closed_silently(conn)) << "the server must close a connection whose frame can never complete";
        EXPECT_TRUE(harness::wait_for_line(server_.log, fail_about(conn), kIo, &server_.process))
            << "no warning about the truncated frame from " << conn.peer() << "; log:\n" << server_log();
        ASSERT_NO_FATAL_FAILURE(expect_unharmed(c.name));
    }
    EXPECT_EQ(store_lines(), 0u) << "bets of a truncated frame were stored";
    // The batch number was not consumed: a complete batch 1 is stored now.
    Conn conn(port());
    ASSERT_TRUE(conn.send(full));
    EXPECT_TRUE(acks(conn, 3));
    EXPECT_EQ(store_lines(), 3u);
}

TEST_F(Hostile, PeerClosingMidHeaderOrMidPayload) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const Bytes frame = wire::encode_bets_frame(1, 1, make_bets(1, 0, 2));
    {
        SCOPED_TRACE("5 header bytes, then close");
        Conn conn(port());
        ASSERT_TRUE(conn.send(Bytes(frame.begin(), frame.begin() + 5)));
        const std::string peer = conn.peer();
        const std::regex about = fail_about(conn);
        conn.close();
        EXPECT_TRUE(harness::wait_for_line(server_.log, about, kIo, &server_.process))
            << "no warning about " << peer << " leaving mid-header; log:\n" << server_log();
        ASSERT_NO_FATAL_FAILURE(expect_unharmed("a peer that closed mid-header"));
    }
    {
        SCOPED_TRACE("header + half a bet, then RST");
        Conn conn(port());
        ASSERT_TRUE(conn.send(Bytes(frame.begin(), frame.begin() + wire::kRequestHeaderSize + 73)));
        const std::regex about = fail_about(conn);
        conn.reset();
        EXPECT_TRUE(harness::wait_for_line(server_.log, about, kIo, &server_.process))
            << "no warning about a reset mid-payload; log:\n" << server_log();
        ASSERT_NO_FATAL_FAILURE(expect_unharmed("a peer that reset mid-payload"));
    }
    EXPECT_EQ(store_lines(), 0u);
}

// ---- invalid bets: ERROR 2, whole batch rejected, the connection stays open -------------------

struct InvalidBet {
    const char* name;
    std::size_t offset;
    std::size_t width;
    std::string value;
};

std::ostream& operator<<(std::ostream& out, const InvalidBet& b) { return out << b.name; }

class HostileInvalidBet : public Hostile, public ::testing::WithParamInterface<InvalidBet> {};

TEST_P(HostileInvalidBet, Error2RejectsTheWholeBatchAndTheConnectionStaysOpen) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const InvalidBet& bad = GetParam();
    // Three bets, only the middle one is invalid: all-or-nothing.
    Bytes frame = wire::encode_bets_frame(1, 1, make_bets(1, 0, 3));
    frame = patch(frame, 1, bad.offset, bad.width, bad.value);
    Conn conn(port());
    ASSERT_TRUE(conn.send(frame));
    EXPECT_TRUE(refuses(conn, ErrorCode::invalid_bet));
    EXPECT_EQ(store_lines(), 0u) << "a batch with an invalid bet was (partly) stored";
    // Same connection, same batch number, now valid: stored and ACKed with its count.
    // Valid but awkward values ride along: a document with leading zeros,
    // CSV metacharacters and multi-byte UTF-8 in names, a 64-byte name.
    std::vector<Bet> good = make_bets(1, 10, 4);
    good[0].document = "00000042";
    good[1].first_name = "Ana, \"la\" Grande";
    good[1].last_name = "O'Brien;\"";
    good[2].first_name = "Zoë Ñandú 🎲";
    good[3].last_name = std::string(64, 'x');
    good[3].birthdate = "2000-02-29";
    good[3].number = 9999;
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 1, good)));
    EXPECT_TRUE(acks(conn, 4)) << "the connection must stay usable after ERROR 2";
    EXPECT_EQ(store(), expected(good));
    ASSERT_NO_FATAL_FAILURE(expect_unharmed(bad.name));
}

std::string u16(std::uint16_t value) {
    return std::string{static_cast<char>(value >> 8), static_cast<char>(value & 0xff)};
}

INSTANTIATE_TEST_SUITE_P(
    Hostile, HostileInvalidBet,
    ::testing::Values(
        InvalidBet{"utf8_invalid_continuation", kFirstName, 64, "Jos\xC3\x28"},
        InvalidBet{"utf8_lone_continuation", kLastName, 64, "P\x80rez"},
        InvalidBet{"utf8_overlong_slash", kFirstName, 64, "a\xC0\xAF"},
        InvalidBet{"utf8_surrogate", kLastName, 64, "x\xED\xA0\x80y"},
        InvalidBet{"utf8_above_10FFFF", kFirstName, 64, "x\xF4\x90\x80\x80"},
        InvalidBet{"utf8_cut_at_field_end", kFirstName, 64, std::string(63, 'a') + "\xC3"},
        InvalidBet{"control_char_in_name", kFirstName, 64, "Ana\x01" "Mar\xC3\xAD" "a"},
        InvalidBet{"newline_in_name", kLastName, 64, "Lopez\nX"},
        InvalidBet{"nul_in_name", kLastName, 64, std::string("Lo\0pez", 6)},
        InvalidBet{"del_in_name", kFirstName, 64, "Ana\x7F"},
        InvalidBet{"c1_control_in_name", kFirstName, 64, "Ana\xC2\x85"},
        InvalidBet{"empty_first_name", kFirstName, 64, ""},
        InvalidBet{"empty_last_name", kLastName, 64, ""},
        InvalidBet{"document_with_letters", kDocument, 8, "12A45678"},
        InvalidBet{"document_empty", kDocument, 8, ""},
        InvalidBet{"document_inner_space", kDocument, 8, "123 4567"},
        InvalidBet{"document_leading_space", kDocument, 8, " 1234567"},
        InvalidBet{"document_sign", kDocument, 8, "-1234567"},
        InvalidBet{"birthdate_20010230", kBirthdate, 8, "20010230"},
        InvalidBet{"birthdate_19000229", kBirthdate, 8, "19000229"},
        InvalidBet{"birthdate_month_13", kBirthdate, 8, "19901301"},
        InvalidBet{"birthdate_day_0", kBirthdate, 8, "19900100"},
        InvalidBet{"birthdate_year_0", kBirthdate, 8, "00000101"},
        InvalidBet{"birthdate_letters", kBirthdate, 8, "1990O1O1"},
        InvalidBet{"birthdate_with_dashes", kBirthdate, 8, "90-01-01"},
        InvalidBet{"birthdate_empty", kBirthdate, 8, ""},
        InvalidBet{"number_10000", kNumber, 2, u16(10000)},
        InvalidBet{"number_FFFF", kNumber, 2, u16(0xFFFF)}),
    [](const ::testing::TestParamInfo<InvalidBet>& info) { return std::string(info.param.name); });

// ---- agencies: ERROR 3 --------------------------------------------------------------------

TEST_F(Hostile, BadAgencyGetsError3AndStoresNothing) {
    ASSERT_NO_FATAL_FAILURE(start(2));
    struct Case {
        const char* name;
        Bytes frame;
    };
    const Case cases[] = {
        {"BETS agency 0", wire::encode_bets_frame(0, 1, make_bets(0, 0, 2))},
        {"BETS agency 3 of 2", wire::encode_bets_frame(3, 1, make_bets(3, 0, 2))},
        {"BETS agency 65535", wire::encode_bets_frame(65535, 1, make_bets(7, 0, 1))},
        {"BETS agency 2^32-1", wire::encode_bets_frame(0xFFFFFFFFu, 1, make_bets(7, 0, 1))},
        {"DONE agency 0", wire::encode_request(wire::RequestType::done, 0)},
        {"DONE agency 3", wire::encode_request(wire::RequestType::done, 3)},
        {"WINNERS agency 3", wire::encode_request(wire::RequestType::winners, 3)},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        Conn conn(port());
        ASSERT_TRUE(conn.send(c.frame));
        EXPECT_TRUE(refuses(conn, ErrorCode::bad_agency));
        EXPECT_TRUE(echoes(conn, "still open after ERROR 3")) << "ERROR 3 does not close the connection";
        ASSERT_NO_FATAL_FAILURE(expect_unharmed(c.name));
    }
    EXPECT_EQ(store_lines(), 0u);
    // Had a bad DONE counted, agencies 1 and 2 would not both be needed for the draw.
    EXPECT_EQ(count_matching(server_.log, std::regex("action: sorteo ")), 0u) << "a draw ran after bad DONEs";
}

// A connection belongs to the first agency it names.
TEST_F(Hostile, ConnectionThatUsedAgency1CannotSpeakForAgency2) {
    ASSERT_NO_FATAL_FAILURE(start(2));
    const auto one_a = make_bets(1, 0, 2), one_b = make_bets(1, 2, 2), two = make_bets(2, 0, 3);
    Conn conn(port());
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 1, one_a)));
    ASSERT_TRUE(acks(conn, 2));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(2, 1, two)));
    EXPECT_TRUE(refuses(conn, ErrorCode::bad_agency)) << "BETS for agency 2 on agency 1's connection";
    ASSERT_TRUE(conn.send(wire::encode_request(wire::RequestType::done, 2)));
    EXPECT_TRUE(refuses(conn, ErrorCode::bad_agency)) << "DONE for agency 2 on agency 1's connection";
    ASSERT_TRUE(conn.send(wire::encode_request(wire::RequestType::winners, 2)));
    EXPECT_TRUE(refuses(conn, ErrorCode::bad_agency)) << "WINNERS for agency 2 on agency 1's connection";
    // The connection still serves its own agency.
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 2, one_b)));
    EXPECT_TRUE(acks(conn, 2));
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("agency 2 on agency 1's connection"));
    EXPECT_EQ(store(), expected(join(one_a, one_b))) << "agency 2's refused batch reached the store";
    // Agency 2's batch 1 was not consumed by the refusal.
    Conn other(port());
    ASSERT_TRUE(other.send(wire::encode_bets_frame(2, 1, two)));
    EXPECT_TRUE(acks(other, 3));
    EXPECT_EQ(store(), expected(join(one_a, one_b, two)));
}

// ---- batch sequence: ERROR 4, duplicates re-acknowledged -----------------------------------

TEST_F(Hostile, BatchGapGetsError4AndADuplicateIsAcknowledgedButNotStoredTwice) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const auto first = make_bets(1, 0, 3), third = make_bets(1, 3, 2), second = make_bets(1, 5, 4);
    Conn conn(port());
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 1, first)));
    ASSERT_TRUE(acks(conn, 3));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 3, third)));
    EXPECT_TRUE(refuses(conn, ErrorCode::batch_out_of_sequence)) << "batch 3 after batch 1";
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0xFFFFFFFFu, third)));
    EXPECT_TRUE(refuses(conn, ErrorCode::batch_out_of_sequence)) << "batch 2^32-1 after batch 1";
    EXPECT_EQ(store_lines(), 3u);
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 1, first)));
    EXPECT_TRUE(acks(conn, 3)) << "a re-sent batch is acknowledged with its count again";
    EXPECT_EQ(store_lines(), 3u) << "the re-sent batch was stored twice";
    {
        Conn other(port()); // a reconnecting client re-sends on a new connection
        ASSERT_TRUE(other.send(wire::encode_bets_frame(1, 1, first)));
        EXPECT_TRUE(acks(other, 3));
    }
    EXPECT_EQ(store_lines(), 3u) << "the batch re-sent on another connection was stored twice";
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 2, second)));
    EXPECT_TRUE(acks(conn, 4)) << "the sequence goes on after the refusals";
    EXPECT_EQ(store(), expected(join(first, second)));
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("a batch gap and duplicates"));
}

// ---- after DONE: ERROR 5 for new bets, re-sent ones still acknowledged ----------------------

TEST_F(Hostile, BetsAfterDoneGetError5) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    auto first = make_bets(1, 0, 3);
    first[1].number = 7574;
    Conn conn(port());
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 1, first)));
    ASSERT_TRUE(acks(conn, 3));
    ASSERT_TRUE(conn.send(wire::encode_request(wire::RequestType::done, 1)));
    ASSERT_TRUE(acks(conn, 0)) << "DONE is acknowledged with 0";
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 2, make_bets(1, 3, 2))));
    EXPECT_TRUE(refuses(conn, ErrorCode::agency_done)) << "batch 2 after DONE";
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 1, first)));
    EXPECT_TRUE(acks(conn, 3)) << "batch 1 re-sent after DONE";
    ASSERT_TRUE(conn.send(wire::encode_request(wire::RequestType::done, 1)));
    EXPECT_TRUE(acks(conn, 0)) << "DONE is idempotent";
    {
        Conn other(port());
        ASSERT_TRUE(other.send(wire::encode_bets_frame(1, 2, make_bets(1, 3, 2))));
        EXPECT_TRUE(refuses(other, ErrorCode::agency_done)) << "batch 2 after DONE on another connection";
    }
    EXPECT_EQ(store(), expected(first));
    ASSERT_TRUE(conn.send(wire::encode_request(wire::RequestType::winners, 1)));
    std::string problem;
    const auto documents = winners(conn, problem);
    ASSERT_TRUE(documents) << problem;
    EXPECT_EQ(*documents, std::multiset<std::string>{first[1].document});
    EXPECT_EQ(await_count(server_.log, std::regex("action: sorteo \\| result: success"), 1), 1u);
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("bets after DONE"));
    EXPECT_EQ(count_matching(server_.log, std::regex("action: sorteo ")), 1u) << "exactly one draw";
}

// ---- limits, pipelining, races ---------------------------------------------------------

// The largest valid frames (8188 and 8192 bytes) are served: the limits are not off by one.
TEST_F(Hostile, LargestValidFramesAreAccepted) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    Conn conn(port());
    const auto bets = make_bets(1, 0, static_cast<int>(wire::kMaxBetsPerFrame));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 1, bets)));
    EXPECT_TRUE(acks(conn, static_cast<std::uint32_t>(wire::kMaxBetsPerFrame)));
    EXPECT_TRUE(echoes(conn, std::string(wire::kMaxEchoPayload, '\xA7')));
    EXPECT_EQ(store(), expected(bets));
}

// Frames written back to back in one send are answered in order; a
// malformed one in the middle is answered with ERROR 1 after the earlier
// replies, and nothing after it is served.
TEST_F(Hostile, PipelinedFramesAreAnsweredInOrder) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    auto first = make_bets(1, 0, 3), second = make_bets(1, 3, 2);
    second[0].number = 7574;
    Conn conn(port());
    const Bytes echo = wire::encode_echo_frame("pipelined");
    ASSERT_TRUE(conn.send(concat(concat(concat(wire::encode_bets_frame(1, 1, first), wire::encode_bets_frame(1, 2, second)),
                                        concat(wire::encode_request(wire::RequestType::done, 1), echo)),
                                 wire::encode_request(wire::RequestType::winners, 1))));
    EXPECT_TRUE(acks(conn, 3));
    EXPECT_TRUE(acks(conn, 2));
    EXPECT_TRUE(acks(conn, 0));
    EXPECT_EQ(describe(conn.receive(echo.size()).bytes), describe(echo));
    std::string problem;
    const auto documents = winners(conn, problem);
    ASSERT_TRUE(documents) << problem;
    EXPECT_EQ(*documents, std::multiset<std::string>{second[0].document});

    Conn other(port());
    ASSERT_TRUE(other.send(concat(concat(echo, header(7, 1, 0, 0)), echo)));
    EXPECT_EQ(describe(other.receive(echo.size()).bytes), describe(echo));
    // The trailing ECHO stays unread on the server's side, so a RST is acceptable.
    EXPECT_TRUE(error_then_closed(other, ErrorCode::malformed_frame, /*reset_ok=*/true));
    EXPECT_EQ(store(), expected(join(first, second)));
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("pipelined frames"));
}

// The same batch from two connections at once (a client that reconnected
// while its first connection is still alive): both are acknowledged, the
// store holds it once.
TEST_F(Hostile, SameBatchFromTwoConnectionsAtOnceIsStoredOnce) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const auto a_bets = make_bets(1, 0, 20), b_bets = make_bets(1, 100, 20);
    for (std::uint32_t batch = 1; batch <= 20; ++batch) {
        SCOPED_TRACE("batch " + std::to_string(batch));
        Conn a(port()), b(port());
        const Bytes fa = wire::encode_bets_frame(1, batch, {a_bets[batch - 1]});
        const Bytes fb = wire::encode_bets_frame(1, batch, {b_bets[batch - 1]});
        ASSERT_TRUE(a.send(fa));
        ASSERT_TRUE(b.send(fb));
        EXPECT_TRUE(acks(a, 1));
        EXPECT_TRUE(acks(b, 1));
    }
    const auto stored = store();
    EXPECT_EQ(stored.size(), 20u) << "a batch number was stored twice";
    for (std::size_t i = 0; i < 20; ++i)
        EXPECT_NE(stored.count(expected(a_bets[i])) + stored.count(expected(b_bets[i])), 0u) << "batch " << i + 1;
}

// A client that parks WINNERS and then leaves must not keep a handler slot
// (SERVER_MAX_HANDLERS) until the draw: its departure affects only itself.
TEST_F(Hostile, ClientLeavingDuringALongPollFreesItsHandler) {
    ASSERT_NO_FATAL_FAILURE(
        start(2, {{"SERVER_MAX_HANDLERS", "2"}, {"LOGGING_LEVEL", "DEBUG"}}, /*observer=*/false));
    {
        Conn a(port());
        ASSERT_TRUE(a.send(wire::encode_request(wire::RequestType::done, 1)));
        ASSERT_TRUE(acks(a, 0));
        ASSERT_TRUE(a.send(wire::encode_request(wire::RequestType::winners, 1)));
        ASSERT_TRUE(stays_silent(a));
    } // leaves while parked
    EXPECT_EQ(await_count(server_.log, std::regex(R"(action: handler_exit \| result: success)"), 1, Millis(3000)), 1u)
        << "the handler of a client that left during its long poll is still alive 3 s later";
    Conn b(port()), c(port());
    EXPECT_TRUE(echoes(b, "slot 1"));
    EXPECT_TRUE(echoes(c, "slot 2")) << "only one of SERVER_MAX_HANDLERS=2 slots is free";
}

// ---- garbage ----------------------------------------------------------------------------

Bytes random_bytes(std::size_t size, std::uint32_t seed) {
    std::mt19937 generator(seed); // mt19937's output is fixed by the standard
    Bytes bytes(size);
    for (auto& byte : bytes) byte = static_cast<std::uint8_t>(generator() >> 24);
    return bytes;
}

TEST_F(Hostile, OneMebibyteOfRandomBytes) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const Bytes garbage = random_bytes(1 << 20, 75740001);
    // With this seed the first header has an unknown type: the reply must be ERROR 1.
    const std::uint16_t type = wire::get_u16(garbage.data());
    ASSERT_TRUE(type == 0 || type > 4) << "seed changed: first type is " << type;
    Conn conn(port());
    const Received got = conn.pump(garbage);
    EXPECT_TRUE(got.end == End::eof || got.end == End::reset)
        << "the server did not close the connection (" << to_text(got.end) << ", " << conn.pumped() << " bytes sent)";
    EXPECT_EQ(describe(got.bytes), describe(wire::encode_error(ErrorCode::malformed_frame)));
    EXPECT_TRUE(harness::wait_for_line(server_.log, fail_about(conn), kIo, &server_.process)) << server_log();
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("1 MiB of random bytes"));
    EXPECT_EQ(store_lines(), 0u);
}

// Well-formed BETS headers carrying random records: every frame is refused
// with ERROR 2 on the same connection and nothing is stored.
TEST_F(Hostile, RandomBetRecordsAreRejected) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    Conn conn(port());
    std::mt19937 sizes(4242);
    for (std::uint32_t i = 0; i < 100; ++i) {
        const auto count = static_cast<std::uint16_t>(1 + sizes() % wire::kMaxBetsPerFrame);
        const Bytes frame = concat(header(1, 1, 1, count), random_bytes(count * wire::kBetSize, 1000 + i));
        ASSERT_TRUE(conn.send(frame)) << "frame " << i;
        ASSERT_TRUE(refuses(conn, ErrorCode::invalid_bet)) << "frame " << i << " (" << count << " random bets)";
    }
    EXPECT_EQ(store_lines(), 0u);
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 1, make_bets(1, 0, 1))));
    EXPECT_TRUE(acks(conn, 1));
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("100 frames of random bets"));
}

// ---- silence ------------------------------------------------------------------------------

TEST_F(Hostile, SilentClientIsDroppedAfterTheIdleTimeout) {
    ASSERT_NO_FATAL_FAILURE(start(1, {{"SERVER_IDLE_TIMEOUT", "1"}}, /*observer=*/false));
    {
        SCOPED_TRACE("connects and says nothing");
        Conn conn(port());
        ASSERT_TRUE(conn.connected());
        const auto connected = Clock::now();
        EXPECT_TRUE(closed_silently(conn));
        EXPECT_GE(ms_since(connected), 900) << "dropped before the 1 s idle timeout";
        EXPECT_TRUE(harness::wait_for_line(server_.log,
                                           std::regex("action: idle_timeout \\|.*peer: " + escape(conn.peer())),
                                           kIo, &server_.process))
            << server_log();
    }
    {
        SCOPED_TRACE("stalled mid-header and mid-payload");
        Conn mid_header(port()), mid_payload(port());
        ASSERT_TRUE(mid_header.send(Bytes{0, 4, 0}));
        ASSERT_TRUE(mid_payload.send(concat(header(1, 1, 1, 1), Bytes(5, 'x'))));
        EXPECT_TRUE(closed_silently(mid_header)) << "a client stalled mid-header must be dropped";
        EXPECT_TRUE(closed_silently(mid_payload)) << "a client stalled mid-payload must be dropped";
    }
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("idle clients"));
}

// ---- too many connections ----------------------------------------------------------------

TEST_F(Hostile, ConnectionsBeyondMaxHandlersAreRefusedAndTheRestKeepWorking) {
    ASSERT_NO_FATAL_FAILURE(
        start(1, {{"SERVER_MAX_HANDLERS", "4"}, {"LOGGING_LEVEL", "DEBUG"}}, /*observer=*/false));
    const std::regex accepted(R"(action: accept \| result: success)");
    const std::regex refused(R"(action: accept \| result: fail \|.*too many connections)");
    const std::regex handler_gone(R"(action: handler_exit \| result: success)");

    std::vector<std::unique_ptr<Conn>> served;
    for (int i = 0; i < 4; ++i) {
        served.push_back(std::make_unique<Conn>(port()));
        ASSERT_TRUE(served.back()->connected());
    }
    ASSERT_EQ(await_count(server_.log, accepted, 4), 4u) << server_log();

    std::vector<std::unique_ptr<Conn>> extra;
    for (int i = 0; i < 3; ++i) {
        extra.push_back(std::make_unique<Conn>(port()));
        ASSERT_TRUE(extra.back()->connected()) << "the kernel completes the handshake; the server then refuses";
    }
    for (auto& conn : extra) EXPECT_TRUE(closed_silently(*conn)) << "extra connection " << conn->peer();
    EXPECT_EQ(await_count(server_.log, refused, 3), 3u) << server_log();
    EXPECT_EQ(count_matching(server_.log, accepted), 4u) << "an extra connection got a handler";
    for (auto& conn : served) EXPECT_TRUE(echoes(*conn, "one of the first four")) << conn->peer();
    ASSERT_TRUE(server_.process.running());

    // Once the four are gone (their handlers reaped), new connections are served again.
    served.clear();
    ASSERT_EQ(await_count(server_.log, handler_gone, 4), 4u) << server_log();
    for (int i = 0; i < 4; ++i) {
        served.push_back(std::make_unique<Conn>(port()));
        EXPECT_TRUE(echoes(*served.back(), "after the crowd left")) << "connection " << i;
    }
    EXPECT_EQ(count_matching(server_.log, refused), 3u) << "a connection was refused below the limit";
}

// ---- WINNERS -------------------------------------------------------------------------------

// Each agency gets its own winning documents, never another agency's, even
// when the same document appears in both agencies. Awkward (valid) names
// go through the store and back through the draw.
TEST_F(Hostile, WinnersAreIsolatedPerAgency) {
    ASSERT_NO_FATAL_FAILURE(start(2));
    auto one = make_bets(1, 0, 6), two = make_bets(2, 0, 5);
    one[0].document = "11111111", one[0].number = 7574;
    one[1].document = "00000042", one[1].number = 7574, one[1].first_name = "\"Quoted\", first";
    one[2].document = "33333333", one[2].number = 7573; // wins in agency 2, not here
    one[3].document = "7574", one[3].number = 7575;
    one[4].first_name = "Ñoño, \"el\"\"doble\"";
    two[0].document = "33333333", two[0].number = 7574;
    two[1].document = "44444444", two[1].number = 7574, two[1].last_name = "Comma, Inc.";
    two[2].document = "11111111", two[2].number = 5; // wins in agency 1, not here
    two[3].document = "00000042", two[3].number = 4757;
    two[4].document = "9", two[4].number = 7574;

    Conn a(port()), b(port());
    ASSERT_TRUE(a.send(wire::encode_bets_frame(1, 1, one)));
    ASSERT_TRUE(acks(a, 6));
    ASSERT_TRUE(b.send(wire::encode_bets_frame(2, 1, two)));
    ASSERT_TRUE(acks(b, 5));
    ASSERT_TRUE(a.send(wire::encode_request(wire::RequestType::done, 1)));
    ASSERT_TRUE(acks(a, 0));
    ASSERT_TRUE(b.send(wire::encode_request(wire::RequestType::done, 2)));
    ASSERT_TRUE(acks(b, 0));

    std::string problem;
    ASSERT_TRUE(a.send(wire::encode_request(wire::RequestType::winners, 1)));
    const auto mine = winners(a, problem);
    ASSERT_TRUE(mine) << problem << "\n" << server_log();
    EXPECT_EQ(*mine, (std::multiset<std::string>{"11111111", "00000042"}));
    EXPECT_TRUE(stays_silent(a)) << "bytes after the WINNERS reply";
    ASSERT_TRUE(b.send(wire::encode_request(wire::RequestType::winners, 2)));
    const auto theirs = winners(b, problem);
    ASSERT_TRUE(theirs) << problem;
    EXPECT_EQ(*theirs, (std::multiset<std::string>{"33333333", "44444444", "9"}));
    // Agency 1's connection cannot ask for agency 2's winners.
    ASSERT_TRUE(a.send(wire::encode_request(wire::RequestType::winners, 2)));
    EXPECT_TRUE(refuses(a, ErrorCode::bad_agency));
    // A new connection that names agency 1 gets agency 1's answer again.
    Conn c(port());
    ASSERT_TRUE(c.send(wire::encode_request(wire::RequestType::winners, 1)));
    const auto again = winners(c, problem);
    ASSERT_TRUE(again) << problem;
    EXPECT_EQ(*again, *mine);
    EXPECT_EQ(store(), expected(join(one, two)));
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("WINNERS"));
}

TEST_F(Hostile, WinnersLongPollsUntilEveryAgencyIsDone) {
    ASSERT_NO_FATAL_FAILURE(start(2));
    auto one = make_bets(1, 0, 3);
    one[2].number = 7574;
    Conn a(port());
    ASSERT_TRUE(a.send(wire::encode_bets_frame(1, 1, one)));
    ASSERT_TRUE(acks(a, 3));
    ASSERT_TRUE(a.send(wire::encode_request(wire::RequestType::done, 1)));
    ASSERT_TRUE(acks(a, 0));
    ASSERT_TRUE(a.send(wire::encode_request(wire::RequestType::winners, 1)));
    EXPECT_TRUE(stays_silent(a)) << "WINNERS answered before agency 2 was done";
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("a parked WINNERS"));
    EXPECT_TRUE(stays_silent(a)) << "WINNERS answered before agency 2 was done";

    Conn b(port());
    ASSERT_TRUE(b.send(wire::encode_request(wire::RequestType::done, 2)));
    ASSERT_TRUE(acks(b, 0));
    std::string problem;
    const auto documents = winners(a, problem);
    ASSERT_TRUE(documents) << problem;
    EXPECT_EQ(*documents, std::multiset<std::string>{one[2].document});
    ASSERT_TRUE(b.send(wire::encode_request(wire::RequestType::winners, 2)));
    const auto none = winners(b, problem);
    ASSERT_TRUE(none) << problem;
    EXPECT_TRUE(none->empty());
}

// ---- SIGTERM -------------------------------------------------------------------------------

TEST_F(Hostile, SigtermWhileWinnersWaitsAnswersError6) {
    ASSERT_NO_FATAL_FAILURE(start(2, {}, /*observer=*/false));
    Conn a(port());
    ASSERT_TRUE(a.send(wire::encode_bets_frame(1, 1, make_bets(1, 0, 2))));
    ASSERT_TRUE(acks(a, 2));
    ASSERT_TRUE(a.send(wire::encode_request(wire::RequestType::done, 1)));
    ASSERT_TRUE(acks(a, 0));
    ASSERT_TRUE(a.send(wire::encode_request(wire::RequestType::winners, 1)));
    ASSERT_TRUE(stays_silent(a)) << "WINNERS answered before the draw";
    const auto sent = send_sigterm();
    EXPECT_TRUE(error_then_closed(a, ErrorCode::shutting_down)) << "the waiting client";
    EXPECT_LT(ms_since(sent), kShutdown.count()) << "ERROR 6 came late";
    ASSERT_NO_FATAL_FAILURE(expect_graceful_exit(sent));
}

TEST_F(Hostile, SigtermWhileClientsAreConnectedAndSilent) {
    ASSERT_NO_FATAL_FAILURE(start(1, {}, /*observer=*/false));
    Conn silent(port()), mid_header(port()), mid_payload(port()), bound(port());
    ASSERT_TRUE(mid_header.send(Bytes{0, 1, 0, 0, 0}));
    const Bytes frame = wire::encode_bets_frame(1, 1, make_bets(1, 0, 2));
    ASSERT_TRUE(mid_payload.send(Bytes(frame.begin(), frame.begin() + 100)));
    ASSERT_TRUE(bound.send(wire::encode_bets_frame(1, 1, make_bets(1, 5, 1))));
    ASSERT_TRUE(acks(bound, 1));
    ASSERT_EQ(await_count(server_.log, std::regex(R"(action: accept \| result: success)"), 4), 4u) << server_log();
    const auto sent = send_sigterm();
    struct Peer {
        const char* name;
        Conn* conn;
        bool may_reset; // it sent bytes the handler may not have read yet: closing then sends a RST
    };
    for (const Peer& p : {Peer{"silent", &silent, false}, Peer{"mid-header", &mid_header, true},
                          Peer{"mid-payload", &mid_payload, true}, Peer{"bound to agency 1", &bound, false}}) {
        const Received got = p.conn->receive(0);
        const bool closed = got.end == End::eof || (p.may_reset && got.end == End::reset);
        EXPECT_TRUE(closed && (got.bytes.empty() || got.bytes == wire::encode_error(ErrorCode::shutting_down)))
            << p.name << " (" << p.conn->peer() << "): expected EOF (optionally after ERROR 6), got "
            << describe(got.bytes) << " then " << to_text(got.end);
    }
    EXPECT_LT(ms_since(sent), kShutdown.count()) << "connections closed late";
    ASSERT_NO_FATAL_FAILURE(expect_graceful_exit(sent));
    EXPECT_EQ(store_lines(), 1u);
}

// A client that sends ECHOs and never reads the replies: its handler ends up
// blocked writing. SIGTERM must still end it without SIGKILL.
TEST_F(Hostile, SigtermWhileAClientDoesNotReadItsReplies) {
    ASSERT_NO_FATAL_FAILURE(start(1, {}, /*observer=*/false));
    Conn hog(port(), /*receive_buffer=*/4096);
    ASSERT_TRUE(hog.connected());
    // Push ECHOs until the server stops taking them (it is blocked writing
    // replies nobody reads): a bounded pump that ends when nothing moves.
    const Bytes echo = wire::encode_echo_frame(std::string(wire::kMaxEchoPayload, 'e'));
    ::fcntl(hog.fd(), F_SETFL, ::fcntl(hog.fd(), F_GETFL) | O_NONBLOCK);
    std::size_t sent = 0;
    const auto end = Clock::now() + kIo;
    for (;;) {
        ASSERT_LT(Clock::now(), end) << "the server kept reading for 10 s";
        pollfd writable{hog.fd(), POLLOUT, 0};
        if (::poll(&writable, 1, static_cast<int>(kSilence.count())) == 0) break; // stuck: the handler is blocked
        const ssize_t n = ::send(hog.fd(), echo.data() + sent % echo.size(), echo.size() - sent % echo.size(), MSG_NOSIGNAL);
        ASSERT_TRUE(n > 0 || errno == EAGAIN || errno == EINTR) << std::strerror(errno);
        if (n > 0) sent += static_cast<std::size_t>(n);
    }
    ASSERT_TRUE(server_.process.running());
    {
        Conn other(port());
        EXPECT_TRUE(echoes(other, "while a hog blocks its handler"));
    }
    ASSERT_NO_FATAL_FAILURE(expect_graceful_exit(send_sigterm()));
    // TearDown checks that no handler had to be SIGKILLed.
}

// ---- the whole battery, then a real agency -------------------------------------------------

// Hostile traffic of every kind against a one-agency server, then the real
// bin/client for agency 1 on .data/agency-5.csv: it must reach its winners,
// and the store must hold exactly its rows.
TEST_F(Hostile, AfterAllThatARealAgencyReachesItsWinners) {
    const scenario::Agency agency = scenario::load_agency(1, ".data/agency-5.csv");
    ASSERT_FALSE(agency.bets.empty()) << ".data/agency-5.csv read as empty (run from the repo root)";
    ASSERT_FALSE(agency.winners.empty()) << ".data/agency-5.csv should have winners";
    ASSERT_NO_FATAL_FAILURE(start(1));

    // Stays connected and silent through the whole run.
    Conn lurker(port());
    ASSERT_TRUE(lurker.connected());

    for (const Bytes& bad : {header(0, 1, 0, 0), header(5, 1, 0, 0), header(0xFFFF, 1, 1, 1), header(1, 1, 1, 0),
                             header(1, 1, 1, 57), header(4, 0, 0, 8181), header(2, 1, 1, 0), header(2, 1, 0, 1),
                             header(3, 1, 1, 0), header(3, 1, 0, 1), header(1, 1, 0, 1)}) {
        Conn conn(port());
        ASSERT_TRUE(conn.send(bad));
        EXPECT_TRUE(error_then_closed(conn, ErrorCode::malformed_frame)) << describe(bad);
    }
    {
        Conn conn(port()); // truncated
        const Bytes frame = wire::encode_bets_frame(1, 1, make_bets(1, 0, 3));
        ASSERT_TRUE(conn.send(Bytes(frame.begin(), frame.begin() + wire::kRequestHeaderSize + 2 * wire::kBetSize + 100)));
        conn.shutdown_write();
        EXPECT_TRUE(closed_silently(conn));
    }
    {
        Conn conn(port()); // mid-header close
        ASSERT_TRUE(conn.send(Bytes{0, 1, 0, 0, 0}));
    }
    {
        Conn conn(port()); // invalid bets for agency 1, batch 1: nothing stored, batch 1 not consumed
        for (const InvalidBet& bad : {InvalidBet{"utf8", kFirstName, 64, "\xC3\x28"},
                                      InvalidBet{"date", kBirthdate, 8, "20010230"},
                                      InvalidBet{"number", kNumber, 2, u16(10000)}}) {
            auto bets = make_bets(1, 0, 3);
            bets[0].number = 7574; // would add a winner if it were stored
            ASSERT_TRUE(conn.send(patch(wire::encode_bets_frame(1, 1, bets), 2, bad.offset, bad.width, bad.value)));
            EXPECT_TRUE(refuses(conn, ErrorCode::invalid_bet)) << bad.name;
        }
    }
    {
        Conn conn(port()); // an agency that does not exist here
        auto bets = make_bets(2, 0, 2);
        bets[0].number = 7574;
        ASSERT_TRUE(conn.send(wire::encode_bets_frame(2, 1, bets)));
        EXPECT_TRUE(refuses(conn, ErrorCode::bad_agency));
        ASSERT_TRUE(conn.send(wire::encode_request(wire::RequestType::done, 2)));
        EXPECT_TRUE(refuses(conn, ErrorCode::bad_agency));
    }
    {
        Conn conn(port()); // garbage
        const Received got = conn.pump(random_bytes(1 << 20, 75740001));
        EXPECT_TRUE(got.end == End::eof || got.end == End::reset) << to_text(got.end);
    }
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("the hostile battery"));
    ASSERT_EQ(store_lines(), 0u) << "hostile traffic stored something";
    ASSERT_EQ(count_matching(server_.log, std::regex("action: sorteo ")), 0u) << "hostile traffic triggered the draw";

    harness::Process client =
        scenario::spawn_client(dir_, 1, port(), {{"CLI_DATA_FILE", agency.csv}}, "agency-1.log");
    ASSERT_TRUE(client.started());
    const int code = client.wait_exit();
    scenario::verify_client(agency, client.log_file(), code);
    EXPECT_TRUE(echoes(*observer_, "observer, after the real run"));
    EXPECT_TRUE(stays_silent(lurker)) << "the lurker was disturbed";
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(server_));

    const auto lines = harness::parse_log(server_.log);
    EXPECT_EQ(with_action(lines, "sorteo", "success").size(), 1u);
    EXPECT_EQ(with_action(lines, "apuesta_almacenada", "success").size(), agency.bets.size());
    const auto stored = store();
    EXPECT_EQ(stored.size(), agency.bets.size()) << "bets in the store";
    EXPECT_TRUE(stored == std::multiset<scenario::Bet>(agency.bets.begin(), agency.bets.end()))
        << "the store is not exactly agency 1's rows of .data/agency-5.csv";
}

} // namespace
