// Coordinator rules (CONTRACT.md §5 semantics, §6): sources opened by (agency, name)
// and answered with RESUME, positions instead of batch numbers, fencing by
// connection, DONE, the sliced draw, the per-agency WINNERS reply and ERROR 7
// with nothing stored, over a real BetStore in a temp directory.
#include "server/coordinator.hpp"

#include "coordinator_support.hpp"

#include "../support/test_support.hpp"

#include "../support/skip.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace coordinator_support; // the requests, replies and files these tests build
using test_support::file_size;
using test_support::slurp;
using test_support::spit;
using test_support::TempDir;

class CoordinatorTest : public ::testing::Test {
protected:
    void make(std::uint32_t agencies) { make_at(path_, agencies); }
    void make_at(const std::string& store, std::uint32_t agencies) {
        std::string error;
        coordinator_ = Coordinator::open({agencies, store, nullptr}, error);
        ASSERT_TRUE(coordinator_.has_value()) << error;
        connection_ = coordinator_->new_connection();
    }
    Coordinator& coordinator() { return *coordinator_; }

    // A request that must be answered right away, in a round of its own.
    ipc::Reply answer(const ipc::Request& request, std::uint64_t connection) {
        auto reply = round_trip(*coordinator_, request, connection);
        EXPECT_TRUE(reply.has_value()) << "parked";
        return reply ? *reply : ipc::Reply{0, 0, wire::encode_reply(wire::ReplyType::error, 0xFFFFFFFF)};
    }
    ipc::Reply answer(const ipc::Request& request) { return answer(request, connection_); }
    std::string reply_of(const ipc::Request& request, std::uint64_t connection) {
        return describe(answer(request, connection));
    }
    std::string reply_of(const ipc::Request& request) { return reply_of(request, connection_); }

    // OPENs (agency, name) from `connection` and returns the source's id.
    ipc::SourceId open_source(std::uint32_t agency, const std::string& name, std::uint64_t connection) {
        const ipc::Reply reply = answer(open_request(agency, name), connection);
        EXPECT_EQ(describe(reply).rfind("RESUME ", 0), 0u) << describe(reply);
        return reply.source;
    }
    ipc::SourceId open_source(std::uint32_t agency, const std::string& name) {
        return open_source(agency, name, connection_);
    }
    // `bets` stored at position 0 of a new source; returns its id.
    ipc::SourceId stored_source(std::uint32_t agency, const std::string& name, const std::vector<Bet>& bets) {
        const ipc::SourceId id = open_source(agency, name);
        EXPECT_EQ(reply_of(bets_request(id, agency, 0, bets)), "ACK " + std::to_string(bets.size()));
        return id;
    }

    TempDir dir_;
    std::string path_ = dir_.file("bets.csv");
    std::string journal_ = journal_path_for(path_);
    std::optional<Coordinator> coordinator_;
    std::uint64_t connection_ = 0; // the connection requests come from unless a test says otherwise
};

// ---- OPEN -------------------------------------------------------------------------

TEST_F(CoordinatorTest, OpenCreatesASourceAndAnswersResumeZeroWithDigestZero) {
    make(5);
    const ipc::Reply reply = answer(open_request(1, "agency-1.csv"));
    EXPECT_EQ(describe(reply), "RESUME 0");
    EXPECT_EQ(resume_digest(reply), 0u);
    EXPECT_EQ(reply.source, 0u) << "the first source is id 0";
    EXPECT_EQ(slurp(path_), "");
}

TEST_F(CoordinatorTest, SameSourceOpenedAgainHasTheSameIdItsStoredCountAndDigest) {
    make(5);
    const std::vector<Bet> bets = bets_of(1, 10, 3);
    const ipc::SourceId id = stored_source(1, "agency-1.csv", bets);
    const ipc::Reply again = answer(open_request(1, "agency-1.csv"), coordinator().new_connection());
    EXPECT_EQ(again.source, id);
    EXPECT_EQ(describe(again), "RESUME 3");
    EXPECT_EQ(resume_digest(again), digest_of(bets));
}

TEST_F(CoordinatorTest, DifferentNamesOrAgenciesAreDifferentSourcesNumberedInOrder) {
    make(5);
    EXPECT_EQ(open_source(1, "a.csv"), 0u);
    EXPECT_EQ(open_source(1, "b.csv"), 1u);
    EXPECT_EQ(open_source(2, "a.csv"), 2u) << "(agency, name) names a source, not the name alone";
    EXPECT_EQ(open_source(1, "a.csv"), 0u);
    EXPECT_EQ(open_source(2, "a.csv"), 2u);
}

TEST_F(CoordinatorTest, BetsOfOneSourceAreNotCountedInAnother) {
    make(5);
    stored_source(1, "a.csv", bets_of(1, 1, 2));
    const ipc::Reply other = answer(open_request(1, "b.csv"));
    EXPECT_EQ(describe(other), "RESUME 0");
    EXPECT_EQ(resume_digest(other), 0u);
}

TEST_F(CoordinatorTest, OpenWithAnInvalidNameIsError1AndCreatesNothing) {
    make(5);
    for (const std::string& bad : {std::string(""), std::string("a b"), std::string("x/y"), std::string(65, 'n')}) {
        SCOPED_TRACE("name '" + bad + "'");
        EXPECT_EQ(reply_of(open_request(1, bad)), "ERROR 1");
    }
    EXPECT_EQ(open_source(1, std::string(64, 'n')), 0u) << "refused names must not take source ids";
}

