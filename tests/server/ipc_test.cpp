// Handler <-> coordinator pipe messages: request framing (send_request /
// take_request) and reply framing (encode_reply / receive_reply).
#include "server/ipc.hpp"

#include "common/fd.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <unistd.h>

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

// A request message built by hand: the 12-byte wire header, u32 length, lines.
std::string message(std::uint16_t type, std::uint32_t agency, std::uint32_t batch, std::uint16_t count,
                    const std::string& lines, std::uint32_t length) {
    auto be32 = [](std::uint32_t v) {
        return bytes({int(v >> 24 & 0xFF), int(v >> 16 & 0xFF), int(v >> 8 & 0xFF), int(v & 0xFF)});
    };
    return bytes({type >> 8, type & 0xFF}) + be32(agency) + be32(batch) + bytes({count >> 8, count & 0xFF}) +
           be32(length) + lines;
}
std::string message(std::uint16_t type, std::uint32_t agency, std::uint32_t batch, std::uint16_t count,
                    const std::string& lines) {
    return message(type, agency, batch, count, lines, static_cast<std::uint32_t>(lines.size()));
}

const std::string kLines = "3,Ana,Gómez,00000042,1990-01-31,7574\n3,Luis,Paz,1,1985-12-01,0\n";

TEST(IpcRequestTest, SendRequestWritesHeaderLengthAndLinesBigEndian) {
    TestPipe pipe;
    const wire::RequestHeader header{wire::RequestType::bets, 3, 258, 2};
    ASSERT_EQ(ipc::send_request(pipe.write_end.get(), header, kLines), IoStatus::ok);
    pipe.write_end.reset();
    const std::string expected = bytes({0, 1, 0, 0, 0, 3, 0, 0, 1, 2, 0, 2}) +
                                 bytes({0, 0, 0, static_cast<int>(kLines.size())}) + kLines;
    EXPECT_EQ(drain(pipe.read_end.get()), expected);
}

TEST(IpcRequestTest, SendThenTakeYieldsSameHeaderAndLines) {
    TestPipe pipe;
    const wire::RequestHeader header{wire::RequestType::bets, 3, 7, 2};
    ASSERT_EQ(ipc::send_request(pipe.write_end.get(), header, kLines), IoStatus::ok);
    pipe.write_end.reset();
    std::string inbox = drain(pipe.read_end.get());
    ipc::Request request;
    ASSERT_EQ(ipc::take_request(inbox, request), ipc::Parse::ok);
    EXPECT_EQ(request.header, header);
    EXPECT_EQ(request.lines, kLines);
    EXPECT_TRUE(inbox.empty());
}

TEST(IpcRequestTest, SendThenTakeDoneWithoutLines) {
    TestPipe pipe;
    const wire::RequestHeader header{wire::RequestType::done, 65535, 0, 0};
    ASSERT_EQ(ipc::send_request(pipe.write_end.get(), header, ""), IoStatus::ok);
    pipe.write_end.reset();
    std::string inbox = drain(pipe.read_end.get());
    EXPECT_EQ(inbox.size(), 16u);
    ipc::Request request;
    request.lines = "left over from an earlier request";
    ASSERT_EQ(ipc::take_request(inbox, request), ipc::Parse::ok);
    EXPECT_EQ(request.header, header);
    EXPECT_EQ(request.lines, "");
    EXPECT_TRUE(inbox.empty());
}

TEST(IpcRequestTest, EveryProperPrefixIsIncompleteAndUntouched) {
    const std::string whole = message(1, 3, 7, 2, kLines);
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
    EXPECT_EQ(request.header, (wire::RequestHeader{wire::RequestType::bets, 3, 7, 2}));
    EXPECT_EQ(request.lines, kLines);
    EXPECT_TRUE(inbox.empty());
}

