// The coordinator's channel: a SOCK_SEQPACKET Unix socket pair made at
// start. The coordinator reads one end; the other is the acceptor's, and
// every handler holds a copy of it. Two messages travel on it, each with
// descriptors beside it (SCM_RIGHTS):
//   acceptor -> coordinator: a handler was forked, with the coordinator's
//       ends of its two pipes (requests in, replies out);
//   handler -> coordinator: an agency waits for the draw, with its client
//       socket; the handler then exits, and the coordinator answers the
//       WINNERS once the draw is done (waiting_room.hpp).
// The coordinator never writes on it: its end shut for writing means "stop".
#pragma once

#include "common/fd.hpp"

#include <sys/types.h>

#include <cstdint>
#include <string>

// A handler the acceptor has just forked: the coordinator's ends of its pipes.
struct NewHandler {
    pid_t pid = -1;
    std::string peer; // "ip:port", for logs
    Fd from_handler;  // requests (read end)
    Fd to_handler;    // replies (write end)
};

// An agency whose WINNERS waits for the draw: its connection, now the
// coordinator's.
struct WaitingAgency {
    std::uint32_t agency = 0;
    std::string peer;
    Fd client;
};

// Blocking sends; false (errno set) when the coordinator is gone or stopping.
bool send_new_handler(int channel, pid_t pid, const std::string& peer, int from_handler, int to_handler);
bool send_waiting_agency(int channel, std::uint32_t agency, const std::string& peer, int client);

enum class Received { new_handler, waiting_agency, dropped, nothing_yet, ended };
// Takes the next message off `channel` (non-blocking) into `handler` or
// `waiting`: `dropped` when its descriptors could not be received (this
// process at its open-file limit; logged), `ended` once the acceptor has
// said it sends no more or a message does not parse (logged). The
// acceptor's death does not end the channel, whose end the handlers also
// hold: the coordinator learns of it by reaping the acceptor.
Received receive_from_channel(int channel, NewHandler& handler, WaitingAgency& waiting);
