// Hostile input against the real bin/server (CONTRACT.md §5 wire protocol, §6
// server): malformed frames and OPENs, BETS before OPEN, truncated frames,
// invalid bets, wrong agencies, position gaps and duplicates, fencing, bets
// after the draw, random garbage, silent clients, too many connections,
// WINNERS isolation and long poll, and SIGTERM in the middle of all that.
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
constexpr Millis kShutdown{2000}; // CONTRACT.md §6: exit within 2 s of SIGTERM

// Field offsets inside a 146-byte bet record (CONTRACT.md §5).
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
Bytes header(std::uint16_t type, std::uint32_t agency, std::uint32_t first, std::uint16_t count) {
    Bytes bytes(wire::kRequestHeaderSize);
    wire::put_u16(&bytes[0], type);
    wire::put_u32(&bytes[2], agency);
    wire::put_u32(&bytes[6], first);
    wire::put_u16(&bytes[10], count);
    return bytes;
}

Bytes concat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// An OPEN frame exactly as given (the codec would refuse a bad name).
Bytes open_frame(std::uint32_t agency, const std::string& name, std::uint32_t first = 0) {
    return concat(header(5, agency, first, static_cast<std::uint16_t>(name.size())), Bytes(name.begin(), name.end()));
}

Bytes reply_bytes(ReplyType type, std::uint32_t value) { return wire::encode_reply(type, value); }

std::string describe(const Bytes& bytes) {
    const bool resume = bytes.size() == wire::kReplyHeaderSize + wire::kDigestSize;
    if (bytes.size() == wire::kReplyHeaderSize || resume) {
        const auto reply = wire::decode_reply_header(bytes.data());
        if (reply.ok() && (resume == (reply.value().type == ReplyType::resume))) {
            static const char* const kNames[] = {"?", "ACK", "ERROR", "WINNERS", "ECHO", "RESUME"};
            std::string text = std::string(kNames[static_cast<int>(reply.value().type)]) + " " +
                               std::to_string(reply.value().value);
            if (resume) text += " digest " + std::to_string(wire::get_u64(&bytes[wire::kReplyHeaderSize]));
            return text;
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

// CONTRACT.md §5: the digest of a list of bets, from the product's hash of one record.
wire::Digest digest_of(const std::vector<Bet>& bets) {
    wire::Digest digest = 0;
    for (const Bet& bet : bets) digest += wire::bet_hash(bet);
    return digest;
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

// The next reply is RESUME: `held` are the bets of the source already stored.
::testing::AssertionResult resumes(Conn& conn, const std::vector<Bet>& held) {
    const Received got = conn.receive(wire::kReplyHeaderSize + wire::kDigestSize);
    const Bytes want = wire::encode_resume_reply(static_cast<std::uint32_t>(held.size()), digest_of(held));
    if (got.bytes == want) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "expected " << describe(want) << ", got " << describe(got.bytes) << " ("
                                         << to_text(got.end) << ")";
}

// OPENs `source` of `agency` on `conn`; the server must answer that it holds `held`.
::testing::AssertionResult opens(Conn& conn, std::uint32_t agency, const std::string& source,
                                 const std::vector<Bet>& held = {}) {
    if (!conn.send(wire::encode_open_frame(agency, source)))
        return ::testing::AssertionFailure() << "cannot send OPEN: " << std::strerror(errno);
    return resumes(conn, held);
}
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
    std::size_t found = 0;
    harness::poll_until([&] { return (found = count_matching(log, pattern)) >= count; }, deadline);
    return found;
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

    // After SIGTERM at `sent`: exit code 0 within CONTRACT.md §6's 2 s, last line `exit | success`.
    void expect_graceful_exit(Clock::time_point sent) {
        const int code = server_.process.wait_exit(Millis(10000));
        EXPECT_EQ(code, 0) << "server exit code after SIGTERM";
        EXPECT_LT(ms_since(sent), kShutdown.count()) << "CONTRACT.md §6: exit within 2 s of SIGTERM";
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

// The source name the hostile tests open (a client would name agency-1.csv so).
const std::string kSource = "agency-1.csv";

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
    EXPECT_EQ(count_matching(server_.log, std::regex("action: abrir_fuente \\| result: success")), 0u)
        << "a malformed OPEN opened a source";
}

INSTANTIATE_TEST_SUITE_P(
    Hostile, HostileMalformed,
    ::testing::Values(Malformed{"type_0", header(0, 1, 0, 0)}, Malformed{"type_6", header(6, 1, 0, 0)},
                      Malformed{"type_FFFF", header(0xFFFF, 1, 1, 1)},
                      Malformed{"bets_count_0", header(1, 1, 0, 0)},
                      Malformed{"bets_count_57", header(1, 1, 0, 57)},
                      Malformed{"bets_count_FFFF", header(1, 1, 0, 0xFFFF)},
                      Malformed{"echo_count_8181", header(4, 0, 0, 8181)},
                      Malformed{"echo_count_FFFF", header(4, 0, 0, 0xFFFF)},
                      Malformed{"done_first_1", header(2, 1, 1, 0)},
                      Malformed{"done_count_1", header(2, 1, 0, 1)},
                      Malformed{"winners_first_1", header(3, 1, 1, 0)},
                      Malformed{"winners_count_1", header(3, 1, 0, 1)},
                      // CONTRACT.md §5 OPEN: first 0, a name of 1 to 64 bytes of [A-Za-z0-9._-].
                      Malformed{"open_count_0", header(5, 1, 0, 0)},
                      Malformed{"open_count_65", open_frame(1, std::string(65, 'a'))},
                      Malformed{"open_first_1", open_frame(1, kSource, 1)},
                      Malformed{"open_first_FFFFFFFF", open_frame(1, kSource, 0xFFFFFFFFu)},
                      Malformed{"open_name_with_space", open_frame(1, "agency 1.csv")},
                      Malformed{"open_name_with_slash", open_frame(1, "../agency-1.csv")},
                      Malformed{"open_name_with_utf8", open_frame(1, "agencia-\xC3\xB1.csv")},
                      Malformed{"open_name_with_nul", open_frame(1, std::string("agency\0.csv", 11))},
                      Malformed{"open_name_with_newline", open_frame(1, "agency-1.csv\n")}),
    [](const ::testing::TestParamInfo<Malformed>& info) { return std::string(info.param.name); });

// CONTRACT.md §5: a connection must OPEN a source before any BETS. The ERROR 1 must
// reach the client even with more of its frames still unread on the
// server's side: the server lingers (reads and discards them) before closing,
// so the kernel sends a FIN, not a reset that could destroy the ERROR.
TEST_F(Hostile, BetsBeforeOpenGetError1AndALingeringClose) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    Bytes pipelined = wire::encode_bets_frame(1, 0, make_bets(1, 0, 3));
    for (int i = 1; i <= 4; ++i) pipelined = concat(pipelined, wire::encode_bets_frame(1, 3 * i, make_bets(1, 3 * i, 3)));
    Conn conn(port());
    ASSERT_TRUE(conn.send(pipelined));
    EXPECT_TRUE(error_then_closed(conn, ErrorCode::malformed_frame)) << "BETS before OPEN, four more frames behind it";
    const std::regex refused(R"(WARNING +action: apuesta_recibida \| result: fail \| peer: 127\.0\.0\.1:[0-9]+ \|)"
                             R"(.*BETS before OPEN)");
    EXPECT_TRUE(harness::wait_for_line(server_.log, refused, kIo, &server_.process))
        << server_log();
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("BETS before OPEN"));
    EXPECT_EQ(store_lines(), 0u) << "BETS before OPEN stored something";
}

// Source ids belong to the connection that opened them: a connection that
// opened nothing cannot feed the source another connection opened.
TEST_F(Hostile, BetsOnAConnectionThatNeverOpenedTheSourceGetError1) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const auto bets = make_bets(1, 0, 3);
    Conn owner(port()), stranger(port());
    ASSERT_TRUE(opens(owner, 1, kSource));
    ASSERT_TRUE(stranger.send(wire::encode_bets_frame(1, 0, bets)));
    EXPECT_TRUE(error_then_closed(stranger, ErrorCode::malformed_frame)) << "BETS for a source opened elsewhere";
    EXPECT_EQ(store_lines(), 0u);
    ASSERT_TRUE(owner.send(wire::encode_bets_frame(1, 0, bets)));
    EXPECT_TRUE(acks(owner, 3)) << "the owner was not fenced by the stranger";
    EXPECT_EQ(store(), expected(bets));
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("BETS from a stranger"));
}

