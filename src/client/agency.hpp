// One agency's session with the server: send every bet in numbered batches
// (a few in flight at once), say DONE, ask for the winners. A dropped
// connection is re-opened and every unacknowledged request sent again with
// the same batch numbers, which the server never stores twice.
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
    enum class Step { ok, stopped, failed };

    // A request sent and not yet answered, kept to be resent after a drop.
    struct Pending {
        std::uint32_t batch = 0; // BETS only
        std::vector<Bet> bets;   // BETS only: logged as sent once ACKed
        wire::Bytes frame;
    };

    Step send_all_bets(BetSource& source);
    Step retire_batch(const wire::ReplyHeader& reply);
    Step finish();
    Step ask_winners();
    Step ask(wire::Bytes frame, int timeout_seconds, wire::ReplyHeader& reply);
    Step send(Pending request);
    Step write_frame(const wire::Bytes& frame);
    Step await_reply(int timeout_seconds, wire::ReplyHeader& reply);
    Step reconnect_and_resend();
    Step connect();
    bool wait_before_retry(int milliseconds);
    bool stop_requested() const;
    void close_socket();

    const ClientConfig& config_;
    int stop_fd_;
    Fd socket_;
    std::deque<Pending> in_flight_; // oldest first; replies come back in this order
    std::vector<std::string> winners_;
};
