// The server process: it listens, forks one handler per connection and, as
// the coordinator, serves every handler's pipe from one poll() loop. Only
// this process writes the bet store; there are no locks because nothing is
// shared: state lives here and handlers ask for changes by message.
#pragma once

#include "common/fd.hpp"
#include "common/signals.hpp"
#include "server/coordinator.hpp"
#include "server/poller.hpp"
#include "server/server_config.hpp"

#include <sys/types.h>

#include <optional>
#include <set>
#include <string>
#include <unordered_map>

class Server {
public:
    explicit Server(ServerConfig config);
    int run(); // the process exit code

private:
    // One live handler, as the coordinator sees it.
    struct Child {
        pid_t pid = -1;
        std::uint64_t connection = 0; // the coordinator's number for it (fencing)
        std::string peer;
        Fd from_handler; // requests (non-blocking read end)
        Fd to_handler;   // replies (non-blocking write end)
        std::string inbox;
        std::string outbox;
        std::uint32_t waiting_winners = 0; // agency of a parked WINNERS, 0 if none
        bool writing = false;              // to_handler is watched for EPOLLOUT
        bool closed = false;
    };

    bool start();
    bool raise_open_file_limit();
    bool serve(); // false when epoll_wait() failed: the server exits 1 after the clean-up
    void on_child_event(std::uint64_t token);
    void watch_outbox(Child& child);
    void on_signals();
    void accept_clients();
    void spawn_handler(Fd client, const std::string& peer);
    [[noreturn]] void become_handler(Fd client, const std::string& peer, Fd to_coordinator,
                                     Fd from_coordinator);
    void read_requests(Child& child);
    void commit_round();
    void deliver(Child& child, const ipc::Reply& reply);
    void flush(Child& child);
    void mark_closed(Child& child);
    void forget_closed_children();
    void answer_parked_winners();
    void advance_draw();
    void reap_children();
    void shutdown();
    void wait_for_children(int deadline_ms);

    ServerConfig config_;
    SignalPipe signals_;
    Fd listener_;
    Poller poller_;
    std::optional<Coordinator> coordinator_;
    std::unordered_map<std::uint64_t, Child> children_; // by connection number
    std::vector<std::uint64_t> closed_;                 // children to forget after this round
    std::vector<std::pair<std::uint64_t, ipc::Reply>> held_; // this round's replies, until its commit
    std::set<pid_t> live_pids_; // forked and not yet reaped
    bool stopping_ = false;
};