TEST(IpcRequestTest, TwoMessagesBackToBackAreTakenInOrder) {
    const std::string first = message(1, 4, 1, 2, kLines);
    const std::string second = message(2, 4, 0, 0, "");
    std::string inbox = first + second + second.substr(0, 5); // and a piece of a third
    ipc::Request request;
    ASSERT_EQ(ipc::take_request(inbox, request), ipc::Parse::ok);
    EXPECT_EQ(request.header, (wire::RequestHeader{wire::RequestType::bets, 4, 1, 2}));
    EXPECT_EQ(request.lines, kLines);
    ASSERT_EQ(ipc::take_request(inbox, request), ipc::Parse::ok);
    EXPECT_EQ(request.header, (wire::RequestHeader{wire::RequestType::done, 4, 0, 0}));
    EXPECT_EQ(request.lines, "");
    EXPECT_EQ(ipc::take_request(inbox, request), ipc::Parse::incomplete);
    EXPECT_EQ(inbox, second.substr(0, 5));
}

TEST(IpcRequestTest, LengthAtTheLimitIsAccepted) {
    const std::string lines(ipc::kMaxLines, 'x');
    std::string inbox = message(1, 1, 1, 56, lines);
    ipc::Request request;
    ASSERT_EQ(ipc::take_request(inbox, request), ipc::Parse::ok);
    EXPECT_EQ(request.lines.size(), ipc::kMaxLines);
}

TEST(IpcRequestTest, OverLongLengthIsInvalidBeforeTheLinesArrive) {
    std::string inbox = message(1, 1, 1, 56, "", static_cast<std::uint32_t>(ipc::kMaxLines + 1));
    ipc::Request request;
    EXPECT_EQ(ipc::take_request(inbox, request), ipc::Parse::invalid);
    std::string huge = message(1, 1, 1, 56, "", 0xFFFFFFFFu);
    EXPECT_EQ(ipc::take_request(huge, request), ipc::Parse::invalid);
}

TEST(IpcRequestTest, BadHeaderIsInvalid) {
    ipc::Request request;
    std::string unknown_type = message(9, 1, 1, 1, "x");
    EXPECT_EQ(ipc::take_request(unknown_type, request), ipc::Parse::invalid);
    std::string zero_type = message(0, 1, 0, 0, "");
    EXPECT_EQ(ipc::take_request(zero_type, request), ipc::Parse::invalid);
    std::string bets_without_bets = message(1, 1, 1, 0, "");
    EXPECT_EQ(ipc::take_request(bets_without_bets, request), ipc::Parse::invalid);
    std::string too_many_bets = message(1, 1, 1, 57, "x");
    EXPECT_EQ(ipc::take_request(too_many_bets, request), ipc::Parse::invalid);
    std::string done_with_batch = message(2, 1, 3, 0, "");
    EXPECT_EQ(ipc::take_request(done_with_batch, request), ipc::Parse::invalid);
}

TEST(IpcReplyTest, EncodeReplyIsOutcomeByteThenWireReply) {
    const ipc::Reply reply{ipc::Outcome::duplicate, wire::encode_reply(wire::ReplyType::ack, 56)};
    EXPECT_EQ(ipc::encode_reply(reply), bytes({2, 0, 1, 0, 0, 0, 56}));
}

TEST(IpcReplyTest, AckRoundTrip) {
    TestPipe pipe;
    const ipc::Reply sent{ipc::Outcome::stored, wire::encode_reply(wire::ReplyType::ack, 42)};
    ASSERT_EQ(write_all(pipe.write_end.get(), ipc::encode_reply(sent)), IoStatus::ok);
    ipc::Reply got;
    ASSERT_EQ(ipc::receive_reply(pipe.read_end.get(), got), IoStatus::ok);
    EXPECT_EQ(got.outcome, ipc::Outcome::stored);
    EXPECT_EQ(got.frame, (wire::Bytes{0, 1, 0, 0, 0, 42}));
}

