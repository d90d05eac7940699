// One agency's session with the server: send every bet in numbered batches
// (each acknowledged before the next), say DONE, ask for the winners. A
// dropped connection is re-opened and the unacknowledged request sent again
// with the same batch number, which the server never stores twice.
#pragma once

#include "client/bet_source.hpp"
#include "client/client_config.hpp"
#include "common/fd.hpp"
#include "common/protocol.hpp"

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

    Step send_all_bets(BetSource& source);
    Step send_batch(std::uint32_t batch, const std::vector<Bet>& bets);
    Step finish();
    Step ask_winners();
    // Sends `request` and reads the reply header into `reply`, reconnecting
    // and resending while the connection drops or the server restarts.
    Step exchange(const wire::Bytes& request, int timeout_seconds, wire::ReplyHeader& reply);
    Step connect();
    bool wait_before_retry(int milliseconds);
    bool stop_requested() const;
    void close_socket();

    const ClientConfig& config_;
    int stop_fd_;
    Fd socket_;
    std::vector<std::string> winners_;
};
