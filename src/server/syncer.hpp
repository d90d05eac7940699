// How a group commit makes what it wrote durable before any reply vouches
// for it: one call per file, the store's bets first, then the journal lines
// that vouch for them. With SERVER_FSYNC=true the server's is fsync(2);
// with false there is none. Tests give the coordinator their own, to count
// the calls, order them against the replies, or make one fail.
#pragma once

#include <string>

class Syncer {
public:
    virtual ~Syncer() = default;
    // Makes the file at `path`, open as `fd`, durable; false (errno set) on failure.
    virtual bool sync(int fd, const std::string& path) = 0;
};

// fsync(2).
Syncer& fsync_syncer();