// A session that already stored bets loses only its connection; its source
// survives and the next connection resumes it.
TEST_F(Hostile, MalformedFrameMidSessionKeepsWhatWasStored) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const auto first = make_bets(1, 0, 3), second = make_bets(1, 3, 2);
    {
        Conn conn(port());
        ASSERT_TRUE(opens(conn, 1, kSource));
        ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0, first)));
        ASSERT_TRUE(acks(conn, 3));
        ASSERT_TRUE(conn.send(header(9, 1, 3, 1)));
        EXPECT_TRUE(error_then_closed(conn, ErrorCode::malformed_frame));
    }
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("a malformed frame after stored bets"));
    Conn again(port());
    ASSERT_TRUE(opens(again, 1, kSource, first)) << "the source must resume after its 3 stored bets";
    ASSERT_TRUE(again.send(wire::encode_bets_frame(1, 3, second)));
    EXPECT_TRUE(acks(again, 2));
    EXPECT_EQ(store(), expected(join(first, second)));
}

// ---- truncated frames and peers that vanish -------------------------------------------------

// A header announcing 3 bets, then only part of them, and the client's write
// side closed: the server gives up on the connection, says why, stores nothing.
TEST_F(Hostile, TruncatedFrameIsDroppedAndNothingStored) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const auto bets = make_bets(1, 0, 3);
    const Bytes full = wire::encode_bets_frame(1, 0, bets);
    struct Case {
        const char* name;
        std::size_t payload;
    };
    for (const Case& c : {Case{"header of 3 bets + 100 bytes", 100},
                          Case{"header of 3 bets + 2 whole bets + 100 bytes", 2 * wire::kBetSize + 100}}) {
        SCOPED_TRACE(c.name);
        Conn conn(port());
        ASSERT_TRUE(opens(conn, 1, kSource));
        ASSERT_TRUE(conn.send(Bytes(full.begin(), full.begin() + wire::kRequestHeaderSize + c.payload)));
        conn.shutdown_write();
        EXPECT_TRUE(closed_silently(conn)) << "the server must close a connection whose frame can never complete";
        EXPECT_TRUE(harness::wait_for_line(server_.log, fail_about(conn), kIo, &server_.process))
            << "no warning about the truncated frame from " << conn.peer() << "; log:\n" << server_log();
        ASSERT_NO_FATAL_FAILURE(expect_unharmed(c.name));
    }
    EXPECT_EQ(store_lines(), 0u) << "bets of a truncated frame were stored";
    // Nothing of the source was consumed: it resumes at 0 and stores the whole frame.
    Conn conn(port());
    ASSERT_TRUE(opens(conn, 1, kSource));
    ASSERT_TRUE(conn.send(full));
    EXPECT_TRUE(acks(conn, 3));
    EXPECT_EQ(store(), expected(bets));
}

