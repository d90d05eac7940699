// Handler <-> coordinator pipe messages: request framing (send_request /
// take_request: header, source id, body of name or hashes + lines) and reply
// framing (encode_reply / receive_reply: source id, stored_now, wire reply).
#include "server/ipc.hpp"

#include "common/fd.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using test_support::bytes;

struct TestPipe {
    TestPipe() {
        int ends[2];
        if (::pipe(ends) != 0) std::abort();
        read_end.reset(ends[0]);
        write_end.reset(ends[1]);
    }
    Fd read_end;
    Fd write_end;
};

// Every byte currently buffered in the pipe (the writer must have closed it).
std::string drain(int fd) {
    std::string bytes;
    char chunk[4096];
    for (;;) {
        pollfd ready{fd, POLLIN, 0};
        if (::poll(&ready, 1, 5000) <= 0) break;
        const ssize_t got = ::read(fd, chunk, sizeof chunk);
        if (got <= 0) break;
        bytes.append(chunk, static_cast<std::size_t>(got));
    }
    return bytes;
}

// What send_request wrote for `request`, as the coordinator's inbox sees it.
std::string sent(const ipc::Request& request) {
    TestPipe pipe;
    EXPECT_EQ(ipc::send_request(pipe.write_end.get(), request), IoStatus::ok);
    pipe.write_end.reset();
    return drain(pipe.read_end.get());
}

std::string be16(std::uint16_t v) { return bytes({v >> 8, v & 0xFF}); }
std::string be32(std::uint32_t v) {
    return bytes({int(v >> 24 & 0xFF), int(v >> 16 & 0xFF), int(v >> 8 & 0xFF), int(v & 0xFF)});
}
std::string be64(std::uint64_t v) { return be32(static_cast<std::uint32_t>(v >> 32)) + be32(static_cast<std::uint32_t>(v)); }

// A request message built by hand: the 12-byte wire header, u32 source id, u32 body length, body.
std::string message(std::uint16_t type, std::uint32_t agency, std::uint32_t first, std::uint16_t count,
                    std::uint32_t source, const std::string& body, std::uint32_t length) {
    return be16(type) + be32(agency) + be32(first) + be16(count) + be32(source) + be32(length) + body;
}
std::string message(std::uint16_t type, std::uint32_t agency, std::uint32_t first, std::uint16_t count,
                    const std::string& body) {
    return message(type, agency, first, count, 0, body, static_cast<std::uint32_t>(body.size()));
}

const std::string kLines = "3,Ana,Gómez,00000042,1990-01-31,7574\n3,Luis,Paz,1,1985-12-01,0\n";
const std::vector<std::uint64_t> kHashes{0x0102030405060708ull, 0xFFFFFFFFFFFFFFFFull};

ipc::Request bets_request() {
    ipc::Request request;
    request.header = {wire::RequestType::bets, 3, 258, 2};
    request.source = 0x01020304;
    request.hashes = kHashes;
    request.lines = kLines;
    return request;
}

ipc::Request open_request(const std::string& name) {
    ipc::Request request;
    request.header = {wire::RequestType::open, 3, 0, static_cast<std::uint16_t>(name.size())};
    request.name = name;
    return request;
}

// A request whose every field holds something, to see take_request overwrite it.
ipc::Request stale_request() {
    ipc::Request request = bets_request();
    request.name = "left-over";
    return request;
}

// ---- requests: the bytes -------------------------------------------------------------

TEST(IpcRequestTest, BetsAreHeaderSourceLengthHashesThenLinesBigEndian) {
    const std::string expected = bytes({0, 1, 0, 0, 0, 3, 0, 0, 1, 2, 0, 2}) + be32(0x01020304) +
                                 be32(static_cast<std::uint32_t>(16 + kLines.size())) +
                                 bytes({1, 2, 3, 4, 5, 6, 7, 8}) + std::string(8, '\xFF') + kLines;
    EXPECT_EQ(sent(bets_request()), expected);
}

TEST(IpcRequestTest, OpenIsHeaderZeroSourceLengthThenTheName) {
    EXPECT_EQ(sent(open_request("agency-3.csv")), message(5, 3, 0, 12, "agency-3.csv"));
}