TEST_F(CoordinatorTest, OpenIsStillAnsweredAfterTheDraw) {
    make(1);
    const std::vector<Bet> bets = bets_of(1, 1, 2);
    stored_source(1, "a.csv", bets);
    EXPECT_EQ(reply_of(done_request(1)), "ACK 0");
    finish_draw(coordinator());
    const ipc::Reply reply = answer(open_request(1, "a.csv"), coordinator().new_connection());
    EXPECT_EQ(describe(reply), "RESUME 2");
    EXPECT_EQ(resume_digest(reply), digest_of(bets));
}

// ---- BETS and positions -------------------------------------------------------------

TEST_F(CoordinatorTest, BetsAtTheStoredPositionAreStoredAndAckedWithTheirCount) {
    make(5);
    const ipc::SourceId id = open_source(1, "a.csv");
    const std::vector<Bet> bets = bets_of(1, 1, 2);
    const ipc::Reply reply = answer(bets_request(id, 1, 0, bets));
    EXPECT_EQ(describe(reply), "ACK 2");
    EXPECT_EQ(reply.stored_now, 2u);
    EXPECT_EQ(reply.frame.size(), wire::kReplyHeaderSize);
    EXPECT_EQ(slurp(path_), store_lines(bets));
    // The next frame goes on at position 2.
    const std::vector<Bet> more = bets_of(1, 3, 1);
    EXPECT_EQ(answer(bets_request(id, 1, 2, more)).stored_now, 1u);
    EXPECT_EQ(slurp(path_), store_lines(bets) + store_lines(more));
}

TEST_F(CoordinatorTest, DigestIsTheSumOfTheStoredBetsRecordHashes) {
    make(5);
    const ipc::SourceId id = open_source(1, "a.csv");
    const std::vector<Bet> bets = bets_of(1, 100, 5);
    ASSERT_EQ(reply_of(bets_request(id, 1, 0, slice(bets, 0, 2))), "ACK 2");
    ASSERT_EQ(reply_of(bets_request(id, 1, 2, slice(bets, 2, 5))), "ACK 3");
    const ipc::Reply resume = answer(open_request(1, "a.csv"));
    EXPECT_EQ(describe(resume), "RESUME 5");
    EXPECT_EQ(resume_digest(resume), digest_of(bets));
    EXPECT_NE(digest_of(bets), digest_of(slice(bets, 0, 4))) << "the test bets must not hash to nothing";
}

TEST_F(CoordinatorTest, FrameWhollyBelowStoredIsAckedAndWritesNothing) {
    make(5);
    const std::vector<Bet> bets = bets_of(1, 1, 4);
    const ipc::SourceId id = stored_source(1, "a.csv", bets);
    const std::string store = slurp(path_), journal = slurp(journal_);
    for (const auto& [first, to] : {std::pair<std::size_t, std::size_t>{0, 4}, {1, 3}, {3, 4}}) {
        SCOPED_TRACE("first " + std::to_string(first));
        const ipc::Reply reply = answer(bets_request(id, 1, first, slice(bets, first, to)));
        EXPECT_EQ(describe(reply), "ACK " + std::to_string(to - first));
        EXPECT_EQ(reply.stored_now, 0u);
    }
    EXPECT_EQ(slurp(path_), store);
    EXPECT_EQ(slurp(journal_), journal) << "nothing new: nothing to journal";
}

TEST_F(CoordinatorTest, StraddlingFrameStoresOnlyItsTail) {
    make(5);
    const std::vector<Bet> bets = bets_of(1, 1, 5);
    const ipc::SourceId id = stored_source(1, "a.csv", slice(bets, 0, 2));
    const ipc::Reply reply = answer(bets_request(id, 1, 1, slice(bets, 1, 5))); // positions 1..4; 1 is stored
    EXPECT_EQ(describe(reply), "ACK 4");
    EXPECT_EQ(reply.stored_now, 3u);
    EXPECT_EQ(slurp(path_), store_lines(bets)) << "position 1 must not be stored twice";
    const ipc::Reply resume = answer(open_request(1, "a.csv"));
    EXPECT_EQ(describe(resume), "RESUME 5");
    EXPECT_EQ(resume_digest(resume), digest_of(bets));
}

TEST_F(CoordinatorTest, FramePastTheStoredBetsIsAGapError4AndStoresNothing) {
    make(5);
    const std::vector<Bet> bets = bets_of(1, 1, 3);
    const ipc::SourceId id = stored_source(1, "a.csv", slice(bets, 0, 1));
    EXPECT_EQ(reply_of(bets_request(id, 1, 2, slice(bets, 2, 3))), "ERROR 4");
    EXPECT_EQ(slurp(path_), store_lines(slice(bets, 0, 1)));
    // The frame that closes the gap is still welcome.
    EXPECT_EQ(reply_of(bets_request(id, 1, 1, slice(bets, 1, 3))), "ACK 2");
    EXPECT_EQ(slurp(path_), store_lines(bets));
}

TEST_F(CoordinatorTest, NewSourceMustStartAtPositionZero) {
    make(5);
    const ipc::SourceId id = open_source(2, "a.csv");
    EXPECT_EQ(reply_of(bets_request(id, 2, 1, bets_of(2, 1, 1))), "ERROR 4");
    EXPECT_EQ(slurp(path_), "");
}

