// Descriptor helpers (see fd.hpp).
#include "common/fd.hpp"

#include <algorithm>
#include <climits>
#include <vector>

namespace {

// close_range(2), or - where the kernel lacks it (before 5.9) or a seccomp
// filter refuses it - one close() per possible descriptor up to the limit.
void close_between(unsigned int first, unsigned int last) {
    if (::close_range(first, last, 0) == 0) return;
    const long limit = ::sysconf(_SC_OPEN_MAX);
    const unsigned int end = limit > 0 ? std::min(last, static_cast<unsigned int>(limit - 1)) : last;
    for (unsigned int fd = first; fd <= end && fd >= first; ++fd) ::close(static_cast<int>(fd));
}

} // namespace

void close_descriptors_except(std::initializer_list<int> keep) {
    std::vector<int> kept(keep);
    std::sort(kept.begin(), kept.end());
    unsigned int next = 3; // stdin, stdout and stderr stay
    for (int fd : kept) {
        if (fd < static_cast<int>(next)) continue;
        if (static_cast<unsigned int>(fd) > next) close_between(next, static_cast<unsigned int>(fd) - 1);
        next = static_cast<unsigned int>(fd) + 1;
    }
    close_between(next, UINT_MAX);
}
