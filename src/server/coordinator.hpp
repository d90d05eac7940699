// The coordinator's decisions: the only owner of the bet store and of the
// shared state (last batch per agency, agencies done, the draw's winners).
// Pure logic over ipc::Request -> ipc::Reply; the server process feeds it.
#pragma once

#include "common/bet_store.hpp"
#include "server/ipc.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

class Coordinator {
public:
    Coordinator(std::uint32_t agencies, BetStore store);

    // The reply to `request` from agency `request.header.agency`, or nothing
    // when it must wait: WINNERS before the draw (the caller parks it and
    // asks winners_reply() once draw_done()).
    std::optional<ipc::Reply> handle(const ipc::Request& request);

    bool draw_done() const { return draw_done_; }
    ipc::Reply winners_reply(std::uint32_t agency) const;
    BetStore& store() { return store_; }

private:
    ipc::Reply store_batch(const ipc::Request& request);
    ipc::Reply mark_done(std::uint32_t agency);
    void run_draw();

    std::uint32_t agencies_;
    BetStore store_;
    std::map<std::uint32_t, std::uint32_t> last_batch_; // agency -> last stored batch number
    std::set<std::uint32_t> done_;
    bool draw_done_ = false;
    bool draw_failed_ = false; // the store could not be read back
    std::map<std::uint32_t, std::vector<std::string>> winners_; // agency -> documents
};
