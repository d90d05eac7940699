// The connection handler run in-process on a thread: the test is the client
// (one end of a socketpair) and plays the coordinator (the other ends of the
// handler's two pipes), reading its requests byte by byte and writing replies.
#include "server/handler.hpp"
#include "server/channel.hpp"

#include "common/bet_store.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using test_support::bytes;
using test_support::lines_with;
using test_support::StdoutCapture;

constexpr int kWaitMs = 5000; // upper bound for anything that should happen "now"

std::string text(const wire::Bytes& bytes) { return std::string(bytes.begin(), bytes.end()); }

// Up to `size` bytes: fewer only when the peer closed or nothing came for kWaitMs.
std::string read_bytes(int fd, std::size_t size) {
    std::string out;
    char chunk[4096];
    while (out.size() < size) {
        pollfd ready{fd, POLLIN, 0};
        if (::poll(&ready, 1, kWaitMs) <= 0) break;
        const ssize_t got = ::read(fd, chunk, std::min(sizeof chunk, size - out.size()));
        if (got <= 0) break;
        out.append(chunk, static_cast<std::size_t>(got));
    }
    return out;
}

// How the stream on `fd` goes on: "EOF", "data", "timeout" or the read error
// ("Connection reset by peer" when the peer closed without lingering).
std::string what_follows(int fd) {
    pollfd ready{fd, POLLIN, 0};
    if (::poll(&ready, 1, kWaitMs) <= 0) return "timeout";
    char byte;
    const ssize_t got = ::read(fd, &byte, 1);
    if (got < 0) return std::strerror(errno);
    return got == 0 ? "EOF" : "data";
}

bool at_eof(int fd) { return what_follows(fd) == "EOF"; }

bool readable_now(int fd) {
    pollfd ready{fd, POLLIN, 0};
    return ::poll(&ready, 1, 0) > 0;
}

std::uint64_t be64(const std::string& b, std::size_t at) {
    return wire::get_u64(reinterpret_cast<const std::uint8_t*>(b.data() + at));
}
std::uint32_t be32(const std::string& b, std::size_t at) {
    return wire::get_u32(reinterpret_cast<const std::uint8_t*>(b.data() + at));
}
std::uint16_t be16(const std::string& b, std::size_t at) {
    return wire::get_u16(reinterpret_cast<const std::uint8_t*>(b.data() + at));
}

// One handler -> coordinator message, decoded by hand from its bytes.
struct SeenRequest {
    bool complete = false;
    std::uint16_t type = 0;
    std::uint32_t agency = 0;
    std::uint32_t first = 0;
    std::uint16_t count = 0;
    std::uint32_t source = 0;
    std::string body;                  // everything after the 20-byte head
    std::vector<std::uint64_t> hashes; // BETS: the body's first count × 8 bytes
    std::string lines;                 // BETS: the rest of the body
};

// Reply bytes the coordinator writes: source id, stored_now, then the wire reply.
std::string coordinator_reply(std::uint32_t source, std::uint16_t stored_now, const std::string& wire_reply) {
    const std::string head = bytes({int(source >> 24), int(source >> 16 & 0xFF), int(source >> 8 & 0xFF),
                                    int(source & 0xFF), stored_now >> 8, stored_now & 0xFF});
    return head + wire_reply;
}

std::string ack(int count) { return bytes({0, 1, 0, 0, 0, count}); }
std::string error_frame(int code) { return bytes({0, 2, 0, 0, 0, code}); }
std::string resume(std::uint32_t stored, wire::Digest digest) { return text(wire::encode_resume_reply(stored, digest)); }

const Bet kAna{1, "Ana", "Gómez", "00000042", "1990-01-31", 7574};
const Bet kJuan{1, "Juan", "Pérez, Jr", "7", "2000-02-29", 0};
const Bet kEva{1, "Eva", "Ruiz", "23456789", "1970-07-07", 12};
// kAna and kJuan as store lines, written by hand (QUOTE_MINIMAL).
const std::string kAnaJuanLines = "1,Ana,Gómez,00000042,1990-01-31,7574\n1,Juan,\"Pérez, Jr\",7,2000-02-29,0\n";
const std::string kSource = "agency-1.csv";
constexpr std::uint32_t kSourceId = 3; // the id the fake coordinator gives kSource