TEST_F(CoordinatorTest, SourcesOfTheSameAgencyHaveIndependentPositions) {
    make(5);
    const std::vector<Bet> first = bets_of(1, 1, 2), second = bets_of(1, 50, 1);
    stored_source(1, "a.csv", first);
    const ipc::SourceId other = open_source(1, "b.csv");
    const ipc::Reply reply = answer(bets_request(other, 1, 0, second));
    EXPECT_EQ(reply.stored_now, 1u);
    EXPECT_EQ(slurp(path_), store_lines(first) + store_lines(second));
}

// ---- refusals -----------------------------------------------------------------------

TEST_F(CoordinatorTest, UnknownSourceIdIsError1) {
    make(5);
    open_source(1, "a.csv");
    EXPECT_EQ(reply_of(bets_request(1, 1, 0, bets_of(1, 1, 1))), "ERROR 1");
    EXPECT_EQ(reply_of(bets_request(0xFFFFFFFF, 1, 0, bets_of(1, 1, 1))), "ERROR 1");
    EXPECT_EQ(slurp(path_), "");
}

TEST_F(CoordinatorTest, HashCountOtherThanTheBetCountIsError1) {
    make(5);
    const ipc::SourceId id = open_source(1, "a.csv");
    ipc::Request request = bets_request(id, 1, 0, bets_of(1, 1, 2));
    request.hashes.pop_back();
    EXPECT_EQ(reply_of(request), "ERROR 1");
    EXPECT_EQ(slurp(path_), "");
}

TEST_F(CoordinatorTest, AgencyOutOfRangeIsError3ForEveryRequest) {
    make(5);
    for (std::uint32_t agency : {0u, 6u, 65535u}) {
        SCOPED_TRACE(agency);
        EXPECT_EQ(reply_of(open_request(agency, "a.csv")), "ERROR 3");
        EXPECT_EQ(reply_of(bets_request(0, agency, 0, bets_of(agency, 1, 1))), "ERROR 3");
        EXPECT_EQ(reply_of(done_request(agency)), "ERROR 3");
        EXPECT_EQ(reply_of(winners_request(agency)), "ERROR 3");
    }
    EXPECT_EQ(open_source(5, "a.csv"), 0u) << "the last configured agency is fine, and nothing took an id before";
    EXPECT_EQ(slurp(path_), "");
}

TEST_F(CoordinatorTest, BetsForASourceOfAnotherAgencyAreError3) {
    make(5);
    const ipc::SourceId id = open_source(1, "a.csv");
    EXPECT_EQ(reply_of(bets_request(id, 2, 0, bets_of(2, 1, 1))), "ERROR 3");
    EXPECT_EQ(slurp(path_), "");
}

TEST_F(CoordinatorTest, ZeroAgenciesMakesEveryAgencyBad) {
    make(0);
    for (std::uint32_t agency : {0u, 1u, 2u, 65535u}) {
        SCOPED_TRACE(agency);
        EXPECT_EQ(reply_of(open_request(agency, "a.csv")), "ERROR 3");
        EXPECT_EQ(reply_of(bets_request(0, agency, 0, bets_of(agency, 1, 1))), "ERROR 3");
        EXPECT_EQ(reply_of(done_request(agency)), "ERROR 3");
        EXPECT_EQ(reply_of(winners_request(agency)), "ERROR 3");
    }
    EXPECT_FALSE(coordinator().draw_running());
    EXPECT_FALSE(coordinator().draw_done());
    EXPECT_EQ(slurp(path_), "");
}

// ---- fencing -----------------------------------------------------------------------

TEST_F(CoordinatorTest, NewerOpenerFencesTheOlderOne) {
    make(5);
    const std::vector<Bet> bets = bets_of(1, 1, 3);
    const std::uint64_t older = connection_, newer = coordinator().new_connection();
    const ipc::SourceId id = stored_source(1, "a.csv", slice(bets, 0, 1));
    ASSERT_EQ(open_source(1, "a.csv", newer), id);
    EXPECT_EQ(reply_of(bets_request(id, 1, 1, slice(bets, 1, 2)), older), "ERROR 8");
    EXPECT_EQ(reply_of(bets_request(id, 1, 0, slice(bets, 0, 1)), older), "ERROR 8")
        << "fenced even for a frame that stores nothing";
    EXPECT_EQ(slurp(path_), store_lines(slice(bets, 0, 1)));
    // The newer opener feeds it, and the older one stays fenced after that.
    EXPECT_EQ(reply_of(bets_request(id, 1, 1, slice(bets, 1, 2)), newer), "ACK 1");
    EXPECT_EQ(reply_of(bets_request(id, 1, 2, slice(bets, 2, 3)), older), "ERROR 8");
    EXPECT_EQ(slurp(path_), store_lines(slice(bets, 0, 2)));
}

TEST_F(CoordinatorTest, ConnectionThatNeverOpenedTheSourceIsFenced) {
    make(5);
    const ipc::SourceId id = open_source(1, "a.csv");
    const std::uint64_t stranger = coordinator().new_connection();
    EXPECT_EQ(reply_of(bets_request(id, 1, 0, bets_of(1, 1, 1)), stranger), "ERROR 8");
    EXPECT_EQ(slurp(path_), "");
}

