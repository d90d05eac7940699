// The acceptor: a small process, forked by the coordinator at start, that
// alone accepts connections and forks their handlers. A fork copies the
// forking process's descriptor table and page tables, and the child must
// then close what it should not hold; forked from the coordinator, which
// holds two pipe ends per open connection, a new handler would cost more
// with every connection open. The acceptor holds only the listener, its
// channel to the coordinator, stdio and the connections still arriving, so
// every fork costs the same.
//
// Admission (CONTRACT.md §6): a new connection costs no process until its
// first frame has arrived whole. Until then it is an "arrival" here, a
// descriptor and its bytes, closed if the frame is not whole within
// first_frame_timeout_ms (a silent or slow peer holds no handler, as
// sshd's LoginGraceTime and MaxStartups keep unauthenticated peers cheap).
// At most max_arrivals wait; a new one beyond that evicts the oldest that
// is still incomplete. A whole first frame gets a handler as soon as fewer
// than max_handlers run; until then it waits here, and past max_arrivals of
// those, new connections wait in the listen backlog: none is accepted and
// dropped. The handler's pipe ends go to the coordinator over the channel
// (channel.hpp).
#pragma once

#include "common/fd.hpp"

#include <sys/types.h>

#include <cstdint>
#include <string>

struct AcceptorSetup {
    int max_handlers;           // connections served at once, one handler each
    int max_arrivals;           // connections whose first frame is still arriving (or waits for a handler)
    int first_frame_timeout_ms; // for an arrival to send its first frame whole
    std::uint32_t agencies;     // for the handlers: valid agencies are 1..agencies
    int idle_timeout_ms;        // for the handlers
    int frame_timeout_ms;       // for the handlers
};

// The acceptor process's life, from just after its fork: `listener` is the
// server's listening socket, `channel` its end of the coordinator's socket
// pair; the caller has already closed every other descriptor it inherited,
// and forked it with fork_holding_signals (signals.hpp).
// Accepts and forks until the coordinator shuts its end of the channel (or
// is gone), then closes the listener and the arrivals, tells the
// coordinator it will send no more handlers, waits for its handlers
// (SIGKILL after `deadline_ms`) and exits 0.
[[noreturn]] void run_acceptor(Fd listener, Fd channel, AcceptorSetup setup, int deadline_ms);
