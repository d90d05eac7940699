// What SERVER_FSYNC promises (CONTRACT.md §6, §9), seen through the commit's
// Syncer (syncer.hpp): with a syncer, every commit makes the store's new
// bets durable and then the journal lines that vouch for them, once each;
// a sync that fails answers ERROR 7 and keeps nothing, in the files or in
// memory, while every bet acknowledged before stays; and in a whole server
// no reply leaves before the sync of its commit has returned.
#include "server/coordinator.hpp"
#include "server/server.hpp"

#include "coordinator_support.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace coordinator_support;
using test_support::file_size;
using test_support::slurp;
using test_support::TempDir;

// One call of the syncer: which file, and how long the store and the journal
// were at that moment.
struct SyncCall {
    std::string file; // "store" or "journal"
    long long store_bytes = 0;
    long long journal_bytes = 0;
};

// Records every sync (and really syncs); the call numbered `fail_call`
// (from 1) fails with EIO instead.
class RecordingSyncer final : public Syncer {
public:
    RecordingSyncer(std::string store, std::string journal) : store_(std::move(store)), journal_(std::move(journal)) {}

    bool sync(int fd, const std::string& path) override {
        const std::string file = path == store_ ? "store" : path == journal_ ? "journal" : "other: " + path;
        calls.push_back({file, file_size(store_), file_size(journal_)});
        if (calls.size() == fail_call) {
            errno = EIO;
            return false;
        }
        return ::fsync(fd) == 0;
    }

    std::vector<std::string> files() const {
        std::vector<std::string> names;
        for (const SyncCall& call : calls) names.push_back(call.file);
        return names;
    }

    std::vector<SyncCall> calls;
    std::size_t fail_call = 0; // 0: none fails

private:
    std::string store_, journal_;
};

class CommitDurability : public ::testing::Test {
protected:
    void make(std::uint32_t agencies, Syncer* syncer) {
        std::string error;
        coordinator_.reset();
        coordinator_ = Coordinator::open({agencies, path_, syncer}, error);
        ASSERT_TRUE(coordinator_.has_value()) << error;
        connection_ = coordinator_->new_connection();
    }
    Coordinator& coordinator() { return *coordinator_; }
    std::string reply_of(const ipc::Request& request) { return answer(*coordinator_, request, connection_); }
    void expect_failed_sync_keeps_nothing(std::size_t failing);

    TempDir dir_;
    std::string path_ = dir_.file("bets.csv");
    std::string journal_ = journal_path_for(path_);
    RecordingSyncer syncer_{path_, journal_};
    std::optional<Coordinator> coordinator_;
    std::uint64_t connection_ = 0;
};

// A round of bets: nothing is synced while the requests are only staged;
// the commit syncs the store once, holding the round's bets and not yet
// the journal lines, then the journal once, holding them.
TEST_F(CommitDurability, EachCommitSyncsTheStoreThenTheJournalOnce) {
    ASSERT_NO_FATAL_FAILURE(make(1, &syncer_));
    EXPECT_EQ(reply_of(open_request(1, "a.csv")), "RESUME 0");
    EXPECT_EQ(syncer_.files(), std::vector<std::string>{"journal"}) << "an OPEN writes journal lines only";
    syncer_.calls.clear();

    const std::vector<Bet> bets = bets_of(1, 1, 6);
    const long long journal_before = file_size(journal_);
    EXPECT_TRUE(coordinator().handle(bets_request(0, 1, 0, slice(bets, 0, 3)), connection_).has_value());
    EXPECT_TRUE(coordinator().handle(bets_request(0, 1, 3, slice(bets, 3, 6)), connection_).has_value());
    EXPECT_TRUE(syncer_.calls.empty()) << "a staged request was synced before its commit";
    ASSERT_TRUE(coordinator().commit());

    ASSERT_EQ(syncer_.files(), (std::vector<std::string>{"store", "journal"}))
        << "one sync of each file per commit, the store's first";
    const long long store_after = static_cast<long long>(store_lines(bets).size());
    EXPECT_EQ(syncer_.calls[0].store_bytes, store_after) << "the store was synced before its bets were written";
    EXPECT_EQ(syncer_.calls[0].journal_bytes, journal_before)
        << "the journal vouched for the bets before they were durable";
    EXPECT_GT(syncer_.calls[1].journal_bytes, journal_before) << "the journal was synced before its lines were written";
    EXPECT_EQ(slurp(path_), store_lines(bets));
}