TEST_F(Hostile, PeerClosingMidHeaderOrMidPayload) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const Bytes frame = wire::encode_bets_frame(1, 0, make_bets(1, 0, 2));
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
        SCOPED_TRACE("OPEN, header + half a bet, then RST");
        Conn conn(port());
        ASSERT_TRUE(opens(conn, 1, kSource));
        ASSERT_TRUE(conn.send(Bytes(frame.begin(), frame.begin() + wire::kRequestHeaderSize + 73)));
        const std::regex about = fail_about(conn);
        conn.reset();
        EXPECT_TRUE(harness::wait_for_line(server_.log, about, kIo, &server_.process))
            << "no warning about a reset mid-payload; log:\n" << server_log();
        ASSERT_NO_FATAL_FAILURE(expect_unharmed("a peer that reset mid-payload"));
    }
    EXPECT_EQ(store_lines(), 0u);
}

// ---- invalid bets: ERROR 2, the whole frame refused, the connection stays open -------------------

struct InvalidBet {
    const char* name;
    std::size_t offset;
    std::size_t width;
    std::string value;
};

std::ostream& operator<<(std::ostream& out, const InvalidBet& b) { return out << b.name; }

class HostileInvalidBet : public Hostile, public ::testing::WithParamInterface<InvalidBet> {};

TEST_P(HostileInvalidBet, Error2RejectsTheWholeFrameAndTheConnectionStaysOpen) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const InvalidBet& bad = GetParam();
    // Three bets, only the middle one is invalid: all-or-nothing.
    Bytes frame = wire::encode_bets_frame(1, 0, make_bets(1, 0, 3));
    frame = patch(frame, 1, bad.offset, bad.width, bad.value);
    Conn conn(port());
    ASSERT_TRUE(opens(conn, 1, kSource));
    ASSERT_TRUE(conn.send(frame));
    EXPECT_TRUE(refuses(conn, ErrorCode::invalid_bet));
    EXPECT_EQ(store_lines(), 0u) << "a frame with an invalid bet was (partly) stored";
    // Same connection, same position, now valid: stored and ACKed with its count.
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
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0, good)));
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

// A frame that straddles the stored count with an invalid bet in its
// already-stored part is refused whole too (CONTRACT.md §5: all-or-nothing).
TEST_F(Hostile, InvalidBetInTheStoredPartOfAStraddlingFrameRefusesItAll) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const auto bets = make_bets(1, 0, 4);
    Conn conn(port());
    ASSERT_TRUE(opens(conn, 1, kSource));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0, {bets[0], bets[1]})));
    ASSERT_TRUE(acks(conn, 2));
    const Bytes straddling = wire::encode_bets_frame(1, 1, {bets[1], bets[2], bets[3]});
    ASSERT_TRUE(conn.send(patch(straddling, 0, kBirthdate, 8, "20010230"))); // position 1, stored already
    EXPECT_TRUE(refuses(conn, ErrorCode::invalid_bet));
    EXPECT_EQ(store(), expected({bets[0], bets[1]})) << "the new part of a refused frame was stored";
    ASSERT_TRUE(conn.send(straddling));
    EXPECT_TRUE(acks(conn, 3));
    EXPECT_EQ(store(), expected(bets));
}

// ---- agencies: ERROR 3 --------------------------------------------------------------------

TEST_F(Hostile, BadAgencyGetsError3AndStoresNothing) {
    ASSERT_NO_FATAL_FAILURE(start(2));
    struct Case {
        const char* name;
        Bytes frame;
    };
    const Case cases[] = {
        {"OPEN agency 0", wire::encode_open_frame(0, kSource)},
        {"OPEN agency 3 of 2", wire::encode_open_frame(3, kSource)},
        {"OPEN agency 65535", wire::encode_open_frame(65535, kSource)},
        {"OPEN agency 2^32-1", wire::encode_open_frame(0xFFFFFFFFu, kSource)},
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
    EXPECT_EQ(count_matching(server_.log, std::regex("action: abrir_fuente \\| result: success")), 0u)
        << "an OPEN for a bad agency opened a source";
    // Had a bad DONE counted, agencies 1 and 2 would not both be needed for the draw.
    EXPECT_EQ(count_matching(server_.log, std::regex("action: sorteo ")), 0u) << "a draw ran after bad DONEs";
}

// A connection belongs to the first agency it names: after opening agency
// 1's source it cannot send bets, OPEN, DONE or WINNERS for agency 2.
TEST_F(Hostile, ConnectionThatOpenedForAgency1CannotSpeakForAgency2) {
    ASSERT_NO_FATAL_FAILURE(start(2));
    const auto one_a = make_bets(1, 0, 2), one_b = make_bets(1, 2, 2), two = make_bets(2, 0, 3);
    Conn conn(port());
    ASSERT_TRUE(opens(conn, 1, kSource));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0, one_a)));
    ASSERT_TRUE(acks(conn, 2));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(2, 0, two)));
    EXPECT_TRUE(refuses(conn, ErrorCode::bad_agency)) << "BETS for agency 2 into agency 1's source";
    ASSERT_TRUE(conn.send(wire::encode_open_frame(2, "agency-2.csv")));
    EXPECT_TRUE(refuses(conn, ErrorCode::bad_agency)) << "OPEN for agency 2 on agency 1's connection";
    ASSERT_TRUE(conn.send(wire::encode_request(wire::RequestType::done, 2)));
    EXPECT_TRUE(refuses(conn, ErrorCode::bad_agency)) << "DONE for agency 2 on agency 1's connection";
    ASSERT_TRUE(conn.send(wire::encode_request(wire::RequestType::winners, 2)));
    EXPECT_TRUE(refuses(conn, ErrorCode::bad_agency)) << "WINNERS for agency 2 on agency 1's connection";
    // The connection still serves its own agency; the refused OPEN closed
    // its source, so it opens it again.
    ASSERT_TRUE(opens(conn, 1, kSource, one_a));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 2, one_b)));
    EXPECT_TRUE(acks(conn, 2));
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("agency 2 on agency 1's connection"));
    EXPECT_EQ(store(), expected(join(one_a, one_b))) << "agency 2's refused bets reached the store";
    // Agency 2 has no source yet: a connection of its own starts it at 0.
    Conn other(port());
    ASSERT_TRUE(opens(other, 2, "agency-2.csv"));
    ASSERT_TRUE(other.send(wire::encode_bets_frame(2, 0, two)));
    EXPECT_TRUE(acks(other, 3));
    EXPECT_EQ(store(), expected(join(one_a, one_b, two)));
}

