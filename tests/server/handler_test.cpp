// The connection handler run in-process on a thread: the test is the client
// (one end of a socketpair) and plays the coordinator (the other ends of the
// handler's two pipes).
#include "server/handler.hpp"

#include "common/bet_store.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using test_support::bytes;

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

// True when `fd` reports end of file (not a timeout, not data).
bool at_eof(int fd) {
    pollfd ready{fd, POLLIN, 0};
    if (::poll(&ready, 1, kWaitMs) <= 0) return false;
    char byte;
    return ::read(fd, &byte, 1) == 0;
}

bool readable_now(int fd) {
    pollfd ready{fd, POLLIN, 0};
    return ::poll(&ready, 1, 0) > 0;
}

std::uint32_t be32(const std::string& b, std::size_t at) {
    return std::uint32_t(std::uint8_t(b[at])) << 24 | std::uint32_t(std::uint8_t(b[at + 1])) << 16 |
           std::uint32_t(std::uint8_t(b[at + 2])) << 8 | std::uint8_t(b[at + 3]);
}
std::uint16_t be16(const std::string& b, std::size_t at) {
    return static_cast<std::uint16_t>(std::uint8_t(b[at]) << 8 | std::uint8_t(b[at + 1]));
}

// One handler -> coordinator message, decoded by hand from its bytes.
struct SeenRequest {
    bool complete = false;
    std::uint16_t type = 0;
    std::uint32_t agency = 0;
    std::uint32_t batch = 0;
    std::uint16_t count = 0;
    std::string lines;
};

// Reply bytes the coordinator writes: outcome byte, then the wire reply.
std::string coordinator_reply(ipc::Outcome outcome, const std::string& wire_reply) {
    return std::string(1, static_cast<char>(outcome)) + wire_reply;
}

const std::string kAck2 = bytes({0, 1, 0, 0, 0, 2});
const std::string kAck0 = bytes({0, 1, 0, 0, 0, 0});
std::string error_frame(int code) { return bytes({0, 2, 0, 0, 0, code}); }

