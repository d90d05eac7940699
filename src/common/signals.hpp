// Signals as bytes on a pipe (the self-pipe trick): the handler only writes
// the signal number; the program's poll loop reads it and does the work.
#pragma once

#include "common/fd.hpp"

#include <sys/types.h>

#include <initializer_list>
#include <vector>

class SignalPipe {
public:
    // Routes `signals` to this pipe. One SignalPipe per process.
    static SignalPipe install(std::initializer_list<int> signals);

    SignalPipe(SignalPipe&&) = default;
    SignalPipe& operator=(SignalPipe&&) = default;
    ~SignalPipe();

    int fd() const { return read_end_.get(); } // poll this for POLLIN
    std::vector<int> drain();                  // the signals received so far
    // Restores default dispositions and closes the pipe (a forked child
    // calls this before doing anything else).
    void uninstall();

private:
    SignalPipe() = default;
    Fd read_end_;
    Fd write_end_;
    std::vector<int> signals_;
};

// Forks with every signal held back in the child until it calls
// release_signals(), once it has set its own dispositions: a signal that
// reached it earlier would run the parent's handler in the child and write
// into the parent's signal pipe. The parent's mask is as before on return.
pid_t fork_holding_signals();
void release_signals(); // back to the mask from before the fork

// EPIPE instead of death when a peer has gone away.
void ignore_sigpipe();