TEST(IpcRequestTest, DoneAndWinnersHaveNoBody) {
    ipc::Request request;
    request.header = {wire::RequestType::winners, 65535, 0, 0};
    EXPECT_EQ(sent(request), message(3, 65535, 0, 0, ""));
    EXPECT_EQ(sent(request).size(), ipc::kRequestHeaderSize);
}

// ---- requests: round trips -------------------------------------------------------------

TEST(IpcRequestTest, BetsRoundTripWithSourceHashesAndLines) {
    std::string inbox = sent(bets_request());
    ipc::Request request = stale_request();
    ASSERT_EQ(ipc::take_request(inbox, request), ipc::Parse::ok);
    EXPECT_EQ(request.header, bets_request().header);
    EXPECT_EQ(request.source, 0x01020304u);
    EXPECT_EQ(request.hashes, kHashes);
    EXPECT_EQ(request.lines, kLines);
    EXPECT_EQ(request.name, "");
    EXPECT_TRUE(inbox.empty());
}

TEST(IpcRequestTest, OpenRoundTripWithTheName) {
    const std::string name(wire::kMaxSourceName, 'n');
    std::string inbox = sent(open_request(name));
    ipc::Request request = stale_request();
    ASSERT_EQ(ipc::take_request(inbox, request), ipc::Parse::ok);
    EXPECT_EQ(request.header, open_request(name).header);
    EXPECT_EQ(request.name, name);
    EXPECT_TRUE(request.hashes.empty());
    EXPECT_EQ(request.lines, "");
    EXPECT_TRUE(inbox.empty());
}

TEST(IpcRequestTest, DoneAndWinnersRoundTripWithNothingLeftOver) {
    for (const auto type : {wire::RequestType::done, wire::RequestType::winners}) {
        SCOPED_TRACE(wire::to_string(type));
        ipc::Request sent_request;
        sent_request.header = {type, 7, 0, 0};
        std::string inbox = sent(sent_request);
        ipc::Request request = stale_request();
        ASSERT_EQ(ipc::take_request(inbox, request), ipc::Parse::ok);
        EXPECT_EQ(request.header, sent_request.header);
        EXPECT_EQ(request.name, "");
        EXPECT_TRUE(request.hashes.empty());
        EXPECT_EQ(request.lines, "");
        EXPECT_TRUE(inbox.empty());
    }
}

TEST(IpcRequestTest, EveryProperPrefixIsIncompleteAndUntouched) {
    const std::string whole = sent(bets_request());
    for (std::size_t size = 0; size < whole.size(); ++size) {
        SCOPED_TRACE(size);
        std::string inbox = whole.substr(0, size);
        ipc::Request request;
        EXPECT_EQ(ipc::take_request(inbox, request), ipc::Parse::incomplete);
        EXPECT_EQ(inbox, whole.substr(0, size));
    }
    std::string inbox = whole;
    ipc::Request request;
    ASSERT_EQ(ipc::take_request(inbox, request), ipc::Parse::ok);
    EXPECT_EQ(request.hashes, kHashes);
}

TEST(IpcRequestTest, MessagesBackToBackAreTakenInOrder) {
    const std::string open = sent(open_request("a.csv")), bets = sent(bets_request());
    const std::string done = message(2, 3, 0, 0, "");
    std::string inbox = open + bets + done + done.substr(0, 5); // and a piece of a fourth
    ipc::Request request;
    ASSERT_EQ(ipc::take_request(inbox, request), ipc::Parse::ok);
    EXPECT_EQ(request.name, "a.csv");
    ASSERT_EQ(ipc::take_request(inbox, request), ipc::Parse::ok);
    EXPECT_EQ(request.header.type, wire::RequestType::bets);
    EXPECT_EQ(request.lines, kLines);
    ASSERT_EQ(ipc::take_request(inbox, request), ipc::Parse::ok);
    EXPECT_EQ(request.header, (wire::RequestHeader{wire::RequestType::done, 3, 0, 0}));
    EXPECT_EQ(request.lines, "");
    EXPECT_EQ(ipc::take_request(inbox, request), ipc::Parse::incomplete);
    EXPECT_EQ(inbox, done.substr(0, 5));
}

// ---- requests: limits and invalid messages ------------------------------------------------

TEST(IpcRequestTest, BodyAtTheLimitIsAccepted) {
    const std::string hashes(56 * 8, '\x01');
    const std::string lines(ipc::kMaxBody - hashes.size(), 'x');
    std::string inbox = message(1, 1, 0, 56, hashes + lines);
    ipc::Request request;
    ASSERT_EQ(ipc::take_request(inbox, request), ipc::Parse::ok);
    EXPECT_EQ(request.hashes.size(), 56u);
    EXPECT_EQ(request.lines.size(), lines.size());
}

