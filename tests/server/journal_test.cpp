// Crash recovery from the outside of one process: the journal's replay
// (restored state, torn last line, corrupt lines) and Coordinator::open on a
// store that disagrees with its journal, in temp directories.
#include "server/coordinator.hpp"
#include "server/journal.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace {

using test_support::bets;
using test_support::done;
using test_support::exists;
using test_support::file_size;
using test_support::slurp;
using test_support::spit;
using test_support::TempDir;
using test_support::winners;

// Opens the journal at `path`; a failure to open fails the test.
Journal open_ok(const std::string& path, RecoveredState& state) {
    std::string error;
    Journal journal = Journal::open(path, 0, state, error);
    EXPECT_TRUE(journal.is_open()) << "Journal::open(" << path << "): " << error;
    EXPECT_EQ(error, "");
    return journal;
}

// Each test's journal file, in a fresh directory.
class JournalTest : public ::testing::Test {
protected:
    // Writes `content` as the journal file and opens it: what a restart replays.
    Journal replay(const std::string& content, RecoveredState& state) {
        spit(path_, content);
        return open_ok(path_, state);
    }

    TempDir dir_;
    const std::string path_ = dir_.file("bets.csv.journal");
};

// ---- coordinator helpers ------------------------------------------------------

// "ACK 2", "ERROR 3", "WINNERS 1": readable in failure messages.
std::string describe(const ipc::Reply& reply) {
    if (reply.frame.size() < wire::kReplyHeaderSize) return "<short reply>";
    const auto decoded = wire::decode_reply_header(reply.frame.data());
    if (!decoded.ok()) return "<bad reply>";
    return test_support::describe(decoded.value());
}

std::string answer(Coordinator& coordinator, const ipc::Request& request) {
    const auto reply = coordinator.handle(request);
    if (!reply) return "<parked>";
    return describe(*reply);
}

std::vector<std::string> documents_of(const ipc::Reply& reply) {
    if (reply.frame.size() < wire::kReplyHeaderSize) return {"<short reply>"};
    const auto header = wire::decode_reply_header(reply.frame.data());
    if (!header.ok() || header.value().type != wire::ReplyType::winners) return {"<not WINNERS: " + describe(reply) + ">"};
    if (reply.frame.size() != wire::kReplyHeaderSize + header.value().value * 8u) return {"<bad size>"};
    const auto documents = wire::decode_documents(reply.frame.data() + wire::kReplyHeaderSize, header.value().value);
    return documents.ok() ? documents.value() : std::vector<std::string>{"<bad documents>"};
}

// Store lines written by hand (agency,first,last,document,birthdate,number).
const std::string kA1Win = "1,Ana,Gómez,00000042,1990-01-31,7574\n";
const std::string kA1Lose = "1,Luis,Paz,12345678,1985-12-01,1234\n";
const std::string kA1Win2 = "1,Eva,Ruiz,23456789,1970-07-07,7574\n";
const std::string kA2Win = "2,Marta,Sosa,34567890,2000-02-29,7574\n";
const std::string kA2Lose = "2,Juan,Díaz,45678901,1999-12-31,9999\n";

// A store in a fresh directory, opened by one coordinator after another as by a
// server that restarts over it.
class JournalCoordinator : public ::testing::Test {
protected:
    std::optional<Coordinator> open_coordinator(std::uint32_t agencies) {
        return Coordinator::open({agencies, store_, false}, error_);
    }
    // A run of the server before the one under test: a coordinator opened,
    // driven by `requests`, and closed.
    void previous_run(std::uint32_t agencies, const std::function<void(Coordinator&)>& requests) {
        auto coordinator = open_coordinator(agencies);
        ASSERT_TRUE(coordinator) << error_;
        requests(*coordinator);
        coordinator->close();
    }

    TempDir dir_;
    const std::string store_ = dir_.file("bets.csv");
    std::string error_;
};

} // namespace

// ---- Journal ------------------------------------------------------------------

