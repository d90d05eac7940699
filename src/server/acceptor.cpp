// The acceptor process: accepts connections, forks one handler each, passes
// the handler's pipe ends to the coordinator and reaps the handlers (see
// acceptor.hpp).
#include "server/acceptor.hpp"

#include "common/io.hpp"
#include "common/log.hpp"
#include "common/signals.hpp"
#include "common/socket.hpp"
#include "server/backoff.hpp"
#include "server/channel.hpp"
#include "server/handler.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>
#include <set>
#include <vector>

namespace {

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

using Clock = std::chrono::steady_clock;

// An incomplete arrival this old may make way for a new connection: a real
// agency sends its first frame within a round trip of connecting, so one
// still silent after this is likely idle, and a burst of real agencies is
// not evicted while it sends its OPENs.
constexpr auto kEvictableAfter = std::chrono::milliseconds(1000);

// A connection accepted whose first frame is still arriving (or, whole,
// waits for a handler): a descriptor and its bytes, no process.
struct Arrival {
    Fd client;
    std::string peer;
    std::string bytes;          // what it has sent: at most its first frame
    Clock::time_point since;    // accepted then
    Clock::time_point deadline; // for the first frame to be whole
    bool whole = false;         // the first frame is here (or cannot be one: the handler says so)
};

// The oldest arrival still incomplete (else end()).
template <typename Arrivals>
auto oldest_incomplete(Arrivals& arrivals) -> decltype(arrivals.begin()) {
    return std::find_if(arrivals.begin(), arrivals.end(), [](const Arrival& arrival) { return !arrival.whole; });
}

// The oldest arrival still incomplete, if it has been so for
// kEvictableAfter (else end()).
template <typename Arrivals>
auto evictable(Arrivals& arrivals) -> decltype(arrivals.begin()) {
    const auto oldest = oldest_incomplete(arrivals);
    return oldest != arrivals.end() && Clock::now() - oldest->since >= kEvictableAfter ? oldest : arrivals.end();
}

// How many bytes complete the first frame, from what has come so far: the
// header, then its payload. A header that does not decode is "whole" at
// once: its handler answers ERROR 1.
std::size_t first_frame_size(const std::string& bytes) {
    if (bytes.size() < wire::kRequestHeaderSize) return wire::kRequestHeaderSize;
    const auto header = wire::decode_request_header(reinterpret_cast<const std::uint8_t*>(bytes.data()));
    return header.ok() ? wire::kRequestHeaderSize + wire::payload_size(header.value()) : bytes.size();
}

class AcceptorProcess {
public:
    AcceptorProcess(Fd listener, Fd channel, AcceptorSetup setup, int deadline_ms)
        : listener_(std::move(listener)), channel_(std::move(channel)), setup_(setup), deadline_ms_(deadline_ms),
          signals_(SignalPipe::install({SIGCHLD})) {}

    int run();

private:
    bool accepting(bool may_evict) const;
    int next_deadline_ms() const;
    void accept_clients(bool may_evict = true);
    void make_room();
    void read_arrival(Arrival& arrival);
    void expire_arrivals();
    void start_handlers();
    bool spawn_handler(Arrival& arrival);
    [[noreturn]] void become_handler(Arrival& arrival, Fd to_coordinator, Fd from_coordinator);
    void reap_handlers();
    void wait_for_handlers();

