// The coordinator's decisions: the only owner of the bet store, its journal
// and the shared state (every source with its stored bets, digest and
// current opener; the agencies that are done; the draw's winners). No
// sockets and no poll: ipc::Request in, ipc::Reply out; the server process
// feeds it from its poll loop.
#pragma once

#include "common/bet_store.hpp"
#include "server/ipc.hpp"
#include "server/journal.hpp"
#include "server/syncer.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

class Coordinator {
public:
    struct Options {
        std::uint32_t agencies = 0;
        std::string store_path;
        // SERVER_FSYNC: what makes each commit's files durable before its
        // replies (the server's: fsync_syncer()); nullptr: nothing, an ACKed
        // bet survives a crash of the server but not of the machine.
        Syncer* syncer = nullptr;
    };

    // Opens the store and its journal and recovers from a crash: the journal
    // restores the state, the store is cut to the length the journal vouches
    // for, and the draw starts at once if every agency was already done.
    static std::optional<Coordinator> open(const Options& options, std::string& error);

    // A number for a new connection, greater than any journaled before: the
    // fencing token of every OPEN that connection sends.
    std::uint64_t new_connection() { return ++last_connection_; }

    // The reply to `request` from `connection`, or nothing when it must
    // wait: WINNERS before the draw has finished (the caller parks it and
    // asks winners_reply() once draw_done()). What the request changes is
    // only staged: the caller holds every reply until commit().
    std::optional<ipc::Reply> handle(const ipc::Request& request, std::uint64_t connection);

    // Group commit: writes every bet and journal line staged since the last
    // commit, with one write to the store and one to the journal (each made
    // durable by Options::syncer, when there is one), then the held replies
    // may go out. On
    // failure nothing staged is kept, in the files or in memory, and each
    // held reply must pass through voided() first. True when nothing was staged.
    bool commit();
    // A held reply after a failed commit: an ACK or RESUME vouched for what
    // was just rolled back, so it becomes ERROR 7 (the client reconnects and
    // resends); any other reply stands.
    static ipc::Reply voided(const ipc::Reply& reply);

    // The draw reads the store a slice at a time between the caller's poll
    // rounds: advance_draw() while draw_running(), until draw_done().
    bool draw_running() const { return draw_.has_value(); }
    void advance_draw();
    bool draw_done() const { return draw_done_; }
    // After the draw: `agency`'s winning documents only, or ERROR 7 when the
    // draw could not read the store (never a partial list).
    ipc::Reply winners_reply(std::uint32_t agency) const;
    // The same as documents: nothing when the draw failed.
    std::optional<std::vector<std::string>> winners_of(std::uint32_t agency) const;
    void close(); // the store and the journal

private:
    Coordinator(const Options& options, BetStore store, Journal journal, RecoveredState state);
    ipc::Reply open_source(const ipc::Request& request, std::uint64_t connection);
    ipc::Reply store_bets(const ipc::Request& request, std::uint64_t connection);
    ipc::Reply mark_done(std::uint32_t agency);
    void stage();
    void remember(ipc::SourceId id);
    bool write_staged();
    void undo_staged();
    template <typename File>
    bool make_durable(File& file);
    template <typename File>
    bool roll_back(File& file, std::uint64_t length);
    bool all_done() const;
    bool draw_started() const { return draw_running() || draw_done_; }
    void start_draw();
    void finish_draw();

    Options options_;
    BetStore store_;
    Journal journal_;
    std::vector<SourceState> sources_; // indexed by ipc::SourceId
    std::map<std::pair<std::uint32_t, std::string>, ipc::SourceId> source_ids_; // (agency, name) -> id
    std::set<std::uint32_t> done_;
    std::uint64_t last_connection_ = 0;
    std::optional<StoreScan> draw_; // while the draw reads the store
    std::uint64_t draw_started_ms_ = 0;
    bool draw_done_ = false;
    bool draw_failed_ = false; // the store could not be read back
    bool writable_ = true;     // false once a rollback failed: ERROR 7 until a restart
    std::map<std::uint32_t, std::vector<std::string>> winners_; // agency -> documents

    // Staged since the last commit: the store lines, and what undoes the
    // changes in memory if the commit fails.
    struct Staged {
        bool any = false;
        std::string lines;
        std::size_t sources = 0; // sources_.size() before the first change
        std::vector<std::pair<ipc::SourceId, SourceState>> before; // older sources, as they were before each change
        std::vector<std::uint32_t> done; // agencies whose first DONE is staged
    };
    Staged staged_;
};