TEST_F(CoordinatorTest, OpeningAgainTakesTheSourceBack) {
    make(5);
    const std::uint64_t first = connection_, second = coordinator().new_connection();
    const ipc::SourceId id = open_source(1, "a.csv", first);
    open_source(1, "a.csv", second);
    open_source(1, "a.csv", first);
    EXPECT_EQ(reply_of(bets_request(id, 1, 0, bets_of(1, 1, 1)), second), "ERROR 8");
    EXPECT_EQ(reply_of(bets_request(id, 1, 0, bets_of(1, 1, 1)), first), "ACK 1");
}

TEST_F(CoordinatorTest, FencingIsPerSource) {
    make(5);
    const std::uint64_t other = coordinator().new_connection();
    const ipc::SourceId a = open_source(1, "a.csv", connection_);
    open_source(1, "b.csv", other);
    EXPECT_EQ(reply_of(bets_request(a, 1, 0, bets_of(1, 1, 1))), "ACK 1");
}

TEST_F(CoordinatorTest, NewConnectionNumbersGrow) {
    make(5);
    const std::uint64_t a = coordinator().new_connection(), b = coordinator().new_connection();
    EXPECT_GT(a, connection_);
    EXPECT_GT(b, a);
}

// ---- DONE and the draw -------------------------------------------------------------

TEST_F(CoordinatorTest, DoneIsAckedWithZeroAndJournaledOnce) {
    make(5);
    const ipc::Reply reply = answer(done_request(2));
    EXPECT_EQ(describe(reply), "ACK 0");
    EXPECT_EQ(reply.frame.size(), wire::kReplyHeaderSize);
    const std::string journal = slurp(journal_);
    EXPECT_EQ(test_support::lines_with(journal, "done 2").size(), 1u) << journal;
    EXPECT_EQ(reply_of(done_request(2)), "ACK 0");
    EXPECT_EQ(slurp(journal_), journal) << "a repeated DONE is not journaled again";
}

TEST_F(CoordinatorTest, DoneTwiceFromOneAgencyCountsOnce) {
    make(2);
    EXPECT_EQ(reply_of(done_request(1)), "ACK 0");
    EXPECT_EQ(reply_of(done_request(1)), "ACK 0");
    EXPECT_FALSE(coordinator().draw_running()); // agency 2 has not finished
    EXPECT_FALSE(coordinator().draw_done());
    EXPECT_FALSE(coordinator().handle(winners_request(1), connection_).has_value());
}

TEST_F(CoordinatorTest, BetsAfterDoneAreStoredUntilTheDraw) {
    make(2);
    const ipc::SourceId id = open_source(1, "a.csv");
    EXPECT_EQ(reply_of(done_request(1)), "ACK 0");
    const ipc::Reply reply = answer(bets_request(id, 1, 0, bets_of(1, 1, 1)));
    EXPECT_EQ(describe(reply), "ACK 1");
    EXPECT_EQ(reply.stored_now, 1u) << "a re-run of a done agency may still add bets before the draw";
}

TEST_F(CoordinatorTest, DrawStartsExactlyWhenTheLastAgencySaysDone) {
    make(3);
    answer(done_request(2));
    answer(done_request(3));
    EXPECT_FALSE(coordinator().draw_running());
    answer(done_request(1));
    EXPECT_TRUE(coordinator().draw_running() || coordinator().draw_done());
    finish_draw(coordinator());
    EXPECT_TRUE(coordinator().draw_done());
    EXPECT_EQ(reply_of(done_request(1)), "ACK 0") << "later DONEs are still acknowledged";
    EXPECT_TRUE(coordinator().draw_done());
}

TEST_F(CoordinatorTest, AfterTheDrawNewBetsAreError5WhileStoredFramesStillAck) {
    make(1);
    const std::vector<Bet> bets = bets_of(1, 1, 3);
    const ipc::SourceId id = stored_source(1, "a.csv", slice(bets, 0, 2));
    EXPECT_EQ(reply_of(done_request(1)), "ACK 0");
    const std::string store = slurp(path_);
    EXPECT_EQ(reply_of(bets_request(id, 1, 2, slice(bets, 2, 3))), "ERROR 5") << "while the draw runs";
    finish_draw(coordinator());
    EXPECT_EQ(reply_of(bets_request(id, 1, 2, slice(bets, 2, 3))), "ERROR 5");
    EXPECT_EQ(reply_of(bets_request(id, 1, 1, slice(bets, 1, 3))), "ERROR 5") << "a straddling frame stores new bets";
    const ipc::Reply stored_before = answer(bets_request(id, 1, 0, slice(bets, 0, 2)));
    EXPECT_EQ(describe(stored_before), "ACK 2");
    EXPECT_EQ(stored_before.stored_now, 0u);
    const ipc::SourceId late = open_source(1, "late.csv");
    EXPECT_EQ(reply_of(bets_request(late, 1, 0, bets_of(1, 90, 1))), "ERROR 5");
    EXPECT_EQ(slurp(path_), store);
}