    Fd listener_;
    Fd channel_;
    AcceptorSetup setup_;
    int deadline_ms_;
    SignalPipe signals_;
    std::set<pid_t> handlers_;    // forked and not yet reaped
    std::list<Arrival> arrivals_; // oldest first
    Backoff accept_backoff_;
    Backoff fork_backoff_;
};

// The coordinator never writes on the channel: the channel turning readable
// means it shut its end (SIGTERM) or is gone. Either way: stop. Each round
// polls the channel, the handlers' exits, the listener (while there is room)
// and every arrival still incomplete, and wakes for the nearest deadline.
int AcceptorProcess::run() {
    int code = 0;
    std::vector<pollfd> ready;
    std::vector<Arrival*> watched;
    for (;;) {
        ready.assign({{channel_.get(), POLLIN, 0}, {signals_.fd(), POLLIN, 0}, {accepting(true) ? listener_.get() : -1, POLLIN, 0}});
        watched.clear();
        for (Arrival& arrival : arrivals_) {
            if (arrival.whole) continue;
            ready.push_back({arrival.client.get(), POLLIN, 0});
            watched.push_back(&arrival);
        }
        if (::poll(ready.data(), ready.size(), next_deadline_ms()) < 0) {
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
        for (std::size_t i = 0; i < watched.size(); ++i)
            if (ready[3 + i].revents != 0) read_arrival(*watched[i]);
        expire_arrivals();
        if (ready[2].revents != 0) accept_clients();
        start_handlers();
    }
    listener_.reset();
    arrivals_.clear(); // closed unanswered: the clients reconnect to the restarted server
    ::shutdown(channel_.get(), SHUT_WR); // "no more handlers": the coordinator reads the end of the channel
    wait_for_handlers();
    return code;
}

// Room for one more arrival: fewer than max_arrivals, or an incomplete one
// old enough to evict. Not while a resource error pauses accepting.
bool AcceptorProcess::accepting(bool may_evict) const {
    if (accept_backoff_.paused()) return false;
    if (arrivals_.size() < static_cast<std::size_t>(setup_.max_arrivals)) return true;
    return may_evict && evictable(arrivals_) != arrivals_.end();
}

// The nearest of: an incomplete arrival's deadline, the end of a pause.
int AcceptorProcess::next_deadline_ms() const {
    int wait = -1;
    const auto sooner = [&wait](Clock::time_point when) {
        const int ms = ms_until(when);
        wait = wait < 0 ? ms : std::min(wait, ms);
    };
    for (const Arrival& arrival : arrivals_)
        if (!arrival.whole) sooner(arrival.deadline);
    const auto oldest = oldest_incomplete(arrivals_);
    if (arrivals_.size() >= static_cast<std::size_t>(setup_.max_arrivals) && oldest != arrivals_.end() &&
        oldest->since + kEvictableAfter > Clock::now())
        sooner(oldest->since + kEvictableAfter); // the listener waits for it to become evictable
    if (accept_backoff_.paused()) sooner(accept_backoff_.until());
    if (fork_backoff_.paused()) sooner(fork_backoff_.until());
    return wait;
}

// Takes the connections already waiting while there is room: with a small
// listen backlog, a burst of agencies would otherwise overflow it and wait
// for a SYN retry.
void AcceptorProcess::accept_clients(bool may_evict) {
    while (accepting(may_evict)) {
        std::string peer;
        Fd client = accept_connection(listener_.get(), peer);
        if (!client) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) return;
            if (accept_backoff_.failed()) // EMFILE, ENFILE, ENOBUFS, ENOMEM: the listener stays readable
                log_action(LogLevel::error, "accept", Outcome::fail,
                           {{"error", errno_text("accept")}, {"pause_ms", accept_backoff_.pause_ms()}});
            return;
        }
        accept_backoff_.succeeded();
        log_action(LogLevel::debug, "arrival", Outcome::in_progress, {{"peer", peer}});
        set_non_blocking(client.get());
        set_keepalive(client.get());
        make_room();
        const auto now = Clock::now();
        arrivals_.push_back({std::move(client), std::move(peer), {}, now,
                             now + std::chrono::milliseconds(setup_.first_frame_timeout_ms), false});
    }
}

// At max_arrivals, the oldest arrival still incomplete after
// kEvictableAfter makes way: a flood of silent connections cannot keep a
// real agency, which sends its first frame at once, out.
void AcceptorProcess::make_room() {
    if (arrivals_.size() < static_cast<std::size_t>(setup_.max_arrivals)) return;
    const auto oldest = evictable(arrivals_);
    if (oldest == arrivals_.end()) return;
    log_action(LogLevel::warning, "arrival_evicted", Outcome::success,
               {{"peer", oldest->peer}, {"max_arrivals", setup_.max_arrivals}});
    arrivals_.erase(oldest);
}

// Reads what the arrival sent, up to the end of its first frame (the rest
// is its handler's to read). A peer that leaves is forgotten.
void AcceptorProcess::read_arrival(Arrival& arrival) {
    for (std::size_t want; !arrival.whole && (want = first_frame_size(arrival.bytes)) > arrival.bytes.size();) {
        char chunk[wire::kMaxFrame];
        const ssize_t got = ::recv(arrival.client.get(), chunk, std::min(sizeof chunk, want - arrival.bytes.size()), 0);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (got <= 0) { // gone: quietly if it sent nothing (a port probe), with a warning mid-frame
            if (arrival.bytes.empty())
                log_action(LogLevel::debug, "client_closed", Outcome::success, {{"peer", arrival.peer}});
            else
                log_action(LogLevel::warning, "read_first_frame", Outcome::fail,
                           {{"peer", arrival.peer}, {"error", "peer closed mid-frame"}, {"bytes", arrival.bytes.size()}});
            arrival.client.reset();
            return;
        }
        arrival.bytes.append(chunk, static_cast<std::size_t>(got));
    }
    arrival.whole = true;
}