// A DONE writes no bet: its commit syncs the journal alone; a round with
// nothing staged (a frame already stored) syncs nothing.
TEST_F(CommitDurability, ADoneSyncsOnlyTheJournalAndARepeatedFrameNothing) {
    ASSERT_NO_FATAL_FAILURE(make(2, &syncer_));
    const std::vector<Bet> bets = bets_of(1, 1, 2);
    EXPECT_EQ(reply_of(open_request(1, "a.csv")), "RESUME 0");
    EXPECT_EQ(reply_of(bets_request(0, 1, 0, bets)), "ACK 2");
    syncer_.calls.clear();
    EXPECT_EQ(reply_of(done_request(1)), "ACK 0");
    EXPECT_EQ(syncer_.files(), std::vector<std::string>{"journal"});
    syncer_.calls.clear();
    EXPECT_EQ(reply_of(bets_request(0, 1, 0, bets)), "ACK 2");
    EXPECT_TRUE(syncer_.calls.empty()) << "a frame stored before needs no sync";
}

// SERVER_FSYNC=false: no syncer, and the commit still writes both files.
TEST_F(CommitDurability, WithoutASyncerTheCommitStillWritesBothFiles) {
    ASSERT_NO_FATAL_FAILURE(make(1, nullptr));
    const std::vector<Bet> bets = bets_of(1, 1, 3);
    EXPECT_EQ(reply_of(open_request(1, "a.csv")), "RESUME 0");
    EXPECT_EQ(reply_of(bets_request(0, 1, 0, bets)), "ACK 3");
    EXPECT_EQ(slurp(path_), store_lines(bets));
    EXPECT_NE(slurp(journal_).find("bets 0 3 "), std::string::npos) << slurp(journal_);
    EXPECT_TRUE(syncer_.calls.empty());
}

// Bets acknowledged, then a frame whose sync numbered `failing` in its
// commit (1: the store's, 2: the journal's) fails: that frame is ERROR 7
// with nothing of it kept, in the files or in memory; the acknowledged bets
// are all there, also after a restart; the same frame sent again is stored once.
void CommitDurability::expect_failed_sync_keeps_nothing(std::size_t failing) {
    ASSERT_NO_FATAL_FAILURE(make(1, &syncer_));
    const std::vector<Bet> bets = bets_of(1, 1, 5);
    EXPECT_EQ(reply_of(open_request(1, "a.csv")), "RESUME 0");
    EXPECT_EQ(reply_of(bets_request(0, 1, 0, slice(bets, 0, 2))), "ACK 2");
    const std::string store_before = slurp(path_), journal_before = slurp(journal_);

    syncer_.calls.clear();
    syncer_.fail_call = failing;
    {
        test_support::StdoutCapture log;
        EXPECT_EQ(reply_of(bets_request(0, 1, 2, slice(bets, 2, 5))), "ERROR 7");
        EXPECT_EQ(test_support::lines_with(log.finish(), "action: store_bets | result: fail").size(), 1u);
    }
    EXPECT_EQ(syncer_.calls.size(), failing) << "the commit went on after a failed sync";
    syncer_.fail_call = 0;
    EXPECT_EQ(slurp(path_), store_before) << "bets of the refused frame stayed in the store";
    EXPECT_EQ(slurp(journal_), journal_before) << "journal lines of the refused frame stayed";
    EXPECT_EQ(reply_of(open_request(1, "a.csv")), "RESUME 2") << "the refused frame still counts in memory";

    ASSERT_NO_FATAL_FAILURE(make(1, &syncer_)); // a restart: the acknowledged bets, nothing more
    EXPECT_EQ(reply_of(open_request(1, "a.csv")), "RESUME 2");
    EXPECT_EQ(reply_of(bets_request(0, 1, 2, slice(bets, 2, 5))), "ACK 3");
    EXPECT_EQ(slurp(path_), store_lines(bets));
}

TEST_F(CommitDurability, AFailedStoreSyncIsError7AndLosesNothingAcknowledged) {
    expect_failed_sync_keeps_nothing(1);
}

TEST_F(CommitDurability, AFailedJournalSyncIsError7AndLosesNothingAcknowledged) {
    expect_failed_sync_keeps_nothing(2);
}

// ---- a whole server: replies against syncs ------------------------------------------

// A Syncer for a server running in a child process: before each sync it
// tells the test (one byte on `told`) and waits for its go-ahead (one byte
// on `go`; once the test closes `go`, syncs no longer wait).
class GatedSyncer final : public Syncer {
public:
    GatedSyncer(int told, int go) : told_(told), go_(go) {}
    bool sync(int fd, const std::string&) override {
        char byte = 's';
        while (::write(told_, &byte, 1) < 0 && errno == EINTR) {}
        while (::read(go_, &byte, 1) < 0 && errno == EINTR) {}
        return ::fsync(fd) == 0;
    }

private:
    int told_, go_;
};

bool readable_within(int fd, int milliseconds) {
    pollfd ready{fd, POLLIN, 0};
    int got;
    while ((got = ::poll(&ready, 1, milliseconds)) < 0 && errno == EINTR) {}
    return got > 0;
}