TEST_F(JournalTest, NewJournalHasNoHistoryAndIsCreatedEmpty) {
    ASSERT_FALSE(exists(path_));
    RecoveredState state;
    Journal journal = open_ok(path_, state);
    EXPECT_FALSE(state.had_journal);
    EXPECT_TRUE(state.last_batch.empty());
    EXPECT_TRUE(state.done.empty());
    EXPECT_EQ(state.store_length, 0u);
    EXPECT_EQ(state.batches, 0u);
    EXPECT_EQ(state.torn_bytes, 0u);
    EXPECT_TRUE(exists(path_));
    EXPECT_EQ(slurp(path_), "base 0\n") << "a new journal is born with its base line";
    EXPECT_EQ(journal.path(), path_);
    EXPECT_EQ(journal_path_for(dir_.file("bets.csv")), path_);
}

TEST_F(JournalTest, AnEmptyExistingJournalIsAJournal) {
    RecoveredState state;
    Journal journal = replay("", state);
    EXPECT_TRUE(state.had_journal);
    EXPECT_EQ(state.batches, 0u);
    EXPECT_EQ(state.store_length, 0u);
}

TEST_F(JournalTest, RecordsAreReplayedOnReopen) {
    {
        RecoveredState state;
        Journal journal = open_ok(path_, state);
        ASSERT_TRUE(journal.record_batch(1, 1, 100));
        ASSERT_TRUE(journal.record_batch(2, 1, 250));
        ASSERT_TRUE(journal.record_batch(1, 2, 400));
        ASSERT_TRUE(journal.record_done(2));
        ASSERT_TRUE(journal.record_batch(3, 1, 512));
        ASSERT_TRUE(journal.record_done(3));
        ASSERT_TRUE(journal.sync());
        journal.close();
        EXPECT_FALSE(journal.is_open());
    }
    // The documented text format (README: one text line per decision).
    EXPECT_EQ(slurp(path_), "base 0\nbatch 1 1 100\nbatch 2 1 250\nbatch 1 2 400\ndone 2\nbatch 3 1 512\ndone 3\n");

    RecoveredState state;
    Journal journal = open_ok(path_, state);
    EXPECT_TRUE(state.had_journal);
    const std::map<std::uint32_t, std::uint32_t> expected_batches{{1, 2}, {2, 1}, {3, 1}};
    EXPECT_EQ(state.last_batch, expected_batches);
    EXPECT_EQ(state.done, (std::set<std::uint32_t>{2, 3}));
    EXPECT_EQ(state.store_length, 512u) << "the last batch line's length";
    EXPECT_EQ(state.batches, 4u);
    EXPECT_EQ(state.torn_bytes, 0u);
    EXPECT_EQ(file_size(path_), static_cast<long long>(slurp(path_).size()));

    // A reopened journal appends after what it replayed, and a later reopen sees both.
    ASSERT_TRUE(journal.record_batch(1, 3, 600));
    ASSERT_TRUE(journal.record_done(1));
    journal.close();
    RecoveredState again;
    Journal reopened = open_ok(path_, again);
    EXPECT_EQ(again.last_batch[1], 3u);
    EXPECT_EQ(again.done, (std::set<std::uint32_t>{1, 2, 3}));
    EXPECT_EQ(again.store_length, 600u);
    EXPECT_EQ(again.batches, 5u);
}

TEST_F(JournalTest, StoreLengthIsTheLastBatchLineEvenIfSmallerAndDoneLinesDoNotChangeIt) {
    RecoveredState state;
    Journal journal = replay("batch 1 1 900\nbatch 2 1 300\ndone 1\n", state);
    EXPECT_EQ(state.store_length, 300u);
    EXPECT_EQ(state.done, (std::set<std::uint32_t>{1}));
}

TEST_F(JournalTest, LargeJournalIsReplayedAcrossReadChunks) {
    std::string text;
    const std::uint32_t kBatches = 20000; // ~400 KB: several 64 KiB read chunks
    for (std::uint32_t batch = 1; batch <= kBatches; ++batch)
        text += "batch " + std::to_string(batch % 7 + 1) + " " + std::to_string(batch) + " " +
                std::to_string(1000ull * batch) + "\n";
    text += "done 4\n";
    RecoveredState state;
    Journal journal = replay(text, state);
    EXPECT_EQ(state.batches, kBatches);
    EXPECT_EQ(state.store_length, 1000ull * kBatches);
    EXPECT_EQ(state.last_batch.size(), 7u);
    EXPECT_EQ(state.last_batch[kBatches % 7 + 1], kBatches);
    EXPECT_EQ(state.done, (std::set<std::uint32_t>{4}));
    EXPECT_EQ(state.torn_bytes, 0u);
    EXPECT_EQ(file_size(path_), static_cast<long long>(text.size()));
}