const Bet kAna{1, "Ana", "Gómez", "00000042", "1990-01-31", 7574};
const Bet kJuan{1, "Juan", "Pérez, Jr", "7", "2000-02-29", 0};
// kAna and kJuan as store lines, written by hand (QUOTE_MINIMAL).
const std::string kAnaJuanLines = "1,Ana,Gómez,00000042,1990-01-31,7574\n1,Juan,\"Pérez, Jr\",7,2000-02-29,0\n";

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

    void start(std::uint32_t agencies = 5) {
        int pair[2], requests[2], replies[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
        ASSERT_EQ(::pipe(requests), 0);
        ASSERT_EQ(::pipe(replies), 0);
        client_.reset(pair[0]);
        requests_.reset(requests[0]);
        replies_.reset(replies[1]);
        HandlerSetup setup{Fd(pair[1]), "test:1", Fd(requests[1]), Fd(replies[0]), agencies, 10000};
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
        const std::string head = read_bytes(requests_.get(), 16);
        if (head.size() != 16) return request;
        request.type = be16(head, 0);
        request.agency = be32(head, 2);
        request.batch = be32(head, 6);
        request.count = be16(head, 10);
        const std::uint32_t length = be32(head, 12);
        request.lines = read_bytes(requests_.get(), length);
        request.complete = request.lines.size() == length;
        return request;
    }
    void reply(ipc::Outcome outcome, const std::string& wire_reply) {
        ASSERT_EQ(write_all(replies_.get(), coordinator_reply(outcome, wire_reply)), IoStatus::ok);
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

    Fd client_;
    Fd requests_; // what the handler asks the coordinator
    Fd replies_;  // what the coordinator answers
    std::thread thread_;
    std::future<int> result_;
};

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

TEST_F(HandlerTest, MalformedHeaderGetsError1AndConnectionCloses) {
    start();
    send(bytes({0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0})); // type 9
    EXPECT_EQ(receive(6), error_frame(1));
    EXPECT_TRUE(at_eof(client_.get()));
    EXPECT_EQ(wait_for_exit(), std::optional<int>(0));
    EXPECT_EQ(unread_requests(), "");
}

TEST_F(HandlerTest, BetsWithTooManyBetsGetsError1AndConnectionCloses) {
    start();
    send(bytes({0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 57})); // 57 bets would exceed 8 KiB
    EXPECT_EQ(receive(6), error_frame(1));
    EXPECT_TRUE(at_eof(client_.get()));
    EXPECT_EQ(wait_for_exit(), std::optional<int>(0));
    EXPECT_EQ(unread_requests(), "");
}

TEST_F(HandlerTest, InvalidBetGetsError2AndConnectionStaysOpen) {
    start();
    Bet bad = kJuan;
    bad.birthdate = "2001-02-30";
    send(wire::encode_bets_frame(1, 1, {kAna, bad}));
    EXPECT_EQ(receive(6), error_frame(2));
    EXPECT_FALSE(readable_now(requests_.get()));
    // Still open: an ECHO goes through.
    const wire::Bytes echo = wire::encode_echo_frame("still here");
    send(echo);
    EXPECT_EQ(receive(echo.size()), text(echo));
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, BetNumberAbove9999GetsError2) {
    start();
    Bet bad = kAna;
    bad.number = 10000;
    send(wire::encode_bets_frame(1, 1, {bad}));
    EXPECT_EQ(receive(6), error_frame(2));
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, BetsReachCoordinatorAsStoreLinesAndAckIsRelayed) {
    start();
    send(wire::encode_bets_frame(1, 7, {kAna, kJuan}));
    const SeenRequest request = next_request();
    ASSERT_TRUE(request.complete);
    EXPECT_EQ(request.type, 1);
    EXPECT_EQ(request.agency, 1u);
    EXPECT_EQ(request.batch, 7u);
    EXPECT_EQ(request.count, 2);
    EXPECT_EQ(request.lines, kAnaJuanLines);
    std::string rendered;
    append_store_line(rendered, kAna);
    append_store_line(rendered, kJuan);
    EXPECT_EQ(request.lines, rendered);

    EXPECT_FALSE(readable_now(client_.get())); // no ACK before the coordinator's
    reply(ipc::Outcome::stored, kAck2);
    EXPECT_EQ(receive(6), kAck2);
    EXPECT_FALSE(readable_now(client_.get()));
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, CoordinatorErrorIsRelayedAndConnectionStaysOpen) {
    start();
    send(wire::encode_bets_frame(1, 3, {kAna}));
    ASSERT_TRUE(next_request().complete);
    reply(ipc::Outcome::answered, error_frame(4));
    EXPECT_EQ(receive(6), error_frame(4));
    // The same connection can go on.
    send(wire::encode_bets_frame(1, 2, {kAna}));
    const SeenRequest retry = next_request();
    ASSERT_TRUE(retry.complete);
    EXPECT_EQ(retry.batch, 2u);
    reply(ipc::Outcome::stored, bytes({0, 1, 0, 0, 0, 1}));
    EXPECT_EQ(receive(6), bytes({0, 1, 0, 0, 0, 1}));
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, DoneIsForwardedWithoutLinesAndAckRelayed) {
    start();
    send(wire::encode_request(wire::RequestType::done, 4));
    const SeenRequest request = next_request();
    ASSERT_TRUE(request.complete);
    EXPECT_EQ(request.type, 2);
    EXPECT_EQ(request.agency, 4u);
    EXPECT_EQ(request.batch, 0u);
    EXPECT_EQ(request.count, 0);
    EXPECT_EQ(request.lines, "");
    reply(ipc::Outcome::answered, kAck0);
    EXPECT_EQ(receive(6), kAck0);
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, WinnersReplyIsRelayedWithItsDocuments) {
    start();
    send(wire::encode_request(wire::RequestType::winners, 2));
    const SeenRequest request = next_request();
    ASSERT_TRUE(request.complete);
    EXPECT_EQ(request.type, 3);
    EXPECT_EQ(request.agency, 2u);
    const std::string winners = bytes({0, 3, 0, 0, 0, 2}) + "00000042" + "7       ";
    reply(ipc::Outcome::answered, winners);
    EXPECT_EQ(receive(winners.size()), winners);
    EXPECT_FALSE(readable_now(client_.get()));
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, AgencyOutOfRangeGetsError3WithoutCoordinator) {
    start(5);
    send(wire::encode_request(wire::RequestType::done, 6));
    EXPECT_EQ(receive(6), error_frame(3));
    send(wire::encode_bets_frame(0, 1, {kAna}));
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
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, ConnectionStaysBoundToItsFirstAgency) {
    start(5);
    send(wire::encode_request(wire::RequestType::done, 1));
    ASSERT_TRUE(next_request().complete);
    reply(ipc::Outcome::answered, kAck0);
    ASSERT_EQ(receive(6), kAck0);

    send(wire::encode_request(wire::RequestType::done, 2));
    EXPECT_EQ(receive(6), error_frame(3));
    Bet of_two = kAna;
    of_two.agency = 2;
    send(wire::encode_bets_frame(2, 1, {of_two}));
    EXPECT_EQ(receive(6), error_frame(3));
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
    reply(ipc::Outcome::answered, kAck0);
    EXPECT_EQ(receive(6), kAck0);
    close_client_and_expect_no_more_requests();
}

TEST_F(HandlerTest, ClientClosingEndsRun) {
    start();
    client_.reset();
    EXPECT_EQ(wait_for_exit(), std::optional<int>(0));
    EXPECT_EQ(unread_requests(), "");
}

TEST_F(HandlerTest, ClientLeavingMidFrameEndsRunWithoutCoordinatorTraffic) {
    start();
    const wire::Bytes frame = wire::encode_bets_frame(1, 1, {kAna, kJuan});
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
    EXPECT_EQ(wait_for_exit(), std::optional<int>(0));
}

TEST_F(HandlerTest, CoordinatorGoneDuringBetsSendsError6) {
    start();
    send(wire::encode_bets_frame(1, 1, {kAna}));
    ASSERT_TRUE(next_request().complete);
    replies_.reset();
    EXPECT_EQ(receive(6), error_frame(6));
    EXPECT_TRUE(at_eof(client_.get()));
    EXPECT_EQ(wait_for_exit(), std::optional<int>(0));
}

} // namespace
