// epoll wrapper (see poller.hpp).
#include "server/poller.hpp"

Poller::Poller() : fd_(::epoll_create1(EPOLL_CLOEXEC)) {}

bool Poller::add(int fd, std::uint32_t events, std::uint64_t token) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = token;
    return ::epoll_ctl(fd_.get(), EPOLL_CTL_ADD, fd, &event) == 0;
}

bool Poller::modify(int fd, std::uint32_t events, std::uint64_t token) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = token;
    return ::epoll_ctl(fd_.get(), EPOLL_CTL_MOD, fd, &event) == 0;
}

void Poller::remove(int fd) { ::epoll_ctl(fd_.get(), EPOLL_CTL_DEL, fd, nullptr); }

int Poller::wait(std::vector<epoll_event>& ready, int timeout_ms) {
    return ::epoll_wait(fd_.get(), ready.data(), static_cast<int>(ready.size()), timeout_ms);
}