TEST_F(JournalTest, TornLastLineIsDroppedAndTheFileCutToCompleteLines) {
    const std::string complete = "batch 1 1 100\nbatch 1 2 200\n";
    const std::string torn = "batch 1 3 30"; // died in the middle of the write
    RecoveredState state;
    Journal journal = replay(complete + torn, state);
    EXPECT_TRUE(state.had_journal);
    EXPECT_EQ(state.torn_bytes, torn.size());
    EXPECT_EQ(state.last_batch[1], 2u) << "the torn line must not count";
    EXPECT_EQ(state.store_length, 200u);
    EXPECT_EQ(state.batches, 2u);
    EXPECT_EQ(file_size(path_), static_cast<long long>(complete.size())) << "file not cut to its complete lines";
    EXPECT_EQ(slurp(path_), complete);

    // New records go after the complete lines, not glued to the torn one.
    ASSERT_TRUE(journal.record_batch(1, 3, 300));
    journal.close();
    EXPECT_EQ(slurp(path_), complete + "batch 1 3 300\n");
    RecoveredState again;
    Journal reopened = open_ok(path_, again);
    EXPECT_EQ(again.torn_bytes, 0u);
    EXPECT_EQ(again.last_batch[1], 3u);
    EXPECT_EQ(again.store_length, 300u);
}

TEST_F(JournalTest, TornLineThatWouldParseIsStillDropped) {
    RecoveredState state;
    Journal journal = replay("batch 1 1 100\ndone 1", state); // "done 1" without its '\n'
    EXPECT_EQ(state.torn_bytes, 6u);
    EXPECT_TRUE(state.done.empty()) << "a DONE whose line is torn was never acknowledged";
    EXPECT_EQ(file_size(path_), 14);
}

TEST_F(JournalTest, OnlyATornLineIsCutToEmpty) {
    RecoveredState state;
    Journal journal = replay("batc", state);
    EXPECT_TRUE(state.had_journal);
    EXPECT_EQ(state.torn_bytes, 4u);
    EXPECT_EQ(state.batches, 0u);
    EXPECT_EQ(file_size(path_), 0);
}

TEST_F(JournalTest, TornLineAfterALongJournalIsCutAtTheRightOffset) {
    std::string complete;
    for (int batch = 1; batch <= 9000; ++batch)
        complete += "batch 2 " + std::to_string(batch) + " " + std::to_string(batch * 10) + "\n";
    RecoveredState state;
    Journal journal = replay(complete + "batch 2 9001 9", state);
    EXPECT_EQ(state.torn_bytes, 14u);
    EXPECT_EQ(state.last_batch[2], 9000u);
    EXPECT_EQ(file_size(path_), static_cast<long long>(complete.size()));
}

// A complete line that does not parse is not a crash artefact: refuse, and say where.
TEST_F(JournalTest, CorruptCompleteLineFailsNamingPathAndLine) {
    const std::vector<std::string> corrupt{"bogus", "batch 1 -1 10", "done -2", "base 5 6",        "batch 1 x 10",   "batch 1 1",       "batch 1 1 10 extra",
                                           "done",         "done 1 2",       "batch",           "",
                                           "done x",       "batch 1 99999999999 10"};
    for (const std::string& bad : corrupt) {
        SCOPED_TRACE("corrupt line: '" + bad + "'");
        TempDir dir;
        const std::string path = dir.file("bets.csv.journal");
        const std::string content = "batch 1 1 100\ndone 2\n" + bad + "\nbatch 1 2 200\n";
        spit(path, content);
        RecoveredState state;
        std::string error;
        Journal journal = Journal::open(path, 0, state, error);
        EXPECT_FALSE(journal.is_open());
        EXPECT_NE(error.find(path + ":3"), std::string::npos) << "error: " << error;
        EXPECT_EQ(slurp(path), content) << "a corrupt journal must be left as it is";
    }
}

