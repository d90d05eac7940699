// The acceptor process: accepts connections, forks one handler each, passes
// the handler's pipe ends to the coordinator and reaps the handlers (see
// acceptor.hpp).
#include "server/acceptor.hpp"

#include "common/log.hpp"
#include "common/signals.hpp"
#include "common/socket.hpp"
#include "server/handler.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>
#include <vector>

namespace {

// The channel's one message, acceptor -> coordinator: a handler was forked.
// Its two pipe ends travel beside it as SCM_RIGHTS, in this order.
struct HandlerMessage {
    std::int32_t pid;
    char peer[64]; // NUL-terminated "ip:port" (IPv4: at most 21 characters)
};
constexpr std::size_t kPassedFds = 2; // the request pipe's read end, the reply pipe's write end

struct Pipe {
    Fd read_end;
    Fd write_end;
};

bool make_pipe(Pipe& pipe) {
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0) return false;
    pipe.read_end.reset(ends[0]);
    pipe.write_end.reset(ends[1]);
    return true;
}

// The control buffer that carries kPassedFds descriptors, aligned for cmsghdr.
union PassedFdsBuffer {
    char bytes[CMSG_SPACE(sizeof(int) * kPassedFds)];
    cmsghdr align;
};

// Blocking: if the coordinator is slow to read, the acceptor waits for it
// (and new connections wait in the listen backlog) rather than fork more.
bool send_new_handler(int channel, pid_t pid, const std::string& peer, int from_handler, int to_handler) {
    HandlerMessage message{};
    message.pid = pid;
    peer.copy(message.peer, sizeof message.peer - 1);
    iovec data{&message, sizeof message};
    PassedFdsBuffer control{};
    msghdr header{};
    header.msg_iov = &data;
    header.msg_iovlen = 1;
    header.msg_control = control.bytes;
    header.msg_controllen = sizeof control.bytes;
    cmsghdr* rights = CMSG_FIRSTHDR(&header);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(sizeof(int) * kPassedFds);
    const int fds[kPassedFds] = {from_handler, to_handler};
    std::memcpy(CMSG_DATA(rights), fds, sizeof fds);
    for (;;) {
        const ssize_t sent = ::sendmsg(channel, &header, MSG_NOSIGNAL);
        if (sent == static_cast<ssize_t>(sizeof message)) return true;
        if (sent < 0 && errno == EINTR) continue;
        return false;
    }
}

// Every descriptor a message carried, owned at once (so that none leaks,
// whatever else is wrong with the message).
std::vector<Fd> take_passed_fds(msghdr& header) {
    std::vector<Fd> passed;
    for (cmsghdr* part = CMSG_FIRSTHDR(&header); part != nullptr; part = CMSG_NXTHDR(&header, part)) {
        if (part->cmsg_level != SOL_SOCKET || part->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (part->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(part) + i * sizeof(int), sizeof fd);
            passed.emplace_back(fd);
        }
    }
    return passed;
}

class AcceptorProcess {
public:
    AcceptorProcess(Fd listener, Fd channel, AcceptorSetup setup, int deadline_ms)
        : listener_(std::move(listener)), channel_(std::move(channel)), setup_(setup), deadline_ms_(deadline_ms),
          signals_(SignalPipe::install({SIGCHLD})) {}

    int run();

private:
    void accept_clients();
    void spawn_handler(Fd client, const std::string& peer);
    [[noreturn]] void become_handler(Fd client, const std::string& peer, Fd to_coordinator, Fd from_coordinator);
    void reap_handlers();
    void wait_for_handlers();

    Fd listener_;
    Fd channel_;
    AcceptorSetup setup_;
    int deadline_ms_;
    SignalPipe signals_;
    std::set<pid_t> handlers_; // forked and not yet reaped
};