TEST_F(CoordinatorTest, WinnersAreParkedUntilTheDrawHasFinished) {
    make(2);
    const ipc::SourceId id = open_source(1, "a.csv");
    answer(bets_request(id, 1, 0, {bet(1, 42, kWinningNumber)}));
    EXPECT_FALSE(coordinator().handle(winners_request(1), connection_).has_value());
    answer(done_request(1));
    answer(done_request(2));
    ASSERT_TRUE(coordinator().draw_running()) << "the draw reads the store between poll rounds";
    EXPECT_FALSE(coordinator().handle(winners_request(1), connection_).has_value());
    EXPECT_FALSE(coordinator().handle(winners_request(2), connection_).has_value());
    finish_draw(coordinator());
    EXPECT_EQ(documents_of(answer(winners_request(1))), std::vector<std::string>{"00000042"});
    EXPECT_EQ(documents_of(answer(winners_request(2))), std::vector<std::string>{});
}

TEST_F(CoordinatorTest, EachAgencyGetsExactlyItsOwnWinnersInStoreOrder) {
    make(3);
    // Several agencies share documents and numbers; sources interleave in the store.
    const ipc::SourceId a1 = open_source(1, "a.csv"), a2 = open_source(2, "a.csv"), a3 = open_source(3, "a.csv");
    answer(bets_request(a1, 1, 0, {bet(1, 42, 7574), bet(1, 12345678, 1234), bet(1, 7, 7574)}));
    answer(bets_request(a2, 2, 0, {bet(2, 42, 7574), bet(2, 12345, 7575)}));
    answer(bets_request(a1, 1, 3, {bet(1, 0, 7574)}));
    answer(bets_request(a3, 3, 0, {bet(3, 99999999, 4757), bet(3, 1, 0)}));
    answer(bets_request(a2, 2, 2, {bet(2, 1000000, 7574)}));
    answer(done_request(1));
    answer(done_request(2));
    answer(done_request(3));
    finish_draw(coordinator());
    ASSERT_TRUE(coordinator().draw_done());

    EXPECT_EQ(documents_of(coordinator().winners_reply(1)),
              (std::vector<std::string>{"00000042", "00000007", "00000000"}));
    EXPECT_EQ(documents_of(coordinator().winners_reply(2)), (std::vector<std::string>{"00000042", "01000000"}));
    EXPECT_EQ(documents_of(coordinator().winners_reply(3)), std::vector<std::string>{});
    EXPECT_EQ(documents_of(answer(winners_request(2))), (std::vector<std::string>{"00000042", "01000000"}));
}

TEST_F(CoordinatorTest, DrawReadsBetsAlreadyInTheStoreFile) {
    spit(path_, "2,Old,Bet,00000555,1980-01-01,7574\n");
    make(2);
    const ipc::SourceId id = open_source(2, "new.csv");
    answer(bets_request(id, 2, 0, {bet(2, 666, 7574)}));
    answer(done_request(1));
    answer(done_request(2));
    finish_draw(coordinator());
    EXPECT_EQ(documents_of(coordinator().winners_reply(2)), (std::vector<std::string>{"00000555", "00000666"}));
    EXPECT_EQ(documents_of(coordinator().winners_reply(1)), std::vector<std::string>{});
}

// A store far bigger than one slice (about 1 MiB) takes several advance_draw()
// calls, and the draw is running until the last one.
TEST_F(CoordinatorTest, DrawOfALargeStoreIsReadInSlices) {
    std::string store;
    std::size_t winners = 0;
    for (std::uint32_t i = 0; store.size() < (3u << 20); ++i) {
        const bool wins = i % 1000 == 0;
        winners += wins;
        append_store_line(store, bet(1, i, wins ? kWinningNumber : 1));
    }
    spit(path_, store);
    make(1);
    answer(done_request(1));
    EXPECT_TRUE(coordinator().draw_running()) << "the last DONE starts the draw; it does not run it";
    EXPECT_FALSE(coordinator().draw_done());
    coordinator().advance_draw();
    EXPECT_TRUE(coordinator().draw_running()) << "one slice must not read a 3 MiB store";
    EXPECT_FALSE(coordinator().handle(winners_request(1), connection_).has_value());
    const int slices = 1 + finish_draw(coordinator());
    EXPECT_GE(slices, 3);
    EXPECT_TRUE(coordinator().draw_done());
    EXPECT_EQ(documents_of(coordinator().winners_reply(1)).size(), winners);
}

TEST_F(CoordinatorTest, UnreadableStoreGivesError7NotPartialWinners) {
    spit(path_, "1,Ana,Gómez,00000042,1990-01-31,7574\nthis is not a store line\n");
    make(1);
    answer(done_request(1));
    finish_draw(coordinator());
    ASSERT_TRUE(coordinator().draw_done());
    EXPECT_EQ(describe(coordinator().winners_reply(1)), "ERROR 7");
    EXPECT_EQ(reply_of(winners_request(1)), "ERROR 7");
}

// ---- group commit ------------------------------------------------------------------

// What handle() returns without a commit, for the tests of one round.
std::string staged(Coordinator& coordinator, const ipc::Request& request, std::uint64_t connection) {
    const auto reply = coordinator.handle(request, connection);
    return reply ? describe(*reply) : "<parked>";
}