TEST_F(JournalTest, CorruptLineDeepInALongJournalNamesItsLine) {
    std::string content;
    for (int batch = 1; batch <= 6000; ++batch)
        content += "batch 3 " + std::to_string(batch) + " " + std::to_string(batch * 100) + "\n";
    content += "batch 3 6001 oops\n";
    spit(path_, content);
    RecoveredState state;
    std::string error;
    Journal journal = Journal::open(path_, 0, state, error);
    EXPECT_FALSE(journal.is_open());
    EXPECT_NE(error.find(path_ + ":6001"), std::string::npos) << "error: " << error;
}

TEST_F(JournalTest, UnreadablePathFails) {
    RecoveredState state;
    std::string error;
    Journal journal = Journal::open(dir_.file("no/such/dir/j"), 0, state, error);
    EXPECT_FALSE(journal.is_open());
    EXPECT_NE(error, "");
}

// ---- Coordinator::open against its journal -------------------------------------

TEST_F(JournalCoordinator, StateSurvivesAReopen) {
    ASSERT_NO_FATAL_FAILURE(previous_run(2, [](Coordinator& coordinator) {
        EXPECT_EQ(answer(coordinator, bets(1, 1, 1, kA1Win)), "ACK 1");
        EXPECT_EQ(answer(coordinator, bets(1, 2, 1, kA1Lose)), "ACK 1");
        EXPECT_EQ(answer(coordinator, bets(2, 1, 1, kA2Lose)), "ACK 1");
        EXPECT_EQ(answer(coordinator, done(2)), "ACK 0");
    }));
    const std::string before = slurp(store_);
    EXPECT_EQ(before, kA1Win + kA1Lose + kA2Lose);
    EXPECT_EQ(slurp(journal_path_for(store_)), "base 0\nbatch 1 1 " + std::to_string(kA1Win.size()) + "\nbatch 1 2 " +
                                                  std::to_string((kA1Win + kA1Lose).size()) + "\nbatch 2 1 " +
                                                  std::to_string(before.size()) + "\ndone 2\n");

    auto coordinator = open_coordinator(2);
    ASSERT_TRUE(coordinator) << error_;
    EXPECT_FALSE(coordinator->draw_done());
    EXPECT_EQ(slurp(store_), before) << "a consistent store must not change on open";
    // Batch numbers are restored: resends are duplicates, the next one is stored, a gap is refused.
    const auto resent = coordinator->handle(bets(1, 2, 1, kA1Lose));
    ASSERT_TRUE(resent);
    EXPECT_EQ(resent->outcome, ipc::Outcome::duplicate);
    EXPECT_EQ(answer(*coordinator, bets(1, 1, 1, kA1Win)), "ACK 1");
    EXPECT_EQ(answer(*coordinator, bets(1, 4, 1, kA1Win2)), "ERROR 4");
    EXPECT_EQ(slurp(store_), before) << "duplicates and gaps store nothing";
    // The done set is restored: agency 2 may not add bets any more.
    EXPECT_EQ(answer(*coordinator, bets(2, 2, 1, kA2Win)), "ERROR 5");
    EXPECT_EQ(answer(*coordinator, bets(1, 3, 1, kA1Win2)), "ACK 1");
    EXPECT_EQ(answer(*coordinator, winners(1)), "<parked>");
    EXPECT_EQ(answer(*coordinator, done(2)), "ACK 0") << "DONE is idempotent across restarts";
    EXPECT_FALSE(coordinator->draw_done());
    EXPECT_EQ(answer(*coordinator, done(1)), "ACK 0");
    EXPECT_TRUE(coordinator->draw_done());
    EXPECT_EQ(documents_of(coordinator->winners_reply(1)), (std::vector<std::string>{"00000042", "23456789"}));
    EXPECT_EQ(documents_of(coordinator->winners_reply(2)), std::vector<std::string>{});
    coordinator->close();
}