// ---- positions: ERROR 4 for a gap, duplicates ACKed without storing -----------------------------

// CONTRACT.md §6: positions past the protocol's 32-bit range are a malformed frame.
TEST_F(Hostile, BetsPastThe32BitRangeOfPositionsGetError1AndAClose) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    Conn conn(port());
    ASSERT_TRUE(opens(conn, 1, kSource));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0xFFFFFFFFu, make_bets(1, 0, 2))));
    EXPECT_TRUE(error_then_closed(conn, ErrorCode::malformed_frame)) << "positions 2^32-1 and 2^32";
    EXPECT_EQ(store_lines(), 0u);
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("positions past 2^32"));
}

TEST_F(Hostile, GapGetsError4AndDuplicatePositionsAreAcknowledgedWithoutStoring) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const auto bets = make_bets(1, 0, 9);
    const std::vector<Bet> first(bets.begin(), bets.begin() + 3), later(bets.begin() + 5, bets.end());
    Conn conn(port());
    ASSERT_TRUE(opens(conn, 1, kSource));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0, first)));
    ASSERT_TRUE(acks(conn, 3));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 5, later)));
    EXPECT_TRUE(refuses(conn, ErrorCode::gap)) << "position 5 with 3 stored";
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0xFFFFFFFFu - 4, later)));
    EXPECT_TRUE(refuses(conn, ErrorCode::gap)) << "the last valid position with 3 stored";
    EXPECT_EQ(store_lines(), 3u) << "a frame past a gap was stored";

    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0, first)));
    EXPECT_TRUE(acks(conn, 3)) << "a re-sent frame is acknowledged with its count again";
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 1, {bets[1]})));
    EXPECT_TRUE(acks(conn, 1)) << "a frame inside the stored part";
    EXPECT_EQ(store_lines(), 3u) << "a re-sent frame was stored again";
    EXPECT_EQ(await_count(server_.log, std::regex(R"(action: apuestas_repetidas \| result: success \| cantidad: 3 \|.*first: 0( |$))"), 1),
              1u) << server_log();

    // A frame that straddles the stored count: only its tail is stored.
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 2, {bets[2], bets[3], bets[4]})));
    EXPECT_TRUE(acks(conn, 3)) << "a straddling frame is ACKed with its whole count";
    EXPECT_EQ(store(), expected(std::vector<Bet>(bets.begin(), bets.begin() + 5)));
    EXPECT_EQ(await_count(server_.log,
                          std::regex(R"(action: apuesta_recibida \| result: success \| cantidad: 2 \|.*first: 3 \| repetidas: 1)"), 1),
              1u) << server_log();

    // The source goes on after the refusals, and another connection that
    // resumes it gets what is stored, then a duplicate ACKed.
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 5, later)));
    EXPECT_TRUE(acks(conn, 4)) << "the positions go on after the refusals";
    {
        Conn other(port());
        ASSERT_TRUE(opens(other, 1, kSource, bets));
        ASSERT_TRUE(other.send(wire::encode_bets_frame(1, 5, later)));
        EXPECT_TRUE(acks(other, 4));
    }
    EXPECT_EQ(store(), expected(bets));
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("a gap and duplicates"));
}

// Another OPEN on the same connection switches source: each has its own positions.
TEST_F(Hostile, OpenSwitchesTheSourceOfAConnection) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const auto file_a = make_bets(1, 0, 3), file_b = make_bets(1, 50, 2);
    Conn conn(port());
    ASSERT_TRUE(opens(conn, 1, "a.csv"));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0, file_a)));
    ASSERT_TRUE(acks(conn, 3));
    ASSERT_TRUE(opens(conn, 1, "b.csv")) << "a new source starts empty";
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0, file_b)));
    EXPECT_TRUE(acks(conn, 2)) << "position 0 of b.csv is not position 0 of a.csv";
    ASSERT_TRUE(opens(conn, 1, "a.csv", file_a));
    EXPECT_EQ(store(), expected(join(file_a, file_b)));
}

// CONTRACT.md §5: an OPEN that is refused leaves the connection with no
// source open. A client that pipelines an OPEN for another source and BETS
// for it must not have those BETS counted against the source it had open:
// here they would fall below a.csv's stored count and be ACKed unstored.
TEST_F(Hostile, ARefusedOpenLeavesNoSourceOpen) {
    ASSERT_NO_FATAL_FAILURE(start(2));
    const auto file_a = make_bets(1, 0, 3), file_b = make_bets(1, 50, 2);
    Conn conn(port());
    ASSERT_TRUE(opens(conn, 1, "a.csv"));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0, file_a)));
    ASSERT_TRUE(acks(conn, 3));
    // Agency 2 on agency 1's connection: ERROR 3; then BETS with no source open.
    ASSERT_TRUE(conn.send(concat(wire::encode_open_frame(2, "b.csv"), wire::encode_bets_frame(1, 0, file_b))));
    EXPECT_TRUE(refuses(conn, ErrorCode::bad_agency)) << "OPEN for another agency";
    EXPECT_TRUE(error_then_closed(conn, ErrorCode::malformed_frame)) << "BETS after a refused OPEN";
    EXPECT_EQ(store(), expected(file_a));
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("a refused OPEN"));
}