// One round of three sources' frames: nothing reaches the files before the
// commit, then all of it in arrival order, vouched for by the journal.
TEST_F(CoordinatorTest, ARoundIsStagedAndWrittenByOneCommitInArrivalOrder) {
    make(3);
    const std::vector<ipc::SourceId> ids{open_source(1, "a.csv"), open_source(2, "b.csv"), open_source(3, "c.csv")};
    const long long store_before = file_size(path_), journal_before = file_size(journal_);
    std::vector<Bet> all;
    for (std::uint32_t agency : {2u, 3u, 1u}) {
        const std::vector<Bet> bets = bets_of(agency, 10 * agency, agency);
        EXPECT_EQ(staged(coordinator(), bets_request(ids[agency - 1], agency, 0, bets), connection_),
                  "ACK " + std::to_string(bets.size()));
        all.insert(all.end(), bets.begin(), bets.end());
    }
    EXPECT_EQ(staged(coordinator(), done_request(2), connection_), "ACK 0");
    EXPECT_EQ(file_size(path_), store_before) << "staged bets were written before the commit";
    EXPECT_EQ(file_size(journal_), journal_before) << "staged journal lines were written before the commit";
    ASSERT_TRUE(coordinator().commit());
    EXPECT_EQ(slurp(path_), store_lines(all));
    const std::string journal = slurp(journal_);
    EXPECT_EQ(test_support::lines_with(journal, "bets ").size(), 3u) << journal;
    EXPECT_EQ(test_support::lines_with(journal, "done 2").size(), 1u) << journal;
    EXPECT_NE(journal.find("bets 0 1 "), std::string::npos) << journal;
    EXPECT_TRUE(coordinator().commit()) << "an empty commit writes nothing and succeeds";
    EXPECT_EQ(slurp(path_), store_lines(all));
}

// Two frames of one source in one round: the second sees the first's
// positions before anything is written.
TEST_F(CoordinatorTest, LaterFramesOfARoundSeeTheEarlierOnesPositions) {
    make(1);
    const std::vector<Bet> bets = bets_of(1, 1, 4);
    const ipc::SourceId id = open_source(1, "a.csv");
    EXPECT_EQ(staged(coordinator(), bets_request(id, 1, 0, slice(bets, 0, 2)), connection_), "ACK 2");
    EXPECT_EQ(staged(coordinator(), bets_request(id, 1, 0, slice(bets, 0, 2)), connection_), "ACK 2");
    EXPECT_EQ(staged(coordinator(), bets_request(id, 1, 1, slice(bets, 1, 4)), connection_), "ACK 3");
    ASSERT_TRUE(coordinator().commit());
    EXPECT_EQ(slurp(path_), store_lines(bets)) << "each bet once";
    EXPECT_EQ(reply_of(open_request(1, "a.csv")), "RESUME 4");
}

// DONEs committed together are logged in order, each with what was still
// pending after it.
TEST_F(CoordinatorTest, DonesOfOneRoundAreLoggedAtTheCommitWithTheirOwnPendingCount) {
    make(3);
    std::string log;
    {
        test_support::StdoutCapture capture;
        EXPECT_EQ(staged(coordinator(), done_request(3), connection_), "ACK 0");
        EXPECT_EQ(staged(coordinator(), done_request(1), connection_), "ACK 0");
        EXPECT_TRUE(test_support::lines_with(capture.finish(), "agencia_finalizada").empty())
            << "logged before the commit";
    }
    {
        test_support::StdoutCapture capture;
        ASSERT_TRUE(coordinator().commit());
        log = capture.finish();
    }
    const auto lines = test_support::lines_with(log, "agencia_finalizada");
    ASSERT_EQ(lines.size(), 2u) << log;
    EXPECT_NE(lines[0].find("agencia: 3 | pendientes: 2"), std::string::npos) << lines[0];
    EXPECT_NE(lines[1].find("agencia: 1 | pendientes: 1"), std::string::npos) << lines[1];
}

// The last DONE starts the draw only once it is committed: the draw reads
// the store file, which must already hold the round's bets.
TEST_F(CoordinatorTest, TheDrawStartsAtTheCommitOfTheLastDone) {
    make(1);
    const ipc::SourceId id = open_source(1, "a.csv");
    const std::vector<Bet> bets{bet(1, 1, 7574), bet(1, 2, 1)};
    EXPECT_EQ(staged(coordinator(), bets_request(id, 1, 0, bets), connection_), "ACK 2");
    EXPECT_EQ(staged(coordinator(), done_request(1), connection_), "ACK 0");
    EXPECT_FALSE(coordinator().draw_running() || coordinator().draw_done());
    ASSERT_TRUE(coordinator().commit());
    EXPECT_TRUE(coordinator().draw_running() || coordinator().draw_done());
    finish_draw(coordinator());
    EXPECT_EQ(documents_of(coordinator().winners_reply(1)), std::vector<std::string>{bets[0].document});
}