// A crash between the store write and the journal line: the tail is cut.
TEST_F(JournalCoordinator, StoreLongerThanVouchedIsTruncated) {
    ASSERT_NO_FATAL_FAILURE(previous_run(1, [](Coordinator& coordinator) {
        EXPECT_EQ(answer(coordinator, bets(1, 1, 2, kA1Lose + kA1Win)), "ACK 2");
    }));
    const std::string vouched = slurp(store_);
    const std::string tail = kA1Win2 + "1,Torn,Li"; // a whole unvouched line and half of another
    spit(store_, tail, /*append=*/true);
    ASSERT_EQ(file_size(store_), static_cast<long long>(vouched.size() + tail.size()));

    auto coordinator = open_coordinator(1);
    ASSERT_TRUE(coordinator) << error_;
    EXPECT_EQ(file_size(store_), static_cast<long long>(vouched.size())) << "the unvouched tail was not dropped";
    EXPECT_EQ(slurp(store_), vouched);
    // The client resends the unacknowledged batch 2: stored once, right after the vouched part.
    EXPECT_EQ(answer(*coordinator, bets(1, 2, 1, kA1Win2)), "ACK 1");
    EXPECT_EQ(slurp(store_), vouched + kA1Win2);
    EXPECT_EQ(answer(*coordinator, done(1)), "ACK 0");
    ASSERT_TRUE(coordinator->draw_done());
    EXPECT_EQ(documents_of(coordinator->winners_reply(1)), (std::vector<std::string>{"00000042", "23456789"}));
    coordinator->close();
}

TEST_F(JournalCoordinator, StoreShorterThanVouchedIsRefused) {
    ASSERT_NO_FATAL_FAILURE(previous_run(1, [](Coordinator& coordinator) {
        EXPECT_EQ(answer(coordinator, bets(1, 1, 2, kA1Lose + kA1Win)), "ACK 2");
    }));
    const std::string full = slurp(store_);
    const std::string journal_before = slurp(journal_path_for(store_));
    ASSERT_EQ(::truncate(store_.c_str(), static_cast<off_t>(kA1Lose.size())), 0); // acknowledged bets lost
    error_.clear();
    auto coordinator = open_coordinator(1);
    EXPECT_FALSE(coordinator.has_value()) << "opened a store that lost acknowledged bets";
    EXPECT_NE(error_, "");
    EXPECT_NE(error_.find(store_), std::string::npos) << "error should name the store: " << error_;
    EXPECT_EQ(slurp(store_), kA1Lose) << "the store must be left as it is";
    EXPECT_EQ(slurp(journal_path_for(store_)), journal_before) << "the journal must be left as it is";
}

TEST_F(JournalCoordinator, CorruptJournalRefusesToOpen) {
    spit(store_, kA1Win);
    spit(journal_path_for(store_), "batch 1 1 " + std::to_string(kA1Win.size()) + "\nnot a line\n");
    auto coordinator = open_coordinator(1);
    EXPECT_FALSE(coordinator.has_value());
    EXPECT_NE(error_.find(journal_path_for(store_) + ":2"), std::string::npos) << error_;
    EXPECT_EQ(slurp(store_), kA1Win);
}

TEST_F(JournalCoordinator, TornJournalLineAndUnvouchedStoreTailTogether) {
    ASSERT_NO_FATAL_FAILURE(previous_run(1, [](Coordinator& coordinator) {
        EXPECT_EQ(answer(coordinator, bets(1, 1, 1, kA1Lose)), "ACK 1");
    }));
    const std::string vouched = slurp(store_);
    const std::string journal = slurp(journal_path_for(store_));
    spit(store_, kA1Win, true);                                   // batch 2's bets written...
    spit(journal_path_for(store_), "batch 1 2 ", true);           // ...its journal line torn
    auto coordinator = open_coordinator(1);
    ASSERT_TRUE(coordinator) << error_;
    EXPECT_EQ(slurp(store_), vouched);
    EXPECT_EQ(slurp(journal_path_for(store_)), journal);
    EXPECT_EQ(answer(*coordinator, bets(1, 2, 1, kA1Win)), "ACK 1") << "batch 2 must be new again";
    EXPECT_EQ(slurp(store_), vouched + kA1Win);
    coordinator->close();
}