// ---- fencing: ERROR 8 for a connection whose source was opened by a newer one -----------------

TEST_F(Hostile, OpenFencesTheEarlierConnectionWithError8) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const auto bets = make_bets(1, 0, 7);
    const std::vector<Bet> head(bets.begin(), bets.begin() + 3), middle(bets.begin() + 3, bets.begin() + 5),
        tail(bets.begin() + 5, bets.end());
    Conn old_one(port()), new_one(port());
    ASSERT_TRUE(opens(old_one, 1, kSource));
    ASSERT_TRUE(old_one.send(wire::encode_bets_frame(1, 0, head)));
    ASSERT_TRUE(acks(old_one, 3));
    ASSERT_TRUE(opens(new_one, 1, kSource, head));

    ASSERT_TRUE(old_one.send(wire::encode_bets_frame(1, 3, middle)));
    EXPECT_TRUE(refuses(old_one, ErrorCode::fenced)) << "new bets from the fenced connection";
    ASSERT_TRUE(old_one.send(wire::encode_bets_frame(1, 0, head)));
    EXPECT_TRUE(refuses(old_one, ErrorCode::fenced)) << "even a duplicate from the fenced connection";
    EXPECT_TRUE(echoes(old_one, "fenced, still open")) << "ERROR 8 does not close the connection";
    EXPECT_EQ(store(), expected(head));

    ASSERT_TRUE(new_one.send(wire::encode_bets_frame(1, 3, middle)));
    EXPECT_TRUE(acks(new_one, 2)) << "the newest opener feeds the source";
    // Opening again takes the source back, and fences the other one.
    ASSERT_TRUE(opens(old_one, 1, kSource, join(head, middle)));
    ASSERT_TRUE(new_one.send(wire::encode_bets_frame(1, 5, tail)));
    EXPECT_TRUE(refuses(new_one, ErrorCode::fenced));
    ASSERT_TRUE(old_one.send(wire::encode_bets_frame(1, 5, tail)));
    EXPECT_TRUE(acks(old_one, 2));
    EXPECT_EQ(store(), expected(bets));
    EXPECT_EQ(count_matching(server_.log, std::regex(R"(action: apuesta_recibida \| result: fail \|.*error: fenced)")), 3u)
        << server_log();
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("fencing"));
}

// The same position from two connections at once (two clients with the same
// CLI_ID and file, each OPEN racing the other's BETS): each frame is ACKed
// or fenced, at least one is ACKed, and the store holds every position once.
TEST_F(Hostile, SameSourceFromTwoConnectionsAtOnceIsStoredOnce) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    const auto bets = make_bets(1, 0, 20);
    const Bytes ack1 = reply_bytes(ReplyType::ack, 1), fenced = wire::encode_error(ErrorCode::fenced);
    for (std::uint32_t position = 0; position < bets.size(); ++position) {
        SCOPED_TRACE("position " + std::to_string(position));
        Conn a(port()), b(port());
        const Bytes frames = concat(wire::encode_open_frame(1, kSource), wire::encode_bets_frame(1, position, {bets[position]}));
        ASSERT_TRUE(a.send(frames));
        ASSERT_TRUE(b.send(frames));
        std::size_t acked = 0;
        for (Conn* conn : {&a, &b}) {
            const Received resume = conn->receive(wire::kReplyHeaderSize + wire::kDigestSize);
            const std::vector<Bet> before(bets.begin(), bets.begin() + position);
            const std::vector<Bet> after(bets.begin(), bets.begin() + position + 1);
            EXPECT_TRUE(resume.bytes == wire::encode_resume_reply(position, digest_of(before)) ||
                        resume.bytes == wire::encode_resume_reply(position + 1, digest_of(after)))
                << "RESUME: " << describe(resume.bytes);
            const Received reply = conn->receive(wire::kReplyHeaderSize);
            EXPECT_TRUE(reply.bytes == ack1 || reply.bytes == fenced) << describe(reply.bytes);
            acked += reply.bytes == ack1;
        }
        EXPECT_GE(acked, 1u) << "both connections were fenced";
    }
    EXPECT_EQ(store(), expected(bets)) << "a position was stored twice or not at all";
}

// ---- DONE and the draw: ERROR 5 for new bets after it ----------------------------------------

// CONTRACT.md §5: until the draw an agency may still store bets, also after its DONE.
TEST_F(Hostile, BetsAfterDoneButBeforeTheDrawAreStored) {
    ASSERT_NO_FATAL_FAILURE(start(2));
    const auto first = make_bets(1, 0, 3), more = make_bets(1, 3, 2);
    Conn conn(port());
    ASSERT_TRUE(opens(conn, 1, kSource));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0, first)));
    ASSERT_TRUE(acks(conn, 3));
    ASSERT_TRUE(conn.send(wire::encode_request(wire::RequestType::done, 1)));
    ASSERT_TRUE(acks(conn, 0)) << "DONE is acknowledged with 0";
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 3, more)));
    EXPECT_TRUE(acks(conn, 2)) << "agency 2 is not done: no draw yet, the bets are stored";
    ASSERT_TRUE(conn.send(wire::encode_request(wire::RequestType::done, 1)));
    EXPECT_TRUE(acks(conn, 0)) << "DONE is idempotent";
    EXPECT_EQ(store(), expected(join(first, more)));
    EXPECT_EQ(count_matching(server_.log, std::regex("action: sorteo ")), 0u);
    EXPECT_EQ(count_matching(server_.log, std::regex(R"(action: agencia_finalizada \| result: success \| agencia: 1( |$))")), 1u)
        << "the second DONE was counted again";
}

