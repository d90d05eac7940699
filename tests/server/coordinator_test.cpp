// Coordinator rules (SPEC §5 semantics, §6): batch sequencing, DONE, the draw
// and the per-agency WINNERS reply, over a real BetStore in a temp directory.
#include "server/coordinator.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace {

using test_support::bets;
using test_support::describe;
using test_support::done;
using test_support::slurp;
using test_support::spit;
using test_support::TempDir;
using test_support::winners;

wire::ReplyHeader header_of(const ipc::Reply& reply) {
    EXPECT_GE(reply.frame.size(), wire::kReplyHeaderSize);
    if (reply.frame.size() < wire::kReplyHeaderSize) return {wire::ReplyType::error, 0xFFFFFFFF};
    const auto decoded = wire::decode_reply_header(reply.frame.data());
    EXPECT_TRUE(decoded.ok());
    return decoded.ok() ? decoded.value() : wire::ReplyHeader{wire::ReplyType::error, 0xFFFFFFFF};
}

std::string reply_of(const ipc::Reply& reply) { return describe(header_of(reply)); }

// The documents of a WINNERS reply; fails the test if it is anything else.
std::vector<std::string> documents_of(const ipc::Reply& reply) {
    const auto header = header_of(reply);
    EXPECT_EQ(header.type, wire::ReplyType::winners);
    if (header.type != wire::ReplyType::winners) return {"<not WINNERS>"};
    EXPECT_EQ(reply.frame.size(), wire::kReplyHeaderSize + header.value * 8u);
    if (reply.frame.size() != wire::kReplyHeaderSize + header.value * 8u) return {"<bad size>"};
    const auto documents = wire::decode_documents(reply.frame.data() + wire::kReplyHeaderSize, header.value);
    EXPECT_TRUE(documents.ok());
    return documents.ok() ? documents.value() : std::vector<std::string>{"<bad documents>"};
}

// Store lines written by hand (agency,first,last,document,birthdate,number).
const std::string kLineA1 = "1,Ana,Gómez,00000042,1990-01-31,7574\n";
const std::string kLineA2 = "1,Luis,Paz,12345678,1985-12-01,1234\n";

class CoordinatorTest : public ::testing::Test {
protected:
    void make(std::uint32_t agencies) {
        std::string error;
        coordinator_ = Coordinator::open({agencies, path_, false}, error);
        ASSERT_TRUE(coordinator_.has_value()) << error;
    }
    Coordinator& coordinator() { return *coordinator_; }
    // A request that must be answered right away.
    ipc::Reply answer(const ipc::Request& request) {
        auto reply = coordinator_->handle(request);
        EXPECT_TRUE(reply.has_value());
        return reply ? *reply : ipc::Reply{ipc::Outcome::answered, wire::encode_reply(wire::ReplyType::error, 0xFFFFFFFF)};
    }

    TempDir dir_;
    std::string path_ = dir_.file("bets.csv");
    std::optional<Coordinator> coordinator_;
};

TEST_F(CoordinatorTest, FirstBatchIsStoredAckedWithItsCountAndAppended) {
    make(5);
    const auto reply = answer(bets(1, 1, 2, kLineA1 + kLineA2));
    EXPECT_EQ(reply.outcome, ipc::Outcome::stored);
    EXPECT_EQ(reply_of(reply), "ACK 2");
    EXPECT_EQ(reply.frame.size(), wire::kReplyHeaderSize);
    EXPECT_EQ(slurp(path_), kLineA1 + kLineA2);
}

TEST_F(CoordinatorTest, SameBatchAgainIsDuplicateAckedAndNotStoredAgain) {
    make(5);
    answer(bets(1, 1, 2, kLineA1 + kLineA2));
    const auto again = answer(bets(1, 1, 2, kLineA1 + kLineA2));
    EXPECT_EQ(again.outcome, ipc::Outcome::duplicate);
    EXPECT_EQ(reply_of(again), "ACK 2");
    EXPECT_EQ(slurp(path_), kLineA1 + kLineA2);
}

TEST_F(CoordinatorTest, OlderBatchResentIsDuplicate) {
    make(5);
    answer(bets(1, 1, 1, kLineA1));
    answer(bets(1, 2, 1, kLineA2));
    const auto again = answer(bets(1, 1, 1, kLineA1));
    EXPECT_EQ(again.outcome, ipc::Outcome::duplicate);
    EXPECT_EQ(reply_of(again), "ACK 1");
    EXPECT_EQ(slurp(path_), kLineA1 + kLineA2);
}

TEST_F(CoordinatorTest, BatchGapIsError4AndNothingStored) {
    make(5);
    answer(bets(1, 1, 1, kLineA1));
    const auto gap = answer(bets(1, 3, 1, kLineA2));
    EXPECT_EQ(gap.outcome, ipc::Outcome::answered);
    EXPECT_EQ(reply_of(gap), "ERROR 4");
    EXPECT_EQ(slurp(path_), kLineA1);
}