// The port of the server's `listen` line in `log`, waiting up to 30 s for it.
std::uint16_t await_listen_port(const std::string& log) {
    const std::regex listen(R"(action: listen \| result: success \|.*port: (\d+))");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
        std::smatch match;
        const std::string text = slurp(log);
        if (std::regex_search(text, match, listen)) return static_cast<std::uint16_t>(std::stoi(match[1]));
        std::this_thread::sleep_for(std::chrono::milliseconds(5)); // polling a file that no event announces
    }
    ADD_FAILURE() << "no listen line in " << log;
    return 0;
}

int connect_to(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool send_frame(int fd, const wire::Bytes& frame) {
    return ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(frame.size());
}

// The 6-byte reply header as "TYPE value" (waiting up to 30 s).
std::string read_reply(int fd, std::size_t extra_bytes = 0) {
    std::vector<std::uint8_t> bytes(wire::kReplyHeaderSize + extra_bytes);
    std::size_t got = 0;
    while (got < bytes.size() && readable_within(fd, 30000)) {
        const ssize_t n = ::recv(fd, bytes.data() + got, bytes.size() - got, 0);
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    if (got < bytes.size()) return "<no reply>";
    return describe(ipc::Reply{0, 0, bytes});
}

// How long the test listens for a reply that must not come while the
// coordinator is held inside a sync. A correct server cannot answer in
// that time whatever the load (it is blocked); a server that replied before
// its commit has its reply on the socket within microseconds.
constexpr int kSilenceMs = 300;

// A server in a child process whose syncs the test holds (GatedSyncer).
class HeldServer {
public:
    explicit HeldServer(const TempDir& dir) : log_(dir.file("server.log")) {
        int told[2], go[2];
        if (::pipe2(told, O_CLOEXEC) != 0 || ::pipe2(go, O_CLOEXEC) != 0) ADD_FAILURE() << "pipe2";
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(told[0]); // the test's ends: a sync must see EOF once the test closes `go`
            ::close(go[1]);
            run(dir, told[1], go[0]);
        }
        ::close(told[1]);
        ::close(go[0]);
        told_ = told[0];
        go_ = go[1];
        if (pid_ > 0) port_ = await_listen_port(log_);
    }
    ~HeldServer() {
        ::close(go_); // syncs no longer wait
        ::close(told_);
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int status = 0;
            ::waitpid(pid_, &status, 0);
            EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "server status " << status;
        }
    }
    std::uint16_t port() const { return port_; }
    // Waits until the coordinator is inside a sync, and holds it there.
    bool in_sync() {
        char byte;
        return readable_within(told_, 30000) && ::read(told_, &byte, 1) == 1;
    }
    void let_go() { EXPECT_EQ(::write(go_, "g", 1), 1); }

private:
    [[noreturn]] void run(const TempDir& dir, int told, int go) {
        const int out = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        ::dup2(out, STDOUT_FILENO);
        ServerConfig config;
        config.port = 0;
        config.ip = "127.0.0.1";
        config.agencies = 1;
        config.bets_file = dir.file("bets.csv");
        config.fsync = true;
        GatedSyncer syncer(told, go);
        ::_exit(Server(config, syncer).run());
    }

    std::string log_;
    pid_t pid_ = -1;
    int told_ = -1, go_ = -1;
    std::uint16_t port_ = 0;
};

// The coordinator, held in each sync by the test, must not have let any
// reply out: the RESUME of an OPEN waits for the journal's sync, and the
// ACK of a BETS frame for the store's and then the journal's.
TEST(CommitDurabilityServer, NoReplyLeavesBeforeItsCommitIsSynced) {
    TempDir dir;
    HeldServer server(dir);
    ASSERT_NE(server.port(), 0);
    const int agency = connect_to(server.port());
    ASSERT_GE(agency, 0);
    const auto expect_held = [&](const char* what) { // call through ASSERT_NO_FATAL_FAILURE
        ASSERT_TRUE(server.in_sync()) << what << ": the commit never synced";
        EXPECT_FALSE(readable_within(agency, kSilenceMs)) << what << ": a reply went out before its commit was durable";
        server.let_go();
    };

    ASSERT_TRUE(send_frame(agency, wire::encode_open_frame(1, "a.csv")));
    ASSERT_NO_FATAL_FAILURE(expect_held("OPEN, journal sync"));
    EXPECT_EQ(read_reply(agency, wire::kDigestSize), "RESUME 0");

    ASSERT_TRUE(send_frame(agency, wire::encode_bets_frame(1, 0, bets_of(1, 1, 3))));
    ASSERT_NO_FATAL_FAILURE(expect_held("BETS, store sync"));
    ASSERT_NO_FATAL_FAILURE(expect_held("BETS, journal sync"));
    EXPECT_EQ(read_reply(agency), "ACK 3");
    ::close(agency);
}

} // namespace
