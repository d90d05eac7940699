// The server process, the coordinator: it opens the listener, forks the
// acceptor (which accepts and forks one handler per connection, see
// acceptor.hpp), and serves every handler's pipes from one epoll loop. Only
// this process writes the bet store; there are no locks because nothing is
// shared: state lives here and handlers ask for changes by message.
#pragma once

#include "common/fd.hpp"
#include "common/signals.hpp"
#include "server/acceptor.hpp"
#include "server/channel.hpp"
#include "server/coordinator.hpp"
#include "server/poller.hpp"
#include "server/server_config.hpp"
#include "server/waiting_room.hpp"

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>

class Server {
public:
    // `syncer` makes each commit durable when config.fsync is set (a test
    // may pass its own to watch the commits of a whole server).
    explicit Server(ServerConfig config, Syncer& syncer = fsync_syncer());
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
        bool writing = false;              // to_handler is watched for EPOLLOUT
        bool closed = false;
    };

    int start();
    bool raise_open_file_limit();
    int lock_store();
    bool start_acceptor(Fd listener);
    // Empty while serving; the reason when serving must end in failure (the
    // server exits 1 after the clean-up).
    std::string serve();
    void on_child_event(std::uint64_t token);
    void watch_outbox(Child& child);
    void on_signals();
    void receive_from_channel();
    void add_child(NewHandler handler);
    void read_requests(Child& child);
    void commit_round();
    void flush(Child& child);
    void mark_closed(Child& child);
    void forget_closed_children();
    void advance_draw();
    bool reap_children();
    void shutdown();
    void stop_acceptor(std::chrono::steady_clock::time_point deadline);
    void wait_for_children(std::chrono::steady_clock::time_point deadline, const std::vector<pid_t>& handlers);

    ServerConfig config_;
    Syncer& syncer_;
    SignalPipe signals_;
    std::uint16_t listen_port_ = 0;
    Fd store_lock_;            // flock'd while this server uses the store
    pid_t acceptor_pid_ = -1;  // until reaped
    Fd acceptor_channel_;      // new handlers come from here
    bool acceptor_ended_ = false; // it said it sends no more handlers (or died)
    Poller poller_;
    WaitingRoom waiting_{poller_}; // agencies whose WINNERS waits for the draw
    std::optional<Coordinator> coordinator_;
    std::unordered_map<std::uint64_t, Child> children_; // by connection number
    std::vector<std::uint64_t> closed_;                 // children to forget after this round
    std::vector<std::pair<std::uint64_t, ipc::Reply>> held_; // this round's replies, until its commit
    bool stopping_ = false;
};