TEST(IpcRequestTest, BodyOverTheLimitIsInvalidBeforeItArrives) {
    ipc::Request request;
    std::string over = message(1, 1, 0, 56, 0, "", static_cast<std::uint32_t>(ipc::kMaxBody + 1));
    EXPECT_EQ(ipc::take_request(over, request), ipc::Parse::invalid);
    std::string huge = message(1, 1, 0, 56, 0, "", 0xFFFFFFFFu);
    EXPECT_EQ(ipc::take_request(huge, request), ipc::Parse::invalid);
    std::string long_open = message(5, 1, 0, 5, 0, "", static_cast<std::uint32_t>(ipc::kMaxBody + 1));
    EXPECT_EQ(ipc::take_request(long_open, request), ipc::Parse::invalid);
}

TEST(IpcRequestTest, BetsBodyShorterThanItsHashesIsInvalid) {
    ipc::Request request;
    std::string short_body = message(1, 1, 0, 2, 0, std::string(15, '\0'), 15); // 2 hashes need 16 bytes
    EXPECT_EQ(ipc::take_request(short_body, request), ipc::Parse::invalid);
    std::string empty_body = message(1, 1, 0, 1, 0, "", 0);
    EXPECT_EQ(ipc::take_request(empty_body, request), ipc::Parse::invalid);
    // Hashes and no lines at all is still a message (the coordinator judges it).
    std::string hashes_only = message(1, 1, 0, 2, 0, std::string(16, '\0'), 16);
    EXPECT_EQ(ipc::take_request(hashes_only, request), ipc::Parse::ok);
}

TEST(IpcRequestTest, BodyOnARequestThatHasNoneIsInvalid) {
    for (const std::uint16_t type : {2, 3, 4}) { // DONE, WINNERS, ECHO (which handlers answer themselves)
        SCOPED_TRACE(type);
        std::string inbox = message(type, 1, 0, 0, "x");
        ipc::Request request;
        EXPECT_EQ(ipc::take_request(inbox, request), ipc::Parse::invalid);
    }
}

TEST(IpcRequestTest, OpenBodyOfAnotherLengthThanItsCountIsInvalid) {
    ipc::Request request;
    std::string longer = message(5, 1, 0, 3, "agency-1.csv"); // count says 3 bytes of name
    EXPECT_EQ(ipc::take_request(longer, request), ipc::Parse::invalid);
    std::string exact = message(5, 1, 0, 12, "agency-1.csv");
    ASSERT_EQ(ipc::take_request(exact, request), ipc::Parse::ok);
    EXPECT_EQ(request.name, "agency-1.csv");
}

TEST(IpcRequestTest, BadHeaderIsInvalid) {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"unknown type", message(9, 1, 0, 1, "x")},
        {"type 0", message(0, 1, 0, 0, "")},
        {"BETS without bets", message(1, 1, 0, 0, "")},
        {"57 bets", message(1, 1, 0, 57, std::string(57 * 8, '\0'))},
        {"DONE with first", message(2, 1, 3, 0, "")},
        {"WINNERS with count", message(3, 1, 0, 1, "x")},
        {"OPEN without name", message(5, 1, 0, 0, "")},
        {"OPEN with first", message(5, 1, 1, 1, "a")},
        {"OPEN name over 64", message(5, 1, 0, 65, std::string(65, 'n'))},
    };
    for (const auto& [what, bad] : cases) {
        SCOPED_TRACE(what);
        std::string inbox = bad;
        ipc::Request request;
        EXPECT_EQ(ipc::take_request(inbox, request), ipc::Parse::invalid);
    }
}

// ---- replies --------------------------------------------------------------------

// What receive_reply makes of the bytes of `replies` written into a pipe one after another.
std::vector<ipc::Reply> round_trip(const std::vector<ipc::Reply>& replies) {
    TestPipe pipe;
    for (const ipc::Reply& reply : replies)
        EXPECT_EQ(write_all(pipe.write_end.get(), ipc::encode_reply(reply)), IoStatus::ok);
    std::vector<ipc::Reply> got(replies.size());
    for (ipc::Reply& reply : got) EXPECT_EQ(ipc::receive_reply(pipe.read_end.get(), reply), IoStatus::ok);
    return got;
}