// A round whose commit fails leaves nothing behind, in the files or in
// memory: sources created in it are gone, positions and the done set are as
// before, and its ACKs and RESUMEs become ERROR 7 while its other errors stand.
TEST_F(CoordinatorTest, FailedCommitUndoesTheWholeRound) {
    make(2);
    const std::vector<Bet> kept = bets_of(1, 1, 2), lost = bets_of(1, 3, 2);
    const ipc::SourceId id = stored_source(1, "a.csv", kept);
    for (int i = 0; i < 100; ++i) open_source(1, "a.csv"); // a journal longer than the store will be
    const std::uint64_t connection = coordinator().new_connection();
    const long long store_before = file_size(path_), journal_before = file_size(journal_);
    std::vector<std::optional<ipc::Reply>> replies;
    {
        test_support::StdoutCapture log;
        FileSizeLimit limit(static_cast<std::uint64_t>(journal_before) + 4); // the bets fit, the journal does not
        replies.push_back(coordinator().handle(open_request(1, "a.csv"), connection));
        replies.push_back(coordinator().handle(bets_request(id, 1, 2, lost), connection));
        replies.push_back(coordinator().handle(bets_request(id, 1, 9, lost), connection)); // a gap
        replies.push_back(coordinator().handle(open_request(2, "new.csv"), connection));
        replies.push_back(coordinator().handle(done_request(2), connection));
        EXPECT_FALSE(coordinator().commit());
        EXPECT_EQ(test_support::lines_with(log.finish(), "action: store_bets | result: fail").size(), 1u);
    }
    std::vector<std::string> sent;
    for (const auto& reply : replies) sent.push_back(reply ? describe(Coordinator::voided(*reply)) : "<parked>");
    EXPECT_EQ(sent, (std::vector<std::string>{"ERROR 7", "ERROR 7", "ERROR 4", "ERROR 7", "ERROR 7"}));
    EXPECT_EQ(file_size(path_), store_before);
    EXPECT_EQ(file_size(journal_), journal_before);
    EXPECT_EQ(reply_of(bets_request(id, 1, 2, lost), connection), "ERROR 8") << "the undone OPEN must not fence";
    EXPECT_EQ(reply_of(open_request(1, "a.csv")), "RESUME 2") << "the undone frame must not count";
    EXPECT_EQ(open_source(2, "other.csv"), id + 1) << "the undone new source must not keep its id";
    EXPECT_EQ(reply_of(done_request(1)), "ACK 0");
    EXPECT_FALSE(coordinator().draw_running() || coordinator().draw_done()) << "the undone DONE still counted";
}

// ---- storage failures --------------------------------------------------------------

// The journal line cannot be written after the bets were: the bets are cut
// off the store again, and the same frame stores once the journal can grow.
TEST_F(CoordinatorTest, JournalWriteFailureIsError7AndRollsTheStoreBack) {
    make(1);
    const std::vector<Bet> bets = bets_of(1, 1, 2);
    const ipc::SourceId id = open_source(1, "a.csv");
    for (int i = 0; i < 100; ++i) open_source(1, "a.csv"); // a journal longer than the store will be
    const long long store_before = file_size(path_), journal_before = file_size(journal_);
    ASSERT_GT(journal_before, static_cast<long long>(store_lines(bets).size()));
    {
        test_support::StdoutCapture log;
        FileSizeLimit limit(static_cast<std::uint64_t>(journal_before) + 4); // room for the bets, not the line
        EXPECT_EQ(reply_of(bets_request(id, 1, 0, bets)), "ERROR 7");
    }
    EXPECT_EQ(file_size(path_), store_before) << "bets the journal does not vouch for stay in the store";
    EXPECT_EQ(file_size(journal_), journal_before) << "half a journal line stayed behind";
    const ipc::Reply retry = answer(bets_request(id, 1, 0, bets));
    EXPECT_EQ(describe(retry), "ACK 2");
    EXPECT_EQ(retry.stored_now, 2u);
    EXPECT_EQ(slurp(path_), store_lines(bets));
}

TEST_F(CoordinatorTest, OpenThatCannotBeJournaledIsError7AndCreatesNoSource) {
    make(2);
    const long long journal_before = file_size(journal_);
    {
        test_support::StdoutCapture log;
        FileSizeLimit limit(static_cast<std::uint64_t>(journal_before) + 4);
        EXPECT_EQ(reply_of(open_request(1, "a.csv")), "ERROR 7");
    }
    EXPECT_EQ(file_size(journal_), journal_before);
    EXPECT_EQ(open_source(2, "b.csv"), 0u) << "the refused source must not keep its id";
}

TEST_F(CoordinatorTest, DoneThatCannotBeJournaledIsError7AndNotCounted) {
    make(1);
    const long long journal_before = file_size(journal_);
    {
        test_support::StdoutCapture log;
        FileSizeLimit limit(static_cast<std::uint64_t>(journal_before) + 2);
        EXPECT_EQ(reply_of(done_request(1)), "ERROR 7");
    }
    EXPECT_EQ(file_size(journal_), journal_before);
    EXPECT_FALSE(coordinator().draw_running() || coordinator().draw_done()) << "an unjournaled DONE started the draw";
    EXPECT_EQ(reply_of(done_request(1)), "ACK 0");
    EXPECT_TRUE(coordinator().draw_running() || coordinator().draw_done());
}

// The store made append-only (chattr +a; needs root and a file system that
// has the flag): writes still go in, but it can no longer be cut back.
class AppendOnly {
public:
    explicit AppendOnly(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
        active_ = set(true);
    }
    ~AppendOnly() {
        if (active_) {
            EXPECT_TRUE(set(false)) << "the file stays append-only and cannot be removed";
        }
    }
    AppendOnly(const AppendOnly&) = delete;
    AppendOnly& operator=(const AppendOnly&) = delete;
    bool active() const { return active_; }

private:
    bool set(bool on) {
        int flags = 0;
        if (::ioctl(fd_.get(), FS_IOC_GETFLAGS, &flags) != 0) return false;
        flags = on ? flags | FS_APPEND_FL : flags & ~FS_APPEND_FL;
        return ::ioctl(fd_.get(), FS_IOC_SETFLAGS, &flags) == 0;
    }
    Fd fd_;
    bool active_ = false;
};

