// The acceptor: a small process, forked by the coordinator at start, that
// alone accepts connections and forks their handlers. A fork copies the
// forking process's descriptor table and page tables, and the child must
// then close what it should not hold; forked from the coordinator, which
// holds two pipe ends per open connection, a new handler would cost more
// with every connection open. The acceptor holds only the listener, its
// channel to the coordinator and stdio, so every fork costs the same. It
// passes each new handler's pipe ends to the coordinator over a Unix socket
// (SCM_RIGHTS), reaps its handlers, and stops when the coordinator says so.
#pragma once

#include "common/fd.hpp"

#include <sys/types.h>

#include <cstdint>
#include <string>

struct AcceptorSetup {
    int max_handlers;       // connections beyond this many handlers are refused
    std::uint32_t agencies; // for the handlers: valid agencies are 1..agencies
    int idle_timeout_ms;    // for the handlers
};

// The acceptor process's life, from just after its fork: `listener` is the
// server's listening socket, `channel` its end of the coordinator's socket
// pair; the caller has already closed every other descriptor it inherited,
// and forked it with fork_holding_signals (signals.hpp).
// Accepts and forks until the coordinator shuts its end of the channel (or
// is gone), then closes the listener, tells the coordinator it will send no
// more handlers, waits for its handlers (SIGKILL after `deadline_ms`) and
// exits 0.
[[noreturn]] void run_acceptor(Fd listener, Fd channel, AcceptorSetup setup, int deadline_ms);

// --- the coordinator's side of the channel ---

// A handler the acceptor has just forked: the coordinator's ends of its pipes.
struct NewHandler {
    pid_t pid = -1;
    std::string peer; // "ip:port", for logs
    Fd from_handler;  // requests (read end)
    Fd to_handler;    // replies (write end)
};

enum class Received { handler, nothing_yet, ended };
// Takes the next new handler off `channel` (non-blocking): `ended` once the
// acceptor has said it will send no more, has died, or sent something that
// is not a new handler (logged).
Received receive_new_handler(int channel, NewHandler& handler);