TEST_F(CoordinatorTest, FirstBatchNumberMustBeOne) {
    make(5);
    EXPECT_EQ(reply_of(answer(bets(2, 2, 1, "2,A,B,1,2000-01-01,1\n"))), "ERROR 4");
    EXPECT_EQ(slurp(path_), "");
}

TEST_F(CoordinatorTest, NextBatchAfterRefusedGapIsStillAccepted) {
    make(5);
    answer(bets(1, 1, 1, kLineA1));
    answer(bets(1, 3, 1, "1,X,Y,9,2000-01-01,9\n"));
    const auto next = answer(bets(1, 2, 1, kLineA2));
    EXPECT_EQ(next.outcome, ipc::Outcome::stored);
    EXPECT_EQ(reply_of(next), "ACK 1");
    EXPECT_EQ(slurp(path_), kLineA1 + kLineA2);
}

TEST_F(CoordinatorTest, BatchSequencesAreIndependentPerAgency) {
    make(5);
    answer(bets(1, 1, 1, kLineA1));
    answer(bets(1, 2, 1, kLineA2));
    const auto other = answer(bets(2, 1, 1, "2,Eva,Sosa,7,2001-02-28,5\n"));
    EXPECT_EQ(other.outcome, ipc::Outcome::stored);
    EXPECT_EQ(reply_of(other), "ACK 1");
}

TEST_F(CoordinatorTest, AgencyZeroIsError3) {
    make(5);
    const auto reply = answer(bets(0, 1, 1, kLineA1));
    EXPECT_EQ(reply.outcome, ipc::Outcome::answered);
    EXPECT_EQ(reply_of(reply), "ERROR 3");
    EXPECT_EQ(reply_of(answer(done(0))), "ERROR 3");
    EXPECT_EQ(slurp(path_), "");
}

TEST_F(CoordinatorTest, AgencyAboveConfiguredIsError3) {
    make(5);
    EXPECT_EQ(reply_of(answer(bets(6, 1, 1, "6,A,B,1,2000-01-01,1\n"))), "ERROR 3");
    EXPECT_EQ(reply_of(answer(done(6))), "ERROR 3");
    EXPECT_EQ(reply_of(answer(winners(6))), "ERROR 3");
    EXPECT_EQ(slurp(path_), "");
    // The last configured agency is fine.
    EXPECT_EQ(reply_of(answer(bets(5, 1, 1, "5,A,B,1,2000-01-01,1\n"))), "ACK 1");
}

TEST_F(CoordinatorTest, NewBatchAfterDoneIsError5) {
    make(5);
    answer(bets(1, 1, 1, kLineA1));
    EXPECT_EQ(reply_of(answer(done(1))), "ACK 0");
    const auto late = answer(bets(1, 2, 1, kLineA2));
    EXPECT_EQ(late.outcome, ipc::Outcome::answered);
    EXPECT_EQ(reply_of(late), "ERROR 5");
    EXPECT_EQ(slurp(path_), kLineA1);
}

TEST_F(CoordinatorTest, FirstBatchAfterDoneWithoutBetsIsError5) {
    make(5);
    answer(done(3));
    EXPECT_EQ(reply_of(answer(bets(3, 1, 1, "3,A,B,1,2000-01-01,1\n"))), "ERROR 5");
    EXPECT_EQ(slurp(path_), "");
}

TEST_F(CoordinatorTest, ResentOldBatchAfterDoneIsAckedAsDuplicate) {
    make(5);
    answer(bets(1, 1, 2, kLineA1 + kLineA2));
    answer(done(1));
    const auto resent = answer(bets(1, 1, 2, kLineA1 + kLineA2));
    EXPECT_EQ(resent.outcome, ipc::Outcome::duplicate);
    EXPECT_EQ(reply_of(resent), "ACK 2");
    EXPECT_EQ(slurp(path_), kLineA1 + kLineA2);
}

TEST_F(CoordinatorTest, DoneIsAckedWithZero) {
    make(5);
    const auto reply = answer(done(2));
    EXPECT_EQ(reply.outcome, ipc::Outcome::answered);
    EXPECT_EQ(reply_of(reply), "ACK 0");
    EXPECT_EQ(reply.frame.size(), wire::kReplyHeaderSize);
}

TEST_F(CoordinatorTest, DoneTwiceFromOneAgencyCountsOnce) {
    make(2);
    EXPECT_EQ(reply_of(answer(done(1))), "ACK 0");
    EXPECT_EQ(reply_of(answer(done(1))), "ACK 0");
    EXPECT_FALSE(coordinator().draw_done()); // agency 2 has not finished
    EXPECT_FALSE(coordinator().handle(winners(1)).has_value());
}

TEST_F(CoordinatorTest, WinnersBeforeDrawIsParked) {
    make(2);
    answer(bets(1, 1, 1, kLineA1));
    EXPECT_FALSE(coordinator().handle(winners(1)).has_value());
    answer(done(1));
    EXPECT_FALSE(coordinator().handle(winners(1)).has_value());
    EXPECT_FALSE(coordinator().handle(winners(2)).has_value());
}