TEST_F(Hostile, NewBetsAfterTheDrawGetError5) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    auto first = make_bets(1, 0, 3);
    first[1].number = 7574;
    const auto late = make_bets(1, 3, 2);
    Conn conn(port());
    ASSERT_TRUE(opens(conn, 1, kSource));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0, first)));
    ASSERT_TRUE(acks(conn, 3));
    ASSERT_TRUE(conn.send(wire::encode_request(wire::RequestType::done, 1)));
    ASSERT_TRUE(acks(conn, 0)) << "the only agency's DONE starts the draw";
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 3, late)));
    EXPECT_TRUE(refuses(conn, ErrorCode::draw_held)) << "new bets after the draw";
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 2, {first[2], late[0]})));
    EXPECT_TRUE(refuses(conn, ErrorCode::draw_held)) << "a frame with one new bet after the draw";
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0, first)));
    EXPECT_TRUE(acks(conn, 3)) << "an already-stored frame is still ACKed after the draw";
    ASSERT_TRUE(conn.send(wire::encode_request(wire::RequestType::done, 1)));
    EXPECT_TRUE(acks(conn, 0)) << "DONE is idempotent";
    {
        Conn other(port()); // a re-run after the draw: OPEN answered, new bets refused
        ASSERT_TRUE(opens(other, 1, kSource, first));
        ASSERT_TRUE(other.send(wire::encode_bets_frame(1, 3, late)));
        EXPECT_TRUE(refuses(other, ErrorCode::draw_held)) << "new bets after the draw on another connection";
        ASSERT_TRUE(opens(other, 1, "another.csv")) << "a new source may be opened after the draw";
        ASSERT_TRUE(other.send(wire::encode_bets_frame(1, 0, late)));
        EXPECT_TRUE(refuses(other, ErrorCode::draw_held)) << "a new source's bets after the draw";
    }
    EXPECT_EQ(store(), expected(first));
    ASSERT_TRUE(conn.send(wire::encode_request(wire::RequestType::winners, 1)));
    std::string problem;
    const auto documents = winners(conn, problem);
    ASSERT_TRUE(documents) << problem;
    EXPECT_EQ(*documents, std::multiset<std::string>{first[1].document});
    EXPECT_EQ(await_count(server_.log, std::regex("action: sorteo \\| result: success"), 1), 1u);
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("bets after the draw"));
    EXPECT_EQ(count_matching(server_.log, std::regex("action: sorteo ")), 1u) << "exactly one draw";
}

// ---- limits, pipelining, races ---------------------------------------------------------

// The largest valid frames (8188 and 8192 bytes) and the longest source name are served: the limits are not off by one.
TEST_F(Hostile, LargestValidFramesAreAccepted) {
    ASSERT_NO_FATAL_FAILURE(start(1));
    Conn conn(port());
    ASSERT_TRUE(opens(conn, 1, std::string(wire::kMaxSourceName, 'n')));
    const auto bets = make_bets(1, 0, static_cast<int>(wire::kMaxBetsPerFrame));
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0, bets)));
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
    ASSERT_TRUE(conn.send(concat(concat(concat(concat(wire::encode_open_frame(1, kSource), wire::encode_bets_frame(1, 0, first)),
                                               wire::encode_bets_frame(1, 3, second)),
                                        concat(wire::encode_request(wire::RequestType::done, 1), echo)),
                                 wire::encode_request(wire::RequestType::winners, 1))));
    EXPECT_TRUE(resumes(conn, {}));
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
    // The trailing ECHO stays unread, but the lingering close reads it away: a FIN, no reset.
    EXPECT_TRUE(error_then_closed(other, ErrorCode::malformed_frame));
    EXPECT_EQ(store(), expected(join(first, second)));
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("pipelined frames"));
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
    ASSERT_TRUE(type == 0 || type > 5) << "seed changed: first type is " << type;
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
    ASSERT_TRUE(opens(conn, 1, kSource));
    std::mt19937 sizes(4242);
    for (std::uint32_t i = 0; i < 100; ++i) {
        const auto count = static_cast<std::uint16_t>(1 + sizes() % wire::kMaxBetsPerFrame);
        const Bytes frame = concat(header(1, 1, 0, count), random_bytes(count * wire::kBetSize, 1000 + i));
        ASSERT_TRUE(conn.send(frame)) << "frame " << i;
        ASSERT_TRUE(refuses(conn, ErrorCode::invalid_bet)) << "frame " << i << " (" << count << " random bets)";
    }
    EXPECT_EQ(store_lines(), 0u);
    ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 0, make_bets(1, 0, 1))));
    EXPECT_TRUE(acks(conn, 1));
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("100 frames of random bets"));
}

// ---- silence ------------------------------------------------------------------------------

