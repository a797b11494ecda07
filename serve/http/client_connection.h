// Whether an HTTP client is still there, for replies written only at the end (a non-streamed completion) or not yet
// begun (a stream whose sequence waits in the queue). cpp-httplib 0.11 gives a handler no socket and reports a
// closed connection only when a write fails, so the handler finds its own connection's socket: the one whose local
// and peer addresses are the request's (the pair names one TCP connection). It stays open, and ours, until the
// handler returns.
#pragma once
#include <string>

namespace linspec::serve {

class ClientConnection {
 public:
  ClientConnection(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port);
  // False once the peer has closed (or half-closed) the connection or it broke. True when the socket was not found:
  // then nothing can be told, and the request runs to completion as it did before this check existed.
  bool alive() const;
  bool found() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace linspec::serve
