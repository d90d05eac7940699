// The coordinator's decisions: the only owner of the bet store, its journal
// and the shared state (last batch per agency, agencies done, the draw's
// winners). No sockets and no poll: ipc::Request in, ipc::Reply out; the
// server process feeds it from its poll loop.
#pragma once

#include "common/bet_store.hpp"
#include "server/ipc.hpp"
#include "server/journal.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

class Coordinator {
public:
    struct Options {
        std::uint32_t agencies = 0;
        std::string store_path;
        bool fsync = false; // fsync store and journal before every ACK
    };

    // Opens the store and its journal and recovers from a crash: the journal
    // restores the state, the store is cut to the length the journal vouches
    // for, and the draw runs at once if every agency was already done.
    static std::optional<Coordinator> open(const Options& options, std::string& error);

    // The reply to `request`, or nothing when it must wait: WINNERS before
    // the draw (the caller parks it and asks winners_reply() once draw_done()).
    std::optional<ipc::Reply> handle(const ipc::Request& request);

    bool draw_done() const { return draw_done_; }
    // After the draw: `agency`'s winning documents only, or ERROR 6 when the
    // draw could not read the store (never a partial list).
    ipc::Reply winners_reply(std::uint32_t agency) const;
    void close(); // the store and the journal

private:
    Coordinator(const Options& options, BetStore store, Journal journal, const RecoveredState& state);
    ipc::Reply store_batch(const ipc::Request& request);
    ipc::Reply mark_done(std::uint32_t agency);
    bool all_done() const;
    void run_draw();

    Options options_;
    BetStore store_;
    Journal journal_;
    std::map<std::uint32_t, std::uint32_t> last_batch_; // agency -> last stored batch number
    std::set<std::uint32_t> done_;
    bool draw_done_ = false;
    bool draw_failed_ = false; // the store could not be read back
    std::map<std::uint32_t, std::vector<std::string>> winners_; // agency -> documents
};