// CONTRACT.md §6, the deadlines: a new connection must send its first frame
// whole within SERVER_FIRST_FRAME_TIMEOUT (until then it holds no handler:
// the acceptor reads it); after a frame, the next must begin within
// SERVER_IDLE_TIMEOUT; and a frame that has begun must be whole within
// SERVER_FRAME_TIMEOUT. Each is dropped with its own line.
TEST_F(Hostile, DeadlinesDropSilentAndStalledPeers) {
    ASSERT_NO_FATAL_FAILURE(start(1,
                                  {{"SERVER_FIRST_FRAME_TIMEOUT", "1"},
                                   {"SERVER_IDLE_TIMEOUT", "2"},
                                   {"SERVER_FRAME_TIMEOUT", "1"}},
                                  /*observer=*/false));
    const auto expect_dropped = [&](Conn& conn, const char* line, long long at_least_ms, Clock::time_point since) {
        EXPECT_TRUE(closed_silently(conn));
        EXPECT_GE(ms_since(since), at_least_ms) << "dropped before its deadline";
        EXPECT_TRUE(harness::wait_for_line(server_.log,
                                           std::regex(std::string("action: ") + line + " \\|.*peer: " + escape(conn.peer())),
                                           kIo, &server_.process))
            << "no " << line << " line; " << server_log();
    };
    {
        SCOPED_TRACE("connects and says nothing");
        Conn conn(port());
        ASSERT_TRUE(conn.connected());
        expect_dropped(conn, "first_frame_timeout", 900, Clock::now());
    }
    {
        SCOPED_TRACE("first frame stalled mid-header and mid-payload");
        Conn mid_header(port()), mid_payload(port());
        const auto connected = Clock::now();
        ASSERT_TRUE(mid_header.send(Bytes{0, 4, 0}));
        ASSERT_TRUE(mid_payload.send(concat(header(1, 1, 1, 1), Bytes(5, 'x'))));
        expect_dropped(mid_header, "first_frame_timeout", 900, connected);
        expect_dropped(mid_payload, "first_frame_timeout", 900, connected);
    }
    {
        SCOPED_TRACE("a frame, then silence");
        Conn conn(port());
        ASSERT_TRUE(echoes(conn, "one frame"));
        expect_dropped(conn, "idle_timeout", 1900, Clock::now());
    }
    {
        SCOPED_TRACE("a frame, then the next stalled mid-header");
        Conn conn(port());
        ASSERT_TRUE(echoes(conn, "one frame"));
        ASSERT_TRUE(conn.send(Bytes{0, 4, 0}));
        expect_dropped(conn, "frame_timeout", 900, Clock::now());
    }
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("idle clients"));
}

// ---- too many connections ----------------------------------------------------------------

