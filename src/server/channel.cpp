// The coordinator's channel (see channel.hpp).
#include "server/channel.hpp"

#include "common/log.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace {

enum class Kind : std::int32_t { new_handler = 1, waiting_agency = 2 };

// One message, either kind; its descriptors travel beside it.
struct Message {
    Kind kind;
    std::int32_t pid;      // new_handler
    std::uint32_t agency;  // waiting_agency
    char peer[64];         // NUL-terminated "ip:port" (IPv4: at most 21 characters)
};
constexpr std::size_t kMaxPassedFds = 2;

std::size_t passed_fds_of(Kind kind) { return kind == Kind::new_handler ? 2 : 1; }

// The control buffer for up to kMaxPassedFds descriptors, aligned for cmsghdr.
union PassedFdsBuffer {
    char bytes[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
    cmsghdr align;
};

// A message header for one Message and its control buffer.
msghdr header_for(iovec& data, PassedFdsBuffer& control, std::size_t control_bytes) {
    msghdr header{};
    header.msg_iov = &data;
    header.msg_iovlen = 1;
    header.msg_control = control.bytes;
    header.msg_controllen = control_bytes;
    return header;
}

bool send_message(int channel, Message message, const std::string& peer, const int* fds, std::size_t count) {
    peer.copy(message.peer, sizeof message.peer - 1);
    iovec data{&message, sizeof message};
    PassedFdsBuffer control{};
    msghdr header = header_for(data, control, CMSG_SPACE(sizeof(int) * count));
    cmsghdr* rights = CMSG_FIRSTHDR(&header);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(sizeof(int) * count);
    std::memcpy(CMSG_DATA(rights), fds, sizeof(int) * count);
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

} // namespace

// Blocking: if the coordinator is slow to read, the acceptor waits for it
// (and new connections wait in the listen backlog) rather than fork more.
bool send_new_handler(int channel, pid_t pid, const std::string& peer, int from_handler, int to_handler) {
    const int fds[] = {from_handler, to_handler};
    return send_message(channel, Message{Kind::new_handler, pid, 0, {}}, peer, fds, 2);
}

bool send_waiting_agency(int channel, std::uint32_t agency, const std::string& peer, int client) {
    return send_message(channel, Message{Kind::waiting_agency, 0, agency, {}}, peer, &client, 1);
}

Received receive_from_channel(int channel, NewHandler& handler, WaitingAgency& waiting) {
    Message message{};
    iovec data{&message, sizeof message};
    PassedFdsBuffer control{};
    msghdr header = header_for(data, control, sizeof control.bytes);
    ssize_t got;
    do got = ::recvmsg(channel, &header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (got < 0 && errno == EINTR);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Received::nothing_yet;
    if (got < 0) {
        log_action(LogLevel::error, "receive_channel", Outcome::fail, {{"error", errno_text("recvmsg")}});
        return Received::ended;
    }
    std::vector<Fd> passed = take_passed_fds(header);
    if (got == 0) return Received::ended;
    if (header.msg_flags & MSG_CTRUNC) { // no room for its descriptors here (EMFILE): this one is lost
        log_action(LogLevel::error, "receive_channel", Outcome::fail,
                   {{"error", "descriptors dropped (open-file limit?)"}});
        return Received::dropped;
    }
    const bool known = message.kind == Kind::new_handler || message.kind == Kind::waiting_agency;
    if (got != static_cast<ssize_t>(sizeof message) || !known || passed.size() != passed_fds_of(message.kind)) {
        log_action(LogLevel::error, "receive_channel", Outcome::fail, {{"error", "bad message on the channel"}});
        return Received::ended;
    }
    message.peer[sizeof message.peer - 1] = '\0';
    if (message.kind == Kind::waiting_agency) {
        waiting.agency = message.agency;
        waiting.peer = message.peer;
        waiting.client = std::move(passed[0]);
        return Received::waiting_agency;
    }
    handler.pid = message.pid;
    handler.peer = message.peer;
    handler.from_handler = std::move(passed[0]);
    handler.to_handler = std::move(passed[1]);
    return Received::new_handler;
}