// The journal line fails and so does cutting the bets back off the store: the
// store now holds bytes nobody vouches for, and the coordinator refuses every
// write until a restart, whose recovery cuts them.
TEST_F(CoordinatorTest, FailedRollbackRefusesWritesUntilARestart) {
    if (::geteuid() != 0) SKIP_OR_FAIL("making a file append-only needs root");
    make(1);
    const std::vector<Bet> bets = bets_of(1, 1, 2);
    const ipc::SourceId id = open_source(1, "a.csv");
    for (int i = 0; i < 100; ++i) open_source(1, "a.csv"); // a journal longer than the store will be
    const long long journal_before = file_size(journal_);
    {
        AppendOnly append_only(path_);
        if (!append_only.active()) SKIP_OR_FAIL("cannot make the store append-only: " << std::strerror(errno));
        test_support::StdoutCapture log;
        {
            FileSizeLimit limit(static_cast<std::uint64_t>(journal_before) + 4);
            EXPECT_EQ(reply_of(bets_request(id, 1, 0, bets)), "ERROR 7");
        }
        EXPECT_EQ(file_size(path_), static_cast<long long>(store_lines(bets).size())) << "the rollback did not fail";
        EXPECT_EQ(test_support::lines_with(log.finish(), "action: rollback | result: fail").size(), 1u);
    }
    // The files could be written again; this coordinator does not write any more.
    EXPECT_EQ(reply_of(bets_request(id, 1, 0, bets)), "ERROR 7");
    EXPECT_EQ(reply_of(open_request(1, "b.csv")), "ERROR 7");
    EXPECT_EQ(reply_of(done_request(1)), "ERROR 7");
    EXPECT_EQ(file_size(journal_), journal_before);
    coordinator_->close();
    ASSERT_NO_FATAL_FAILURE(make(1));
    EXPECT_EQ(file_size(path_), 0) << "recovery keeps unvouched bets";
    EXPECT_EQ(open_source(1, "a.csv"), id);
    EXPECT_EQ(reply_of(bets_request(id, 1, 0, bets)), "ACK 2");
    EXPECT_EQ(slurp(path_), store_lines(bets));
}

// A real full disk: a 64 KiB tmpfs (needs root; skipped otherwise). The
// journal's page has room left, the empty store has none: the bets' write is
// the one that fails with ENOSPC.
class FullDiskTest : public CoordinatorTest {
protected:
    void SetUp() override {
        if (::geteuid() != 0) SKIP_OR_FAIL("mounting a small tmpfs needs root");
        mount_ = dir_.file("disk");
        ASSERT_EQ(::mkdir(mount_.c_str(), 0700), 0);
        if (::mount("tmpfs", mount_.c_str(), "tmpfs", 0, "size=64k") != 0)
            SKIP_OR_FAIL("cannot mount a tmpfs: " << std::strerror(errno));
        mounted_ = true;
    }
    void TearDown() override {
        if (coordinator_) coordinator_->close();
        if (mounted_) {
            EXPECT_EQ(::umount(mount_.c_str()), 0) << std::strerror(errno);
        }
    }
    // Writes a file beside the store until the disk is full.
    void fill_disk() {
        Fd filler(::open(filler_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600));
        ASSERT_TRUE(filler.valid());
        const std::string block(4096, 'x');
        while (::write(filler.get(), block.data(), block.size()) > 0) {}
        ASSERT_EQ(errno, ENOSPC);
    }
    std::string filler_path() const { return mount_ + "/filler"; }

    std::string mount_;
    bool mounted_ = false;
};

TEST_F(FullDiskTest, FullDiskIsError7StoresNothingAndTheFrameStoresOnceThereIsSpace) {
    const std::string store = mount_ + "/bets.csv", journal = journal_path_for(store);
    ASSERT_NO_FATAL_FAILURE(make_at(store, 1));
    const ipc::SourceId id = open_source(1, "a.csv");
    ASSERT_NO_FATAL_FAILURE(fill_disk());
    const long long journal_before = file_size(journal);
    const std::vector<Bet> bets = bets_of(1, 1, 3);
    {
        test_support::StdoutCapture log;
        EXPECT_EQ(reply_of(bets_request(id, 1, 0, bets)), "ERROR 7");
        EXPECT_EQ(test_support::lines_with(log.finish(), "store_bets").size(), 1u);
    }
    EXPECT_EQ(file_size(store), 0);
    EXPECT_EQ(file_size(journal), journal_before);
    ASSERT_EQ(::unlink(filler_path().c_str()), 0);
    const ipc::Reply retry = answer(bets_request(id, 1, 0, bets));
    EXPECT_EQ(describe(retry), "ACK 3");
    EXPECT_EQ(retry.stored_now, 3u);
    EXPECT_EQ(slurp(store), store_lines(bets));
    const ipc::Reply resume = answer(open_request(1, "a.csv"));
    EXPECT_EQ(describe(resume), "RESUME 3");
    EXPECT_EQ(resume_digest(resume), digest_of(bets)) << "the failed try must not count in the digest";
}

} // namespace