// CONTRACT.md §3, §6: SERVER_MAX_HANDLERS bounds the connections served at
// once; the ones past it wait (their first frame read, no process) and are
// served in turn: none is accepted and dropped.
TEST_F(Hostile, ConnectionsBeyondMaxHandlersWaitAndAreServedInTurn) {
    ASSERT_NO_FATAL_FAILURE(start(1, {{"SERVER_MAX_HANDLERS", "4"}}, /*observer=*/false));
    const std::regex accepted(R"(action: accept \| result: success)");
    std::vector<std::unique_ptr<Conn>> served;
    for (int i = 0; i < 4; ++i) {
        served.push_back(std::make_unique<Conn>(port()));
        ASSERT_TRUE(echoes(*served.back(), "one of the first four"));
    }
    std::vector<std::unique_ptr<Conn>> waiting;
    const Bytes echo = wire::encode_echo_frame("waits its turn");
    for (int i = 0; i < 3; ++i) {
        waiting.push_back(std::make_unique<Conn>(port()));
        ASSERT_TRUE(waiting.back()->send(echo));
    }
    for (auto& conn : waiting) EXPECT_TRUE(stays_silent(*conn)) << "served past SERVER_MAX_HANDLERS: " << conn->peer();
    EXPECT_EQ(count_matching(server_.log, accepted), 4u) << server_log();

    served.clear(); // their handlers end: the three waiting get theirs
    for (auto& conn : waiting) {
        const Received got = conn->receive(echo.size());
        EXPECT_EQ(got.bytes, echo) << conn->peer() << " was not served once handlers were free (" << to_text(got.end) << ")";
        EXPECT_TRUE(echoes(*conn, "and goes on")) << conn->peer();
    }
    EXPECT_EQ(count_matching(server_.log, accepted), 7u) << server_log();
    EXPECT_EQ(count_matching(server_.log, std::regex(R"(action: accept \| result: fail)")), 0u)
        << "a connection was refused: " << server_log();
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
    ASSERT_TRUE(opens(a, 1, "agency-1.csv"));
    ASSERT_TRUE(a.send(wire::encode_bets_frame(1, 0, one)));
    ASSERT_TRUE(acks(a, 6));
    // The same source name in another agency is another source.
    ASSERT_TRUE(opens(b, 2, "agency-1.csv"));
    ASSERT_TRUE(b.send(wire::encode_bets_frame(2, 0, two)));
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
    EXPECT_TRUE(closed_silently(a)) << "WINNERS is the last request of a connection";
    ASSERT_TRUE(b.send(wire::encode_request(wire::RequestType::winners, 2)));
    const auto theirs = winners(b, problem);
    ASSERT_TRUE(theirs) << problem;
    EXPECT_EQ(*theirs, (std::multiset<std::string>{"33333333", "44444444", "9"}));
    // A connection of agency 1 cannot ask for agency 2's winners.
    Conn again_a(port());
    ASSERT_TRUE(again_a.send(wire::encode_request(wire::RequestType::done, 1)));
    ASSERT_TRUE(acks(again_a, 0));
    ASSERT_TRUE(again_a.send(wire::encode_request(wire::RequestType::winners, 2)));
    EXPECT_TRUE(refuses(again_a, ErrorCode::bad_agency));
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
    ASSERT_TRUE(opens(a, 1, kSource));
    ASSERT_TRUE(a.send(wire::encode_bets_frame(1, 0, one)));
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
    ASSERT_TRUE(opens(a, 1, kSource));
    ASSERT_TRUE(a.send(wire::encode_bets_frame(1, 0, make_bets(1, 0, 2))));
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
    ASSERT_NO_FATAL_FAILURE(start(1, {{"LOGGING_LEVEL", "DEBUG"}}, /*observer=*/false));
    Conn silent(port()), mid_header(port()), mid_payload(port()), bound(port());
    ASSERT_TRUE(mid_header.send(Bytes{0, 1, 0, 0, 0}));
    const Bytes frame = wire::encode_bets_frame(1, 0, make_bets(1, 0, 2));
    ASSERT_TRUE(mid_payload.send(Bytes(frame.begin(), frame.begin() + 100)));
    ASSERT_TRUE(opens(bound, 1, kSource));
    ASSERT_TRUE(bound.send(wire::encode_bets_frame(1, 0, make_bets(1, 5, 1))));
    ASSERT_TRUE(acks(bound, 1));
    // Three arrivals still in the acceptor, one connection with a handler.
    ASSERT_EQ(await_count(server_.log, std::regex(R"(action: arrival \| result: in_progress)"), 4), 4u) << server_log();
    ASSERT_EQ(await_count(server_.log, std::regex(R"(action: accept \| result: success)"), 1), 1u) << server_log();
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

    const std::string real_source = agency.source; // what the real client will OPEN
    for (const Bytes& bad : {header(0, 1, 0, 0), header(6, 1, 0, 0), header(0xFFFF, 1, 1, 1), header(1, 1, 0, 0),
                             header(1, 1, 0, 57), header(4, 0, 0, 8181), header(2, 1, 1, 0), header(2, 1, 0, 1),
                             header(3, 1, 1, 0), header(3, 1, 0, 1), header(5, 1, 0, 0), open_frame(1, real_source, 1),
                             open_frame(1, "agency 5.csv"), open_frame(1, std::string(65, 'a')),
                             wire::encode_bets_frame(1, 0, make_bets(1, 0, 1))}) {
        Conn conn(port());
        ASSERT_TRUE(conn.send(bad));
        EXPECT_TRUE(error_then_closed(conn, ErrorCode::malformed_frame)) << describe(bad);
    }
    {
        Conn conn(port()); // truncated
        ASSERT_TRUE(opens(conn, 1, real_source));
        const Bytes frame = wire::encode_bets_frame(1, 0, make_bets(1, 0, 3));
        ASSERT_TRUE(conn.send(Bytes(frame.begin(), frame.begin() + wire::kRequestHeaderSize + 2 * wire::kBetSize + 100)));
        conn.shutdown_write();
        EXPECT_TRUE(closed_silently(conn));
    }
    {
        Conn conn(port()); // mid-header close
        ASSERT_TRUE(conn.send(Bytes{0, 1, 0, 0, 0}));
    }
    {
        Conn conn(port()); // invalid bets into the real client's source: nothing stored, position 0 not consumed
        ASSERT_TRUE(opens(conn, 1, real_source));
        for (const InvalidBet& bad : {InvalidBet{"utf8", kFirstName, 64, "\xC3\x28"},
                                      InvalidBet{"date", kBirthdate, 8, "20010230"},
                                      InvalidBet{"number", kNumber, 2, u16(10000)}}) {
            auto bets = make_bets(1, 0, 3);
            bets[0].number = 7574; // would add a winner if it were stored
            ASSERT_TRUE(conn.send(patch(wire::encode_bets_frame(1, 0, bets), 2, bad.offset, bad.width, bad.value)));
            EXPECT_TRUE(refuses(conn, ErrorCode::invalid_bet)) << bad.name;
        }
        ASSERT_TRUE(conn.send(wire::encode_bets_frame(1, 1, make_bets(1, 0, 3))));
        EXPECT_TRUE(refuses(conn, ErrorCode::gap)) << "position 1 of an empty source";
    }
    {
        Conn conn(port()); // an agency that does not exist here
        ASSERT_TRUE(conn.send(wire::encode_open_frame(2, real_source)));
        EXPECT_TRUE(refuses(conn, ErrorCode::bad_agency));
        ASSERT_TRUE(conn.send(wire::encode_request(wire::RequestType::done, 2)));
        EXPECT_TRUE(refuses(conn, ErrorCode::bad_agency));
    }
    Conn fenced(port()); // opens the real client's source first: the real OPEN fences it
    ASSERT_TRUE(opens(fenced, 1, real_source));
    {
        Conn conn(port()); // garbage
        const Received got = conn.pump(random_bytes(1 << 20, 75740001));
        EXPECT_TRUE(got.end == End::eof || got.end == End::reset) << to_text(got.end);
    }
    ASSERT_NO_FATAL_FAILURE(expect_unharmed("the hostile battery"));
    ASSERT_EQ(store_lines(), 0u) << "hostile traffic stored something";
    auto ghost = make_bets(1, 0, 1);
    ghost[0].number = 7574; // would add a winner if it were stored
    ASSERT_EQ(count_matching(server_.log, std::regex("action: sorteo ")), 0u) << "hostile traffic triggered the draw";

    harness::Process client =
        scenario::spawn_client(dir_, 1, port(), {{"CLI_DATA_FILE", agency.csv}}, "agency-1.log");
    ASSERT_TRUE(client.started());
    const int code = client.wait_exit();
    scenario::verify_client(agency, client.log_file(), code);
    ASSERT_TRUE(fenced.send(wire::encode_bets_frame(1, static_cast<std::uint32_t>(agency.bets.size()), ghost)));
    EXPECT_TRUE(refuses(fenced, ErrorCode::fenced)) << "the earlier opener of the real client's source";
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