std::string text(const wire::Bytes& frame) { return std::string(frame.begin(), frame.end()); }

TEST(IpcReplyTest, EncodeReplyIsSourceStoredNowThenTheWireReply) {
    const ipc::Reply reply{0x01020304, 0x0A0B, wire::encode_reply(wire::ReplyType::ack, 56)};
    EXPECT_EQ(ipc::encode_reply(reply), bytes({1, 2, 3, 4, 0x0A, 0x0B, 0, 1, 0, 0, 0, 56}));
}

TEST(IpcReplyTest, AckRoundTripWithStoredNow) {
    const auto got = round_trip({{0, 7, wire::encode_reply(wire::ReplyType::ack, 42)}});
    EXPECT_EQ(got[0].source, 0u);
    EXPECT_EQ(got[0].stored_now, 7u);
    EXPECT_EQ(got[0].frame, (wire::Bytes{0, 1, 0, 0, 0, 42}));
}

TEST(IpcReplyTest, ResumeRoundTripWithSourceAndDigestBytes) {
    const wire::Bytes resume = wire::encode_resume_reply(9, 0x8877665544332211ull);
    const ipc::Reply next{0, 0, wire::encode_reply(wire::ReplyType::ack, 0)};
    const auto got = round_trip({{65536 + 5, 0, resume}, next});
    EXPECT_EQ(got[0].source, 65541u);
    EXPECT_EQ(text(got[0].frame), bytes({0, 5, 0, 0, 0, 9}) + be64(0x8877665544332211ull));
    EXPECT_EQ(got[1].frame, next.frame) << "the digest must not be mistaken for the next reply";
}

TEST(IpcReplyTest, ErrorRoundTrip) {
    const auto got = round_trip({{0, 0, wire::encode_error(wire::ErrorCode::fenced)}});
    EXPECT_EQ(got[0].frame, (wire::Bytes{0, 2, 0, 0, 0, 8}));
}

TEST(IpcReplyTest, WinnersRoundTripCarriesEveryDocument) {
    const std::vector<std::string> documents{"00000042", "7", "12345678"};
    const ipc::Reply next{0, 0, wire::encode_reply(wire::ReplyType::ack, 0)};
    const auto got = round_trip({{0, 0, wire::encode_winners_reply(documents)}, next});
    EXPECT_EQ(text(got[0].frame), bytes({0, 3, 0, 0, 0, 3}) + "00000042" + "7       " + "12345678");
    const auto decoded = wire::decode_documents(got[0].frame.data() + wire::kReplyHeaderSize, 3);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(decoded.value(), documents);
    EXPECT_EQ(got[1].frame, next.frame) << "a reply right behind must not be swallowed";
}

TEST(IpcReplyTest, WinnersWithZeroDocumentsRoundTrip) {
    const auto got = round_trip({{0, 0, wire::encode_winners_reply({})}});
    EXPECT_EQ(got[0].frame, (wire::Bytes{0, 3, 0, 0, 0, 0}));
}

TEST(IpcReplyTest, ClosedPipeIsClosed) {
    TestPipe pipe;
    pipe.write_end.reset();
    ipc::Reply got;
    EXPECT_EQ(ipc::receive_reply(pipe.read_end.get(), got), IoStatus::closed);
}

TEST(IpcReplyTest, PipeClosedInsideTheTrailingBytesIsTruncated) {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"documents", bytes({0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 2}) + "00000042" + "123"},
        {"digest", bytes({0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 4}) + "1234567"},
    };
    for (const auto& [what, partial] : cases) {
        SCOPED_TRACE(what);
        TestPipe pipe;
        ASSERT_EQ(write_all(pipe.write_end.get(), partial), IoStatus::ok);
        pipe.write_end.reset();
        ipc::Reply got;
        EXPECT_EQ(ipc::receive_reply(pipe.read_end.get(), got), IoStatus::truncated);
    }
}

TEST(IpcReplyTest, UnknownReplyTypeIsAnError) {
    TestPipe pipe;
    ASSERT_EQ(write_all(pipe.write_end.get(), bytes({0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1})), IoStatus::ok);
    ipc::Reply got;
    EXPECT_EQ(ipc::receive_reply(pipe.read_end.get(), got), IoStatus::error);
}

} // namespace
