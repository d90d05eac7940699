// Descriptor helpers (see fd.hpp).
#include "common/fd.hpp"

#include <algorithm>
#include <climits>
#include <vector>

void close_descriptors_except(std::initializer_list<int> keep) {
    std::vector<int> kept(keep);
    std::sort(kept.begin(), kept.end());
    unsigned int next = 3; // stdin, stdout and stderr stay
    for (int fd : kept) {
        if (fd < static_cast<int>(next)) continue;
        if (static_cast<unsigned int>(fd) > next) ::close_range(next, static_cast<unsigned int>(fd) - 1, 0);
        next = static_cast<unsigned int>(fd) + 1;
    }
    ::close_range(next, UINT_MAX, 0);
}
