// One agency's session with the server: OPEN its source and resume from what
// the server already holds of it (checked against the file by digest), send
// the rest in BETS frames that carry their position (a few in flight at
// once), say DONE, ask for the winners. A dropped connection is re-opened,
// the source OPENed again and every unacknowledged frame sent again as it
// was: positions tell the server what it has already stored.
#pragma once

#include "client/bet_source.hpp"
#include "client/client_config.hpp"
#include "common/fd.hpp"
#include "common/protocol.hpp"

#include <deque>
#include <string>
#include <vector>

class Agency {
public:
    // `stop_fd` becomes readable when the process must stop (SIGTERM).
    Agency(const ClientConfig& config, int stop_fd);
    // Returns the process exit code.
    int run(BetSource& source);

private:
    // dropped: the connection broke (or the server asked us to come back
    // later); await_reply() repairs it by reconnecting. The rest are final.
    enum class Step { ok, stopped, failed, dropped };

    // A request sent and not yet answered, kept to be resent after a drop.
    struct Pending {
        std::vector<Bet> bets;             // BETS only: logged as sent once ACKed
        std::vector<std::uint64_t> hashes; // BETS only: one per bet
        wire::Bytes frame;
    };

    Step resume_source(BetSource& source);
    Step skip_stored(BetSource& source, std::uint64_t stored, wire::Digest digest);
    Step send_all_bets(BetSource& source);
    Step retire_frame(const wire::ReplyHeader& reply);
    Step finish();
    Step ask_winners();
    Step ask(wire::Bytes frame, int timeout_seconds, wire::ReplyHeader& reply);
    Step send(Pending request);
    Step write_frame(const wire::Bytes& frame);
    Step await_reply(int timeout_seconds, wire::ReplyHeader& reply);
    Step read_reply(int timeout_seconds, wire::ReplyHeader& reply);
    Step reconnect_and_resend();
    Step open_source();
    bool matches_in_flight(std::uint64_t stored, wire::Digest digest) const;
    Step connect();
    bool wait_before_retry(int milliseconds);
    bool stop_requested() const;
    void close_socket();

    const ClientConfig& config_;
    int stop_fd_;
    Fd socket_;
    std::string source_name_;
    bool sending_bets_ = true;       // a reconnect must OPEN the source again
    bool resumed_ = false;           // the first RESUME has been checked against the file
    std::uint64_t server_stored_ = 0;       // what the first RESUME said was stored
    wire::Digest server_digest_ = 0;        // and its digest
    int drops_ = 0;                  // connections lost in a row (for the back-off)
    std::uint64_t acked_ = 0;        // bets of the source the server has acknowledged
    wire::Digest acked_digest_ = 0;  // their digest
    std::uint64_t sent_ = 0;         // acknowledged plus in flight
    std::deque<Pending> in_flight_;  // oldest first; replies come back in this order
    std::vector<std::string> winners_;
};