TEST(IpcReplyTest, ErrorRoundTrip) {
    TestPipe pipe;
    const ipc::Reply sent{ipc::Outcome::answered, wire::encode_error(wire::ErrorCode::agency_done)};
    ASSERT_EQ(write_all(pipe.write_end.get(), ipc::encode_reply(sent)), IoStatus::ok);
    ipc::Reply got;
    ASSERT_EQ(ipc::receive_reply(pipe.read_end.get(), got), IoStatus::ok);
    EXPECT_EQ(got.outcome, ipc::Outcome::answered);
    EXPECT_EQ(got.frame, (wire::Bytes{0, 2, 0, 0, 0, 5}));
}

TEST(IpcReplyTest, WinnersRoundTripCarriesEveryDocument) {
    TestPipe pipe;
    const std::vector<std::string> documents{"00000042", "7", "12345678"};
    const ipc::Reply sent{ipc::Outcome::answered, wire::encode_winners_reply(documents)};
    ASSERT_EQ(write_all(pipe.write_end.get(), ipc::encode_reply(sent)), IoStatus::ok);
    // A second reply right behind it must not be swallowed by the first.
    const ipc::Reply next{ipc::Outcome::answered, wire::encode_reply(wire::ReplyType::ack, 0)};
    ASSERT_EQ(write_all(pipe.write_end.get(), ipc::encode_reply(next)), IoStatus::ok);

    ipc::Reply got;
    ASSERT_EQ(ipc::receive_reply(pipe.read_end.get(), got), IoStatus::ok);
    EXPECT_EQ(got.outcome, ipc::Outcome::answered);
    const std::string expected = bytes({0, 3, 0, 0, 0, 3}) + "00000042" + "7       " + "12345678";
    EXPECT_EQ(std::string(got.frame.begin(), got.frame.end()), expected);
    const auto decoded = wire::decode_documents(got.frame.data() + wire::kReplyHeaderSize, 3);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(decoded.value(), documents);

    ipc::Reply second;
    ASSERT_EQ(ipc::receive_reply(pipe.read_end.get(), second), IoStatus::ok);
    EXPECT_EQ(second.frame, (wire::Bytes{0, 1, 0, 0, 0, 0}));
}

TEST(IpcReplyTest, WinnersWithZeroDocumentsRoundTrip) {
    TestPipe pipe;
    const ipc::Reply sent{ipc::Outcome::answered, wire::encode_winners_reply({})};
    ASSERT_EQ(write_all(pipe.write_end.get(), ipc::encode_reply(sent)), IoStatus::ok);
    ipc::Reply got;
    ASSERT_EQ(ipc::receive_reply(pipe.read_end.get(), got), IoStatus::ok);
    EXPECT_EQ(got.frame, (wire::Bytes{0, 3, 0, 0, 0, 0}));
}

TEST(IpcReplyTest, ClosedPipeIsClosed) {
    TestPipe pipe;
    pipe.write_end.reset();
    ipc::Reply got;
    EXPECT_EQ(ipc::receive_reply(pipe.read_end.get(), got), IoStatus::closed);
}

TEST(IpcReplyTest, PipeClosedInsideDocumentsIsTruncated) {
    TestPipe pipe;
    const std::string partial = bytes({0, 0, 3, 0, 0, 0, 2}) + "00000042" + "123";
    ASSERT_EQ(write_all(pipe.write_end.get(), partial), IoStatus::ok);
    pipe.write_end.reset();
    ipc::Reply got;
    EXPECT_EQ(ipc::receive_reply(pipe.read_end.get(), got), IoStatus::truncated);
}

TEST(IpcReplyTest, UnknownReplyTypeIsAnError) {
    TestPipe pipe;
    ASSERT_EQ(write_all(pipe.write_end.get(), bytes({0, 0, 9, 0, 0, 0, 1})), IoStatus::ok);
    ipc::Reply got;
    EXPECT_EQ(ipc::receive_reply(pipe.read_end.get(), got), IoStatus::error);
}

} // namespace