// The coordinator never writes on the channel: the channel turning readable
// means it shut its end (SIGTERM) or is gone. Either way: stop.
int AcceptorProcess::run() {
    int code = 0;
    for (;;) {
        pollfd ready[3] = {{channel_.get(), POLLIN, 0}, {signals_.fd(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
        if (::poll(ready, 3, -1) < 0) {
            if (errno == EINTR) continue;
            log_action(LogLevel::critical, "poll", Outcome::fail, {{"error", errno_text("poll")}});
            code = 1;
            break;
        }
        if (ready[1].revents != 0) {
            signals_.drain();
            reap_handlers();
        }
        if (ready[0].revents != 0) break;
        if (ready[2].revents != 0) accept_clients();
    }
    listener_.reset();
    ::shutdown(channel_.get(), SHUT_WR); // "no more handlers": the coordinator reads the end of the channel
    wait_for_handlers();
    return code;
}

// Takes every connection already waiting: with a small listen backlog, a
// burst of agencies would otherwise overflow it and wait for a SYN retry.
void AcceptorProcess::accept_clients() {
    for (;;) {
        std::string peer;
        Fd client = accept_connection(listener_.get(), peer);
        if (!client) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
                log_action(LogLevel::error, "accept", Outcome::fail, {{"error", errno_text("accept")}});
            return;
        }
        if (handlers_.size() >= static_cast<std::size_t>(setup_.max_handlers)) {
            log_action(LogLevel::warning, "accept", Outcome::fail,
                       {{"peer", peer}, {"error", "too many connections"}, {"max_handlers", setup_.max_handlers}});
            continue; // `client` closes here: the excess is refused, the rest goes on
        }
        spawn_handler(std::move(client), peer);
    }
}

// Forks the handler of `client` with two pipes, requests up and replies
// down, and hands the coordinator's ends to it. The acceptor's copies of
// those ends and of the client close when this returns.
void AcceptorProcess::spawn_handler(Fd client, const std::string& peer) {
    Pipe requests, replies;
    if (!make_pipe(requests) || !make_pipe(replies)) {
        log_action(LogLevel::error, "pipe", Outcome::fail, {{"peer", peer}, {"error", errno_text("pipe")}});
        return;
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        log_action(LogLevel::error, "fork", Outcome::fail, {{"peer", peer}, {"error", errno_text("fork")}});
        return;
    }
    if (pid == 0) become_handler(std::move(client), peer, std::move(requests.write_end), std::move(replies.read_end));
    handlers_.insert(pid);
    client.reset(); // the handler's alone now
    // Logged before the coordinator can hear of the handler, so that the
    // line comes before anything the handler's requests make it log.
    log_action(LogLevel::info, "accept", Outcome::success, {{"peer", peer}, {"handler_pid", pid}});
    if (!send_new_handler(channel_.get(), pid, peer, requests.read_end.get(), replies.write_end.get())) {
        // The coordinator is gone or stopping: with our copies of its ends
        // closed, the handler reads EOF on its reply pipe and exits.
        log_action(LogLevel::error, "pass_handler", Outcome::fail, {{"peer", peer}, {"error", errno_text("sendmsg")}});
    }
}

// In the forked child: keep only the client and the handler's two pipe
// ends (the acceptor holds just the listener and the channel besides, so
// this costs the same however many connections are open), then serve.
void AcceptorProcess::become_handler(Fd client, const std::string& peer, Fd to_coordinator, Fd from_coordinator) {
    signals_.uninstall();
    ::signal(SIGTERM, SIG_DFL); // SIGINT stays ignored: a terminal's Ctrl-C reaches the coordinator, which stops us
    close_descriptors_except({client.get(), to_coordinator.get(), from_coordinator.get()});
    Handler handler(HandlerSetup{std::move(client), peer, std::move(to_coordinator), std::move(from_coordinator),
                                 setup_.agencies, setup_.idle_timeout_ms});
    ::_exit(handler.run());
}

// Collects every handler that has ended (no zombies); one killed by a signal
// is worth a WARNING, a normal exit only a DEBUG line.
void AcceptorProcess::reap_handlers() {
    int status = 0;
    for (pid_t pid; (pid = ::waitpid(-1, &status, WNOHANG)) > 0;) {
        handlers_.erase(pid);
        if (WIFSIGNALED(status))
            log_action(LogLevel::warning, "handler_exit", Outcome::fail,
                       {{"handler_pid", pid}, {"signal", strsignal(WTERMSIG(status))}});
        else
            log_action(LogLevel::debug, "handler_exit", Outcome::success,
                       {{"handler_pid", pid}, {"code", WEXITSTATUS(status)}});
    }
}

// Waits for the handlers to exit on their own (the coordinator closes their
// pipes; SIGCHLD wakes us through the self-pipe) until the deadline, then
// SIGKILLs and reaps the rest: no zombies, no orphans, and in time.
void AcceptorProcess::wait_for_handlers() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms_);
    reap_handlers();
    while (!handlers_.empty()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd wake{signals_.fd(), POLLIN, 0};
        ::poll(&wake, 1, static_cast<int>(left.count()));
        signals_.drain();
        reap_handlers();
    }
    for (pid_t pid : handlers_) {
        log_action(LogLevel::warning, "handler_kill", Outcome::success, {{"handler_pid", pid}});
        ::kill(pid, SIGKILL);
    }
    while (!handlers_.empty()) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, 0);
        if (pid < 0 && errno == EINTR) continue;
        if (pid < 0) break;
        handlers_.erase(pid);
    }
}

} // namespace

void run_acceptor(Fd listener, Fd channel, AcceptorSetup setup, int deadline_ms) {
    // The coordinator decides when the acceptor stops: a SIGTERM or a
    // terminal's Ctrl-C sent to the whole process group must not end it first.
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGTERM, SIG_IGN);
    release_signals(); // held since the fork (see start_acceptor)
    AcceptorProcess acceptor(std::move(listener), std::move(channel), setup, deadline_ms);
    ::_exit(acceptor.run());
}

Received receive_new_handler(int channel, NewHandler& handler) {
    HandlerMessage message{};
    iovec data{&message, sizeof message};
    PassedFdsBuffer control{};
    msghdr header{};
    header.msg_iov = &data;
    header.msg_iovlen = 1;
    header.msg_control = control.bytes;
    header.msg_controllen = sizeof control.bytes;
    ssize_t got;
    do got = ::recvmsg(channel, &header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (got < 0 && errno == EINTR);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Received::nothing_yet;
    if (got < 0) {
        log_action(LogLevel::error, "receive_handler", Outcome::fail, {{"error", errno_text("recvmsg")}});
        return Received::ended;
    }
    std::vector<Fd> passed = take_passed_fds(header);
    if (got == 0) return Received::ended;
    if (got != static_cast<ssize_t>(sizeof message) || passed.size() != kPassedFds || (header.msg_flags & MSG_CTRUNC)) {
        log_action(LogLevel::error, "receive_handler", Outcome::fail, {{"error", "bad message from the acceptor"}});
        return Received::ended;
    }
    message.peer[sizeof message.peer - 1] = '\0';
    handler.pid = message.pid;
    handler.peer = message.peer;
    handler.from_handler = std::move(passed[0]);
    handler.to_handler = std::move(passed[1]);
    return Received::handler;
}
