// Self-pipe signal delivery (see signals.hpp).
#include "common/signals.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace {

volatile sig_atomic_t g_write_end = -1;

extern "C" void on_signal(int number) {
    const int saved = errno;
    const unsigned char byte = static_cast<unsigned char>(number);
    if (g_write_end >= 0) (void)!::write(g_write_end, &byte, 1); // full pipe: already woken
    errno = saved;
}

void set_disposition(int number, void (*handler)(int)) {
    struct sigaction action {};
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ::sigaction(number, &action, nullptr);
}

} // namespace

SignalPipe SignalPipe::install(std::initializer_list<int> signals) {
    SignalPipe pipe;
    int ends[2];
    if (::pipe2(ends, O_NONBLOCK | O_CLOEXEC) != 0) return pipe;
    pipe.read_end_.reset(ends[0]);
    pipe.write_end_.reset(ends[1]);
    pipe.signals_.assign(signals.begin(), signals.end());
    g_write_end = ends[1];
    for (int number : signals) set_disposition(number, on_signal);
    return pipe;
}

SignalPipe::~SignalPipe() {
    if (write_end_.valid() && g_write_end == write_end_.get()) uninstall();
}

std::vector<int> SignalPipe::drain() {
    std::vector<int> received;
    unsigned char bytes[64];
    for (;;) {
        const ssize_t got = ::read(read_end_.get(), bytes, sizeof bytes);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        received.insert(received.end(), bytes, bytes + got);
    }
    return received;
}

void SignalPipe::uninstall() {
    for (int number : signals_) set_disposition(number, SIG_DFL);
    g_write_end = -1;
    read_end_.reset();
    write_end_.reset();
}

static sigset_t g_mask_before_fork; // restored by release_signals() in the child

pid_t fork_holding_signals() {
    sigset_t all;
    sigfillset(&all);
    ::sigprocmask(SIG_SETMASK, &all, &g_mask_before_fork);
    const pid_t pid = ::fork();
    const int fork_errno = errno;
    if (pid != 0) ::sigprocmask(SIG_SETMASK, &g_mask_before_fork, nullptr);
    errno = fork_errno;
    return pid;
}

void release_signals() { ::sigprocmask(SIG_SETMASK, &g_mask_before_fork, nullptr); }

void ignore_sigpipe() { set_disposition(SIGPIPE, SIG_IGN); }