class HandlerTest : public ::testing::Test {
protected:
    void SetUp() override { ::signal(SIGPIPE, SIG_IGN); }

    void TearDown() override {
        client_.reset();
        replies_.reset();
        if (thread_.joinable()) {
            if (result_.wait_for(std::chrono::seconds(10)) == std::future_status::ready) {
                thread_.join();
            } else {
                ADD_FAILURE() << "handler still running after its client and coordinator went away";
                thread_.detach();
            }
        }
    }

    void start(std::uint32_t agencies = 5, int frame_timeout_ms = 10000) {
        int pair[2], requests[2], replies[2], channel[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
        ASSERT_EQ(::pipe(requests), 0);
        ASSERT_EQ(::pipe(replies), 0);
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, channel), 0);
        client_.reset(pair[0]);
        requests_.reset(requests[0]);
        replies_.reset(replies[1]);
        channel_.reset(channel[0]);
        HandlerSetup setup{Fd(pair[1]), "test:1", Fd(requests[1]), Fd(replies[0]), Fd(channel[1]), "",
                           agencies,    10000,    frame_timeout_ms};
        std::promise<int> promise;
        result_ = promise.get_future();
        thread_ = std::thread([setup = std::move(setup), promise = std::move(promise)]() mutable {
            Handler handler(std::move(setup));
            promise.set_value(handler.run());
        });
    }

    void send(const std::string& frame) {
        ASSERT_EQ(write_all(client_.get(), frame), IoStatus::ok);
    }
    void send(const wire::Bytes& frame) { send(text(frame)); }
    std::string receive(std::size_t size) { return read_bytes(client_.get(), size); }

    SeenRequest next_request() {
        SeenRequest request;
        const std::string head = read_bytes(requests_.get(), ipc::kRequestHeaderSize);
        if (head.size() != ipc::kRequestHeaderSize) return request;
        request.type = be16(head, 0);
        request.agency = be32(head, 2);
        request.first = be32(head, 6);
        request.count = be16(head, 10);
        request.source = be32(head, 12);
        const std::uint32_t length = be32(head, 16);
        request.body = read_bytes(requests_.get(), length);
        request.complete = request.body.size() == length;
        if (request.type == 1 && request.body.size() >= request.count * 8u) {
            for (std::size_t i = 0; i < request.count; ++i) request.hashes.push_back(be64(request.body, 8 * i));
            request.lines = request.body.substr(request.count * 8u);
        }
        return request;
    }
    void reply(std::uint32_t source, std::uint16_t stored_now, const std::string& wire_reply) {
        ASSERT_EQ(write_all(replies_.get(), coordinator_reply(source, stored_now, wire_reply)), IoStatus::ok);
    }
    void reply(const std::string& wire_reply) { reply(0, 0, wire_reply); }

    // OPENs `name` of `agency` as a client does, the coordinator answering
    // RESUME(0, 0) with `id`.
    void open_source(std::uint32_t agency = 1, const std::string& name = kSource, std::uint32_t id = kSourceId) {
        send(wire::encode_open_frame(agency, name));
        ASSERT_TRUE(next_request().complete);
        ASSERT_NO_FATAL_FAILURE(reply(id, 0, resume(0, 0)));
        ASSERT_EQ(receive(14), resume(0, 0));
    }
    // Sends `bets` at `first`, checks they reach the coordinator, and answers
    // ACK with `stored_now`; returns what the client got back.
    std::string bets_answered(std::uint32_t first, const std::vector<Bet>& bets, std::uint16_t stored_now) {
        send(wire::encode_bets_frame(1, first, bets));
        EXPECT_TRUE(next_request().complete);
        reply(0, stored_now, ack(static_cast<int>(bets.size())));
        return receive(6);
    }

    // run()'s exit code once it has returned (and its thread ended), or nothing.
    std::optional<int> wait_for_exit() {
        if (result_.wait_for(std::chrono::milliseconds(kWaitMs)) != std::future_status::ready) return std::nullopt;
        thread_.join();
        return result_.get();
    }
    // After the handler has exited: every byte it ever sent the coordinator
    // that the test did not read.
    std::string unread_requests() {
        EXPECT_FALSE(thread_.joinable()) << "call after wait_for_exit()";
        return read_bytes(requests_.get(), 1 << 20);
    }
    // Ends the session cleanly from the client side and checks that nothing
    // else reached the coordinator.
    void close_client_and_expect_no_more_requests() {
        client_.reset();
        ASSERT_EQ(wait_for_exit(), std::optional<int>(0));
        EXPECT_EQ(unread_requests(), "");
    }
    // The client reads `error` and then the end of the stream; the handler
    // exits without having asked the coordinator anything more.
    void expect_error_then_close(int error) {
        EXPECT_EQ(receive(6), error_frame(error));
        EXPECT_EQ(what_follows(client_.get()), "EOF") << "the ERROR must be followed by a clean end of stream";
        client_.reset();
        EXPECT_EQ(wait_for_exit(), std::optional<int>(0));
        EXPECT_EQ(unread_requests(), "");
    }

    Fd client_;
    Fd requests_; // what the handler asks the coordinator
    Fd replies_;  // what the coordinator answers
    Fd channel_;  // the coordinator's channel: connections handed over
    std::thread thread_;
    std::future<int> result_;
};

