// The server's Syncer: fsync(2) (see syncer.hpp).
#include "server/syncer.hpp"

#include <unistd.h>

namespace {

class Fsync final : public Syncer {
public:
    bool sync(int fd, const std::string&) override { return ::fsync(fd) == 0; }
};

} // namespace

Syncer& fsync_syncer() {
    static Fsync instance;
    return instance;
}
