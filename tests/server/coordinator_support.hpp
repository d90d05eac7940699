// Requests to the coordinator built from bets as a handler builds them (store
// lines and one hash per bet), its replies made readable, and a guard that
// makes file writes fail: shared by the coordinator and journal tests.
#pragma once

#include "common/bet_store.hpp"
#include "common/protocol.hpp"
#include "server/coordinator.hpp"
#include "server/ipc.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace coordinator_support {

// ---- bets -----------------------------------------------------------------------

// A valid bet of `agency`, told apart from others by its document.
inline Bet bet(std::uint32_t agency, std::uint32_t document, std::uint16_t number = 1234) {
    std::string digits = std::to_string(document % 100000000);
    digits.insert(0, 8 - digits.size(), '0');
    return Bet{agency, "Ana", "Gómez", digits, "1990-01-31", number};
}

// `count` bets of `agency` with the documents from, from + 1, ...; none wins.
inline std::vector<Bet> bets_of(std::uint32_t agency, std::uint32_t from, std::size_t count) {
    std::vector<Bet> bets;
    for (std::size_t i = 0; i < count; ++i) bets.push_back(bet(agency, from + static_cast<std::uint32_t>(i)));
    return bets;
}

// `bets[from, to)`.
inline std::vector<Bet> slice(const std::vector<Bet>& bets, std::size_t from, std::size_t to) {
    return std::vector<Bet>(bets.begin() + static_cast<std::ptrdiff_t>(from), bets.begin() + static_cast<std::ptrdiff_t>(to));
}

inline std::string store_lines(const std::vector<Bet>& bets) {
    std::string lines;
    for (const Bet& one : bets) append_store_line(lines, one);
    return lines;
}

// CONTRACT.md §5's digest, from the records themselves: the sum of their FNV-1a hashes.
inline wire::Digest digest_of(const std::vector<Bet>& bets) {
    wire::Digest digest = 0;
    std::uint8_t record[wire::kBetSize];
    for (const Bet& one : bets) {
        wire::encode_bet(one, record);
        digest += wire::record_hash(record);
    }
    return digest;
}

// ---- requests, as the handlers send them ------------------------------------------

inline ipc::Request open_request(std::uint32_t agency, const std::string& name) {
    ipc::Request request;
    request.header = {wire::RequestType::open, agency, 0, static_cast<std::uint16_t>(name.size())};
    request.name = name;
    return request;
}

inline ipc::Request bets_request(ipc::SourceId source, std::uint32_t agency, std::uint32_t first,
                                 const std::vector<Bet>& bets) {
    ipc::Request request;
    request.header = {wire::RequestType::bets, agency, first, static_cast<std::uint16_t>(bets.size())};
    request.source = source;
    for (const Bet& one : bets) request.hashes.push_back(wire::bet_hash(one));
    request.lines = store_lines(bets);
    return request;
}

inline ipc::Request done_request(std::uint32_t agency) {
    ipc::Request request;
    request.header = {wire::RequestType::done, agency, 0, 0};
    return request;
}

inline ipc::Request winners_request(std::uint32_t agency) {
    ipc::Request request;
    request.header = {wire::RequestType::winners, agency, 0, 0};
    return request;
}

// ---- replies --------------------------------------------------------------------

// "ACK 2", "ERROR 3", "WINNERS 1", "RESUME 4": readable in failure messages.
inline std::string describe(const ipc::Reply& reply) {
    if (reply.frame.size() < wire::kReplyHeaderSize) return "<short reply>";
    const auto header = wire::decode_reply_header(reply.frame.data());
    if (!header.ok()) return "<bad reply>";
    const char* names[] = {"?", "ACK", "ERROR", "WINNERS", "ECHO", "RESUME"};
    return std::string(names[static_cast<unsigned>(header.value().type)]) + " " + std::to_string(header.value().value);
}

// `request` from `connection` in a poll round of its own, as the server
// runs it: handled, committed, and the reply as it would go out (nothing
// when it is parked).
inline std::optional<ipc::Reply> round_trip(Coordinator& coordinator, const ipc::Request& request,
                                            std::uint64_t connection) {
    const auto reply = coordinator.handle(request, connection);
    const bool committed = coordinator.commit();
    if (!reply) return reply;
    return committed ? *reply : Coordinator::voided(*reply);
}

// The coordinator's answer to `request` from `connection`, described; "<parked>" when it waits.
inline std::string answer(Coordinator& coordinator, const ipc::Request& request, std::uint64_t connection) {
    const auto reply = round_trip(coordinator, request, connection);
    return reply ? describe(*reply) : "<parked>";
}

// The digest that follows a RESUME header; fails the test for any other reply.
inline wire::Digest resume_digest(const ipc::Reply& reply) {
    EXPECT_EQ(reply.frame.size(), wire::kReplyHeaderSize + wire::kDigestSize) << describe(reply);
    if (reply.frame.size() != wire::kReplyHeaderSize + wire::kDigestSize) return 0xBADBADBADBADBADBull;
    return wire::get_u64(reply.frame.data() + wire::kReplyHeaderSize);
}

// The documents of a WINNERS reply; fails the test for any other reply.
inline std::vector<std::string> documents_of(const ipc::Reply& reply) {
    const std::string what = describe(reply);
    EXPECT_EQ(what.rfind("WINNERS ", 0), 0u) << what;
    if (what.rfind("WINNERS ", 0) != 0) return {"<" + what + ">"};
    const std::uint32_t count = wire::get_u32(reply.frame.data() + 2);
    EXPECT_EQ(reply.frame.size(), wire::kReplyHeaderSize + count * wire::kDocumentSize);
    if (reply.frame.size() != wire::kReplyHeaderSize + count * wire::kDocumentSize) return {"<bad size>"};
    const auto documents = wire::decode_documents(reply.frame.data() + wire::kReplyHeaderSize, count);
    EXPECT_TRUE(documents.ok());
    return documents.ok() ? documents.value() : std::vector<std::string>{"<bad documents>"};
}

// Reads the store a slice at a time until the draw is over; returns the slices it took.
inline int finish_draw(Coordinator& coordinator) {
    int slices = 0;
    for (; coordinator.draw_running(); ++slices) coordinator.advance_draw();
    return slices;
}

// ---- failing writes ---------------------------------------------------------------

// While it lives, no file of this process may grow past `bytes` (RLIMIT_FSIZE):
// a write that would cross the limit writes up to it, the next one fails with
// EFBIG. SIGXFSZ is ignored meanwhile, so the failure is an errno, not a kill.
class FileSizeLimit {
public:
    explicit FileSizeLimit(std::uint64_t bytes) {
        ::getrlimit(RLIMIT_FSIZE, &saved_limit_);
        saved_handler_ = ::signal(SIGXFSZ, SIG_IGN);
        rlimit limit = saved_limit_;
        limit.rlim_cur = static_cast<rlim_t>(bytes);
        if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ADD_FAILURE() << "setrlimit(RLIMIT_FSIZE) failed";
    }
    ~FileSizeLimit() {
        ::setrlimit(RLIMIT_FSIZE, &saved_limit_);
        ::signal(SIGXFSZ, saved_handler_);
    }
    FileSizeLimit(const FileSizeLimit&) = delete;
    FileSizeLimit& operator=(const FileSizeLimit&) = delete;

private:
    rlimit saved_limit_{};
    void (*saved_handler_)(int) = SIG_DFL;
};

} // namespace coordinator_support