// ---- ECHO -------------------------------------------------------------------------

TEST_F(HandlerTest, EchoIsAnsweredByteForByte) {
    start();
    const std::string payload = "hola ñandú|\n" + std::string(3, '\0') + "fin";
    const wire::Bytes frame = wire::encode_echo_frame(payload);
    send(frame);
    EXPECT_EQ(receive(frame.size()), text(frame));
    EXPECT_FALSE(readable_now(client_.get())); // nothing beyond the echo
    EXPECT_FALSE(readable_now(requests_.get()));
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, EmptyEchoIsTwelveBytesBack) {
    start();
    const std::string frame = bytes({0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    send(frame);
    EXPECT_EQ(receive(12), frame);
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, SeveralEchoesOnOneConnection) {
    start();
    for (const std::string& payload : std::vector<std::string>{"uno", "dos", std::string(8180, 'x')}) {
        const wire::Bytes frame = wire::encode_echo_frame(payload);
        send(frame);
        EXPECT_EQ(receive(frame.size()), text(frame));
    }
    close_client_and_expect_no_more_requests();
}

// ---- malformed frames: ERROR 1, then a lingering close --------------------------------

TEST_F(HandlerTest, MalformedHeaderGetsError1AndConnectionCloses) {
    start();
    send(bytes({0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0})); // type 9
    expect_error_then_close(1);
}

TEST_F(HandlerTest, BetsWithTooManyBetsGetsError1AndConnectionCloses) {
    start();
    send(bytes({0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 57})); // 57 bets would exceed 8 KiB
    expect_error_then_close(1);
}

TEST_F(HandlerTest, BetsBeforeOpenGetsError1AndConnectionCloses) {
    start();
    send(wire::encode_bets_frame(1, 0, {kAna}));
    expect_error_then_close(1);
}

// The client had already sent more when the handler gave up on it: a plain
// close() with those bytes unread would reset the connection, and the client
// would read ECONNRESET where the ERROR's end of stream should be.
TEST_F(HandlerTest, Error1ReachesAClientThatAlreadySentMore) {
    start();
    send(text(wire::encode_bets_frame(1, 0, {kAna, kJuan})) + text(wire::encode_echo_frame(std::string(4000, 'x'))));
    expect_error_then_close(1);
}

TEST_F(HandlerTest, BadSourceNameGetsError1AndConnectionCloses) {
    StdoutCapture log;
    start();
    send(text(wire::encode_open_frame(1, "x/y.csv")) + text(wire::encode_echo_frame("after")));
    expect_error_then_close(1);
    EXPECT_EQ(lines_with(log.finish(), "action: abrir_fuente | result: fail").size(), 1u);
}

// ---- OPEN -------------------------------------------------------------------------

TEST_F(HandlerTest, OpenReachesCoordinatorWithItsNameAndResumeIsRelayedWithTheDigest) {
    StdoutCapture log;
    start();
    send(wire::encode_open_frame(2, kSource));
    const SeenRequest request = next_request();
    ASSERT_TRUE(request.complete);
    EXPECT_EQ(request.type, 5);
    EXPECT_EQ(request.agency, 2u);
    EXPECT_EQ(request.first, 0u);
    EXPECT_EQ(request.count, kSource.size());
    EXPECT_EQ(request.body, kSource);
    EXPECT_FALSE(readable_now(client_.get())); // no RESUME before the coordinator's
    const std::string answer = resume(17, 0x0123456789ABCDEFull);
    reply(kSourceId, 0, answer);
    EXPECT_EQ(receive(answer.size()), answer);
    EXPECT_FALSE(readable_now(client_.get()));
    const auto opened = lines_with(log.finish(), "action: abrir_fuente | result: success");
    ASSERT_EQ(opened.size(), 1u);
    EXPECT_NE(opened[0].find("agencia: 2 | fuente: agency-1.csv | almacenadas: 17"), std::string::npos) << opened[0];
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, BetsCarryTheSourceIdTheOpenReplyGave) {
    start();
    ASSERT_NO_FATAL_FAILURE(open_source(1, "a.csv", 11));
    send(wire::encode_bets_frame(1, 0, {kAna}));
    EXPECT_EQ(next_request().source, 11u);
    reply(0, 1, ack(1));
    ASSERT_EQ(receive(6), ack(1));
    // Another OPEN switches the source.
    ASSERT_NO_FATAL_FAILURE(open_source(1, "b.csv", 12));
    send(wire::encode_bets_frame(1, 0, {kJuan}));
    EXPECT_EQ(next_request().source, 12u);
    reply(0, 1, ack(1));
    EXPECT_EQ(receive(6), ack(1));
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, OpenRefusedByTheCoordinatorIsRelayedAndOpensNothing) {
    start();
    send(wire::encode_open_frame(1, kSource));
    ASSERT_TRUE(next_request().complete);
    reply(error_frame(7));
    EXPECT_EQ(receive(6), error_frame(7));
    // Still open, and still without a source: BETS now is BETS before OPEN.
    send(wire::encode_bets_frame(1, 0, {kAna}));
    expect_error_then_close(1);
}

// ---- BETS -------------------------------------------------------------------------

TEST_F(HandlerTest, BetsReachCoordinatorAsHashesAndStoreLinesAndAckIsRelayed) {
    start();
    ASSERT_NO_FATAL_FAILURE(open_source());
    const wire::Bytes frame = wire::encode_bets_frame(1, 7, {kAna, kJuan});
    send(frame);
    const SeenRequest request = next_request();
    ASSERT_TRUE(request.complete);
    EXPECT_EQ(request.type, 1);
    EXPECT_EQ(request.agency, 1u);
    EXPECT_EQ(request.first, 7u);
    EXPECT_EQ(request.count, 2);
    EXPECT_EQ(request.source, kSourceId);
    const std::uint8_t* records = frame.data() + wire::kRequestHeaderSize;
    EXPECT_EQ(request.hashes,
              (std::vector<std::uint64_t>{wire::record_hash(records), wire::record_hash(records + wire::kBetSize)}));
    EXPECT_EQ(request.hashes, (std::vector<std::uint64_t>{wire::bet_hash(kAna), wire::bet_hash(kJuan)}));
    EXPECT_EQ(request.lines, kAnaJuanLines);
    std::string rendered;
    append_store_line(rendered, kAna);
    append_store_line(rendered, kJuan);
    EXPECT_EQ(request.lines, rendered);

    EXPECT_FALSE(readable_now(client_.get())); // no ACK before the coordinator's
    reply(0, 2, ack(2));
    EXPECT_EQ(receive(6), ack(2));
    EXPECT_FALSE(readable_now(client_.get()));
    close_client_and_expect_no_more_requests();
}

// Five bets: the hashes are computed four at a time, and the fifth alone.
TEST_F(HandlerTest, EveryHashOfAFullerFrameIsTheRecordHashOfItsBet) {
    start();
    ASSERT_NO_FATAL_FAILURE(open_source());
    std::vector<Bet> bets{kAna, kJuan, kEva, kAna, kJuan};
    bets[3].document = "3";
    bets[4].number = 9999;
    send(wire::encode_bets_frame(1, 0, bets));
    const SeenRequest request = next_request();
    ASSERT_TRUE(request.complete);
    ASSERT_EQ(request.hashes.size(), bets.size());
    for (std::size_t i = 0; i < bets.size(); ++i) EXPECT_EQ(request.hashes[i], wire::bet_hash(bets[i])) << "bet " << i;
    reply(0, 5, ack(5));
    EXPECT_EQ(receive(6), ack(5));
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, BetsStoredNowAreLoggedOneByOneThenTheFrame) {
    StdoutCapture log;
    start();
    ASSERT_NO_FATAL_FAILURE(open_source());
    ASSERT_EQ(bets_answered(0, {kAna, kJuan}, 2), ack(2));
    const std::string out = log.finish();
    const auto stored = lines_with(out, "action: apuesta_almacenada | result: success");
    ASSERT_EQ(stored.size(), 2u);
    EXPECT_NE(stored[0].find("dni: 00000042 | numero: 7574"), std::string::npos) << stored[0];
    EXPECT_NE(stored[1].find("dni: 7 | numero: 0"), std::string::npos) << stored[1];
    const auto received = lines_with(out, "action: apuesta_recibida");
    ASSERT_EQ(received.size(), 1u);
    EXPECT_NE(received[0].find("result: success | cantidad: 2 | agencia: 1 | fuente: agency-1.csv | first: 0 | "
                               "repetidas: 0"),
              std::string::npos)
        << received[0];
    close_client_and_expect_no_more_requests();
}

// A frame that straddles the stored count: only its tail was stored now.
TEST_F(HandlerTest, OnlyTheTailStoredNowIsLoggedAsStored) {
    StdoutCapture log;
    start();
    ASSERT_NO_FATAL_FAILURE(open_source());
    ASSERT_EQ(bets_answered(5, {kAna, kJuan, kEva}, 1), ack(3));
    const std::string out = log.finish();
    const auto stored = lines_with(out, "action: apuesta_almacenada");
    ASSERT_EQ(stored.size(), 1u) << out;
    EXPECT_NE(stored[0].find("dni: 23456789 | numero: 12"), std::string::npos) << stored[0];
    const auto received = lines_with(out, "action: apuesta_recibida");
    ASSERT_EQ(received.size(), 1u);
    EXPECT_NE(received[0].find("cantidad: 1 | agencia: 1 | fuente: agency-1.csv | first: 7 | repetidas: 2"),
              std::string::npos)
        << received[0];
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, WhollyStoredFrameIsLoggedAsRepeatedOnly) {
    StdoutCapture log;
    start();
    ASSERT_NO_FATAL_FAILURE(open_source());
    ASSERT_EQ(bets_answered(4, {kAna, kJuan}, 0), ack(2));
    const std::string out = log.finish();
    EXPECT_EQ(lines_with(out, "apuesta_almacenada").size(), 0u) << out;
    EXPECT_EQ(lines_with(out, "apuesta_recibida").size(), 0u) << out;
    const auto repeated = lines_with(out, "action: apuestas_repetidas | result: success");
    ASSERT_EQ(repeated.size(), 1u) << out;
    EXPECT_NE(repeated[0].find("cantidad: 2 | agencia: 1 | fuente: agency-1.csv | first: 4"), std::string::npos)
        << repeated[0];
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, CoordinatorRefusalIsRelayedLoggedAndConnectionStaysOpen) {
    StdoutCapture log;
    start();
    ASSERT_NO_FATAL_FAILURE(open_source());
    send(wire::encode_bets_frame(1, 3, {kAna}));
    ASSERT_TRUE(next_request().complete);
    reply(error_frame(8));
    EXPECT_EQ(receive(6), error_frame(8));
    const std::string out = log.finish();
    EXPECT_EQ(lines_with(out, "apuesta_almacenada").size(), 0u);
    const auto refused = lines_with(out, "action: apuesta_recibida | result: fail");
    ASSERT_EQ(refused.size(), 1u) << out;
    EXPECT_NE(refused[0].find("first: 3 | error: fenced"), std::string::npos) << refused[0];
    // The same connection can go on.
    send(wire::encode_bets_frame(1, 0, {kAna}));
    const SeenRequest retry = next_request();
    ASSERT_TRUE(retry.complete);
    EXPECT_EQ(retry.first, 0u);
    reply(0, 1, ack(1));
    EXPECT_EQ(receive(6), ack(1));
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, InvalidBetGetsError2WithoutCoordinatorAndConnectionStaysOpen) {
    start();
    ASSERT_NO_FATAL_FAILURE(open_source());
    Bet bad = kJuan;
    bad.birthdate = "2001-02-30";
    send(wire::encode_bets_frame(1, 0, {kAna, bad}));
    EXPECT_EQ(receive(6), error_frame(2));
    EXPECT_FALSE(readable_now(requests_.get()));
    // Still open: an ECHO goes through.
    const wire::Bytes echo = wire::encode_echo_frame("still here");
    send(echo);
    EXPECT_EQ(receive(echo.size()), text(echo));
    close_client_and_expect_no_more_requests();
}

// Frames that arrive together (a client keeps several in flight) travel
// together: all reach the coordinator before any reply is awaited, a frame
// refused on the spot keeps its place, and the replies come back in order.
TEST_F(HandlerTest, BufferedFramesAreOneRoundAndRepliesKeepTheirOrder) {
    start();
    ASSERT_NO_FATAL_FAILURE(open_source());
    Bet bad = kJuan;
    bad.birthdate = "2001-02-30";
    wire::Bytes frames = wire::encode_bets_frame(1, 0, {kAna});
    for (const wire::Bytes& next : {wire::encode_bets_frame(1, 1, {bad}), wire::encode_bets_frame(1, 1, {kJuan}),
                                    wire::encode_bets_frame(1, 2, {kEva, kAna})})
        frames.insert(frames.end(), next.begin(), next.end());
    send(frames); // one write: the handler finds all four in its buffer
    std::vector<SeenRequest> seen;
    for (int i = 0; i < 3; ++i) seen.push_back(next_request()); // before any reply
    ASSERT_TRUE(seen[0].complete && seen[1].complete && seen[2].complete);
    EXPECT_EQ(seen[0].first, 0u);
    EXPECT_EQ(seen[1].first, 1u) << "the invalid frame never reaches the coordinator";
    EXPECT_EQ(seen[1].lines, kAnaJuanLines.substr(kAnaJuanLines.find('\n') + 1));
    EXPECT_EQ(seen[2].first, 2u);
    EXPECT_EQ(seen[2].count, 2);
    EXPECT_FALSE(readable_now(client_.get())) << "no reply before the coordinator's";
    reply(0, 1, ack(1));
    reply(0, 1, ack(1));
    reply(0, 2, ack(2));
    EXPECT_EQ(receive(24), ack(1) + error_frame(2) + ack(1) + ack(2));
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, BetNumberAbove9999GetsError2) {
    start();
    ASSERT_NO_FATAL_FAILURE(open_source());
    Bet bad = kAna;
    bad.number = 10000;
    send(wire::encode_bets_frame(1, 0, {bad}));
    EXPECT_EQ(receive(6), error_frame(2));
    close_client_and_expect_no_more_requests();
}

// ---- DONE and WINNERS ---------------------------------------------------------------

TEST_F(HandlerTest, DoneIsForwardedWithoutBodyAndAckRelayed) {
    start();
    send(wire::encode_request(wire::RequestType::done, 4));
    const SeenRequest request = next_request();
    ASSERT_TRUE(request.complete);
    EXPECT_EQ(request.type, 2);
    EXPECT_EQ(request.agency, 4u);
    EXPECT_EQ(request.first, 0u);
    EXPECT_EQ(request.count, 0);
    EXPECT_EQ(request.body, "");
    reply(ack(0));
    EXPECT_EQ(receive(6), ack(0));
    close_client_and_expect_no_more_requests();
}

// A WINNERS is not asked over the pipe: the connection itself goes to the
// coordinator on the channel, with its agency, and the handler ends. The
// coordinator can answer the client on the descriptor it got.
TEST_F(HandlerTest, WinnersHandsTheConnectionOverAndEnds) {
    start();
    send(wire::encode_request(wire::RequestType::winners, 2));
    NewHandler unused;
    WaitingAgency waiting;
    pollfd ready{channel_.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&ready, 1, kWaitMs), 1) << "nothing handed over";
    ASSERT_EQ(receive_from_channel(channel_.get(), unused, waiting), Received::waiting_agency);
    EXPECT_EQ(waiting.agency, 2u);
    EXPECT_EQ(waiting.peer, "test:1");
    EXPECT_EQ(wait_for_exit(), std::optional<int>(0)) << "the handler must end once it handed the connection over";
    const std::string winners = bytes({0, 3, 0, 0, 0, 1}) + "00000042";
    ASSERT_EQ(write_all(waiting.client.get(), winners), IoStatus::ok);
    EXPECT_EQ(receive(winners.size()), winners) << "the descriptor handed over is not the client's connection";
    EXPECT_EQ(unread_requests(), "") << "WINNERS went over the pipe";
}

// A frame must arrive whole within the frame timeout of its first byte: a
// peer that sends one byte now and then does not restart the clock with
// each byte (the idle timeout, 10 s here, bounds only the wait for a
// frame's first byte).
TEST_F(HandlerTest, ASlowSenderIsClosedAtTheFrameTimeoutWhateverItsPace) {
    start(5, 300);
    const wire::Bytes done = wire::encode_request(wire::RequestType::done, 1);
    std::size_t sent = 0;
    const auto started = std::chrono::steady_clock::now();
    for (; sent < done.size() && !readable_now(client_.get()); ++sent) { // the attack: a byte each 100 ms
        ASSERT_EQ(::write(client_.get(), &done[sent], 1), 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_LT(sent, done.size()) << "the whole frame got through, " << done.size() << " bytes in "
                                 << std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - started).count() << " ms";
    // Closed: EOF, or a reset when the close found a byte it had not read.
    const std::string end = what_follows(client_.get());
    EXPECT_TRUE(end == "EOF" || end == std::strerror(ECONNRESET)) << end;
    client_.reset();
    EXPECT_EQ(wait_for_exit(), std::optional<int>(0));
    EXPECT_EQ(unread_requests(), "");
}

// ---- agencies -----------------------------------------------------------------------

TEST_F(HandlerTest, AgencyOutOfRangeGetsError3WithoutCoordinator) {
    start(5);
    send(wire::encode_request(wire::RequestType::done, 6));
    EXPECT_EQ(receive(6), error_frame(3));
    send(wire::encode_open_frame(0, kSource));
    EXPECT_EQ(receive(6), error_frame(3));
    send(wire::encode_request(wire::RequestType::winners, 65535));
    EXPECT_EQ(receive(6), error_frame(3));
    EXPECT_FALSE(readable_now(requests_.get()));
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, ZeroAgenciesRefusesAgencyOne) {
    start(0);
    send(wire::encode_request(wire::RequestType::done, 1));
    EXPECT_EQ(receive(6), error_frame(3));
    send(wire::encode_open_frame(1, kSource));
    EXPECT_EQ(receive(6), error_frame(3));
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, ConnectionStaysBoundToItsFirstAgency) {
    start(5);
    ASSERT_NO_FATAL_FAILURE(open_source(1));
    send(wire::encode_request(wire::RequestType::done, 2));
    EXPECT_EQ(receive(6), error_frame(3));
    Bet of_two = kAna;
    of_two.agency = 2;
    send(wire::encode_bets_frame(2, 0, {of_two}));
    EXPECT_EQ(receive(6), error_frame(3));
    send(wire::encode_open_frame(2, kSource));
    EXPECT_EQ(receive(6), error_frame(3));
    EXPECT_FALSE(readable_now(requests_.get()));
    // The refused OPEN closed the source that was open (CONTRACT.md §5).
    send(wire::encode_bets_frame(1, 0, {kAna}));
    EXPECT_EQ(receive(6), error_frame(1));
    EXPECT_FALSE(readable_now(requests_.get()));
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, RefusedAgencyDoesNotBindTheConnection) {
    start(5);
    send(wire::encode_request(wire::RequestType::done, 9));
    ASSERT_EQ(receive(6), error_frame(3));
    send(wire::encode_request(wire::RequestType::done, 3));
    const SeenRequest request = next_request();
    ASSERT_TRUE(request.complete);
    EXPECT_EQ(request.agency, 3u);
    reply(ack(0));
    EXPECT_EQ(receive(6), ack(0));
    close_client_and_expect_no_more_requests();
}

// ---- the client or the coordinator going away ------------------------------------------

TEST_F(HandlerTest, ClientClosingEndsRun) {
    start();
    client_.reset();
    EXPECT_EQ(wait_for_exit(), std::optional<int>(0));
    EXPECT_EQ(unread_requests(), "");
}

TEST_F(HandlerTest, ClientLeavingMidFrameEndsRunWithoutCoordinatorTraffic) {
    start();
    ASSERT_NO_FATAL_FAILURE(open_source());
    const wire::Bytes frame = wire::encode_bets_frame(1, 0, {kAna, kJuan});
    send(std::string(frame.begin(), frame.begin() + 100));
    ASSERT_EQ(::shutdown(client_.get(), SHUT_WR), 0);
    EXPECT_TRUE(at_eof(client_.get()));
    EXPECT_EQ(wait_for_exit(), std::optional<int>(0));
    EXPECT_EQ(unread_requests(), "");
}

TEST_F(HandlerTest, CoordinatorGoneWhileWaitingForClientEndsRun) {
    start();
    replies_.reset(); // the coordinator closes its end: "stop now"
    EXPECT_EQ(wait_for_exit(), std::optional<int>(0));
    EXPECT_TRUE(at_eof(client_.get()));
    EXPECT_EQ(unread_requests(), "");
}

TEST_F(HandlerTest, CoordinatorGoneWithRequestInFlightSendsError6) {
    start();
    send(wire::encode_request(wire::RequestType::done, 1));
    ASSERT_TRUE(next_request().complete); // the request is with the coordinator
    replies_.reset();                     // which goes away without answering
    EXPECT_EQ(receive(6), error_frame(6));
    EXPECT_TRUE(at_eof(client_.get()));
    client_.reset(); // ends the handler's lingering close
    EXPECT_EQ(wait_for_exit(), std::optional<int>(0));
}

TEST_F(HandlerTest, CoordinatorGoneDuringBetsSendsError6) {
    start();
    ASSERT_NO_FATAL_FAILURE(open_source());
    send(wire::encode_bets_frame(1, 0, {kAna}));
    ASSERT_TRUE(next_request().complete);
    replies_.reset();
    EXPECT_EQ(receive(6), error_frame(6));
    EXPECT_TRUE(at_eof(client_.get()));
    client_.reset(); // ends the handler's lingering close
    EXPECT_EQ(wait_for_exit(), std::optional<int>(0));
}

} // namespace