// Drops the arrivals that left, and those whose first frame did not come
// whole in time.
void AcceptorProcess::expire_arrivals() {
    const auto now = Clock::now();
    for (auto arrival = arrivals_.begin(); arrival != arrivals_.end();) {
        const bool late = !arrival->whole && arrival->deadline <= now;
        if (late)
            log_action(LogLevel::warning, "first_frame_timeout", Outcome::success,
                       {{"peer", arrival->peer}, {"bytes", arrival->bytes.size()},
                        {"seconds", setup_.first_frame_timeout_ms / 1000}});
        arrival = (late || !arrival->client) ? arrivals_.erase(arrival) : std::next(arrival);
    }
}

// Whole first frames get handlers, oldest first, while fewer than
// max_handlers run (and fork is not paused after a failure). The listen
// queue is emptied between forks: a fork takes a fraction of a
// millisecond, and the kernel drops the SYNs that find the queue (the
// listen backlog, 5 by default) full, which then wait a second or more.
void AcceptorProcess::start_handlers() {
    for (auto arrival = arrivals_.begin(); arrival != arrivals_.end();) {
        if (handlers_.size() >= static_cast<std::size_t>(setup_.max_handlers) || fork_backoff_.paused()) return;
        if (!arrival->whole) {
            ++arrival;
            continue;
        }
        if (!spawn_handler(*arrival)) return; // it stays, for the next try
        arrival = arrivals_.erase(arrival);
        accept_clients(/*may_evict=*/false); // `arrival` stays valid
    }
}

// Forks the handler of `arrival` with two pipes, requests up and replies
// down, and hands the coordinator's ends to it. The acceptor's copies of
// those ends and of the client close when the arrival goes. False when the
// fork (or a pipe) failed for lack of a resource: tried again after a pause.
bool AcceptorProcess::spawn_handler(Arrival& arrival) {
    Pipe requests, replies;
    const bool piped = make_pipe(requests) && make_pipe(replies);
    const pid_t pid = piped ? ::fork() : -1;
    if (pid < 0) {
        if (fork_backoff_.failed())
            log_action(LogLevel::error, "fork", Outcome::fail,
                       {{"peer", arrival.peer}, {"error", errno_text(piped ? "fork" : "pipe")},
                        {"pause_ms", fork_backoff_.pause_ms()}});
        return false;
    }
    if (pid == 0) become_handler(arrival, std::move(requests.write_end), std::move(replies.read_end));
    fork_backoff_.succeeded();
    handlers_.insert(pid);
    // Logged before the coordinator can hear of the handler, so that the
    // line comes before anything the handler's requests make it log.
    log_action(LogLevel::info, "accept", Outcome::success, {{"peer", arrival.peer}, {"handler_pid", pid}});
    if (!send_new_handler(channel_.get(), pid, arrival.peer, requests.read_end.get(), replies.write_end.get())) {
        // The coordinator is gone or stopping: with our copies of its ends
        // closed, the handler reads EOF on its reply pipe and exits.
        log_action(LogLevel::error, "pass_handler", Outcome::fail, {{"peer", arrival.peer}, {"error", errno_text("sendmsg")}});
    }
    return true;
}

// In the forked child: keep only the client, the handler's two pipe ends
// and the channel (for a WINNERS that must wait for the draw); the acceptor
// holds just the listener and the arrivals besides, so this costs the same
// however many connections are open. Then serve, from the first frame.
void AcceptorProcess::become_handler(Arrival& arrival, Fd to_coordinator, Fd from_coordinator) {
    signals_.uninstall();
    ::signal(SIGTERM, SIG_DFL); // SIGINT stays ignored: a terminal's Ctrl-C reaches the coordinator, which stops us
    close_descriptors_except({arrival.client.get(), to_coordinator.get(), from_coordinator.get(), channel_.get()});
    Handler handler(HandlerSetup{std::move(arrival.client), arrival.peer, std::move(to_coordinator),
                                 std::move(from_coordinator), std::move(channel_), std::move(arrival.bytes),
                                 setup_.agencies, setup_.idle_timeout_ms, setup_.frame_timeout_ms});
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