// No journal (an older or hand-made store): the store is taken as it is.
TEST_F(JournalCoordinator, StoreWithoutJournalIsTakenAsItIs) {
    spit(store_, kA1Win + kA2Lose);
    auto coordinator = open_coordinator(2);
    ASSERT_TRUE(coordinator) << error_;
    EXPECT_EQ(slurp(store_), kA1Win + kA2Lose);
    EXPECT_TRUE(exists(journal_path_for(store_)));
    coordinator->close();
}

// The store taken as it is must stay as it is when the server restarts
// before anything new was stored (its journal is still empty then).
TEST_F(JournalCoordinator, StoreWithoutJournalSurvivesASecondOpen) {
    spit(store_, kA1Win + kA2Lose);
    ASSERT_NO_FATAL_FAILURE(previous_run(2, [](Coordinator&) {}));
    auto coordinator = open_coordinator(2);
    ASSERT_TRUE(coordinator) << error_;
    EXPECT_EQ(slurp(store_), kA1Win + kA2Lose) << "the second open dropped the bets the first one had kept";
    coordinator->close();
}

// Every agency was done before the crash: the draw runs as the coordinator opens.
TEST_F(JournalCoordinator, AllDoneRunsTheDrawAtOpen) {
    ASSERT_NO_FATAL_FAILURE(previous_run(2, [](Coordinator& coordinator) {
        EXPECT_EQ(answer(coordinator, bets(1, 1, 3, kA1Win + kA1Lose + kA1Win2)), "ACK 3");
        EXPECT_EQ(answer(coordinator, bets(2, 1, 2, kA2Lose + kA2Win)), "ACK 2");
        EXPECT_EQ(answer(coordinator, done(1)), "ACK 0");
        EXPECT_EQ(answer(coordinator, done(2)), "ACK 0");
        EXPECT_TRUE(coordinator.draw_done());
    }));
    const std::string before = slurp(store_);
    auto coordinator = open_coordinator(2);
    ASSERT_TRUE(coordinator) << error_;
    EXPECT_TRUE(coordinator->draw_done()) << "every agency was done: the draw must run at open";
    EXPECT_EQ(documents_of(coordinator->winners_reply(1)), (std::vector<std::string>{"00000042", "23456789"}));
    EXPECT_EQ(documents_of(coordinator->winners_reply(2)), std::vector<std::string>{"34567890"});
    const auto reply = coordinator->handle(winners(2));
    ASSERT_TRUE(reply) << "WINNERS must be answered at once after a recovered draw";
    EXPECT_EQ(documents_of(*reply), std::vector<std::string>{"34567890"});
    // A rerun of an agency stores nothing.
    EXPECT_EQ(answer(*coordinator, bets(1, 1, 3, kA1Win + kA1Lose + kA1Win2)), "ACK 3");
    EXPECT_EQ(answer(*coordinator, done(1)), "ACK 0");
    EXPECT_EQ(slurp(store_), before);
    coordinator->close();
}

TEST_F(JournalCoordinator, SomeAgenciesDoneDoesNotDrawAtOpen) {
    ASSERT_NO_FATAL_FAILURE(previous_run(3, [](Coordinator& coordinator) {
        EXPECT_EQ(answer(coordinator, done(1)), "ACK 0");
        EXPECT_EQ(answer(coordinator, done(3)), "ACK 0");
    }));
    auto coordinator = open_coordinator(3);
    ASSERT_TRUE(coordinator) << error_;
    EXPECT_FALSE(coordinator->draw_done());
    EXPECT_EQ(answer(*coordinator, done(2)), "ACK 0");
    EXPECT_TRUE(coordinator->draw_done());
    coordinator->close();
}

// The configured number of agencies grew after the crash: not everyone is done.
TEST_F(JournalCoordinator, DoneSetFromAFormerConfigurationDoesNotForceADraw) {
    spit(journal_path_for(store_), "done 1\ndone 2\n");
    auto coordinator = open_coordinator(3);
    ASSERT_TRUE(coordinator) << error_;
    EXPECT_FALSE(coordinator->draw_done());
    coordinator->close();
}