TEST_F(CoordinatorTest, DrawHappensExactlyWhenLastAgencySaysDone) {
    make(3);
    EXPECT_FALSE(coordinator().draw_done());
    answer(done(2));
    EXPECT_FALSE(coordinator().draw_done());
    answer(done(3));
    EXPECT_FALSE(coordinator().draw_done());
    answer(done(1));
    EXPECT_TRUE(coordinator().draw_done());
    // Later DONEs are still acknowledged and the draw stays done.
    EXPECT_EQ(reply_of(answer(done(1))), "ACK 0");
    EXPECT_TRUE(coordinator().draw_done());
}

TEST_F(CoordinatorTest, WinnersAfterDrawIsAnsweredDirectly) {
    make(1);
    answer(bets(1, 1, 2, kLineA1 + kLineA2));
    answer(done(1));
    ASSERT_TRUE(coordinator().draw_done());
    const auto reply = answer(winners(1));
    EXPECT_EQ(reply.outcome, ipc::Outcome::answered);
    EXPECT_EQ(documents_of(reply), (std::vector<std::string>{"00000042"}));
}

TEST_F(CoordinatorTest, EachAgencyGetsExactlyItsOwnWinnersInStoreOrder) {
    make(3);
    // Interleaved batches; several agencies share documents and numbers.
    answer(bets(1, 1, 3,
                "1,Ana,Gómez,00000042,1990-01-31,7574\n"
                "1,Luis,Paz,12345678,1985-12-01,1234\n"
                "1,Sol,Ríos,00000007,1970-06-15,7574\n"));
    answer(bets(2, 1, 2,
                "2,Eva,Sosa,00000042,2001-02-28,7574\n"
                "2,Juan,\"Pérez, Jr\",00012345,1999-09-09,7575\n"));
    answer(bets(1, 2, 1, "1,Mia,Luna,0,2000-02-29,7574\n"));
    answer(bets(3, 1, 2,
                "3,Teo,Vaca,99999999,1960-10-10,4757\n"
                "3,Ada,Byron,00000001,1815-12-10,0\n"));
    answer(bets(2, 2, 1, "2,Noé,Arca,01000000,1950-05-05,7574\n"));
    answer(done(1));
    answer(done(2));
    answer(done(3));
    ASSERT_TRUE(coordinator().draw_done());

    EXPECT_EQ(documents_of(coordinator().winners_reply(1)),
              (std::vector<std::string>{"00000042", "00000007", "0"}));
    EXPECT_EQ(documents_of(coordinator().winners_reply(2)),
              (std::vector<std::string>{"00000042", "01000000"}));
    EXPECT_EQ(documents_of(coordinator().winners_reply(3)), std::vector<std::string>{});
    // The same through handle().
    EXPECT_EQ(documents_of(answer(winners(2))), (std::vector<std::string>{"00000042", "01000000"}));
}

TEST_F(CoordinatorTest, AgencyWithoutWinnersGetsWinnersWithZeroDocuments) {
    make(2);
    answer(bets(1, 1, 1, kLineA1));
    answer(bets(2, 1, 1, "2,Eva,Sosa,00000099,2001-02-28,1\n"));
    answer(done(1));
    answer(done(2));
    const auto reply = answer(winners(2));
    EXPECT_EQ(reply_of(reply), "WINNERS 0");
    EXPECT_EQ(reply.frame.size(), wire::kReplyHeaderSize);
}

TEST_F(CoordinatorTest, DrawReadsBetsAlreadyInTheStoreFile) {
    spit(path_, "2,Old,Bet,00000555,1980-01-01,7574\n");
    make(2);
    answer(bets(2, 1, 1, "2,New,Bet,00000666,1980-01-01,7574\n"));
    answer(done(1));
    answer(done(2));
    EXPECT_EQ(documents_of(coordinator().winners_reply(2)), (std::vector<std::string>{"00000555", "00000666"}));
    EXPECT_EQ(documents_of(coordinator().winners_reply(1)), std::vector<std::string>{});
}

TEST_F(CoordinatorTest, UnreadableStoreGivesErrorNotPartialWinners) {
    spit(path_, "1,Ana,Gómez,00000042,1990-01-31,7574\nthis is not a store line\n");
    make(1);
    answer(done(1));
    ASSERT_TRUE(coordinator().draw_done());
    EXPECT_EQ(reply_of(coordinator().winners_reply(1)), "ERROR 6");
}

TEST_F(CoordinatorTest, ZeroAgenciesMakesEveryAgencyBad) {
    make(0);
    for (std::uint32_t agency : {0u, 1u, 2u, 65535u}) {
        SCOPED_TRACE(agency);
        EXPECT_EQ(reply_of(answer(bets(agency, 1, 1, kLineA1))), "ERROR 3");
        EXPECT_EQ(reply_of(answer(done(agency))), "ERROR 3");
        EXPECT_EQ(reply_of(answer(winners(agency))), "ERROR 3");
    }
    EXPECT_FALSE(coordinator().draw_done());
    EXPECT_EQ(slurp(path_), "");
}

} // namespace
