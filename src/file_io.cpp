#include "chainrule/file_io.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <new>
#include <vector>

#include "chainrule/buffer.hpp"
#include "chainrule/error.hpp"
#include "chainrule/threads.hpp"

namespace chainrule {

namespace {

std::string errno_text(int e) {
  return std::strerror(e);
}

// "/a/b/c" -> "/a/b", "c" -> "."
std::string directory_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::uint64_t read_number_file(const char* path) {
  std::ifstream in(path);
  std::string s;
  if (!(in >> s)) return UINT64_MAX;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() ? v : UINT64_MAX;  // "max": no limit
}

// zlib's message without the "<fd:N>: " it puts before it for a gzdopen'ed descriptor.
std::string zlib_message(const char* msg) {
  std::string m = msg ? msg : "";
  if (m.rfind("<fd:", 0) == 0 && m.find(">: ") != std::string::npos)
    m = m.substr(m.find(">: ") + 3);
  return m;
}

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISFIFO(mode)) return "a pipe";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

std::uint64_t available_memory() {
  std::uint64_t avail = UINT64_MAX;
  {
    std::ifstream in("/proc/meminfo");
    std::string key;
    std::uint64_t kib = 0;
    std::string unit;
    while (in >> key >> kib >> unit)
      if (key == "MemAvailable:") {
        avail = kib * 1024;
        break;
      }
  }
  for (const int resource : {RLIMIT_AS, RLIMIT_DATA}) {
    struct rlimit rl {};
    if (::getrlimit(resource, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
      avail = std::min<std::uint64_t>(avail, rl.rlim_cur);
  }
  const std::uint64_t cgroup = read_number_file("/sys/fs/cgroup/memory.max");
  if (cgroup != UINT64_MAX) {
    const std::uint64_t used = read_number_file("/sys/fs/cgroup/memory.current");
    avail = std::min(avail, used < cgroup ? cgroup - used : 0);
  }
  return avail == UINT64_MAX ? std::uint64_t(1) << 32 : avail;
}

std::uint64_t default_max_input_bytes() {
  return available_memory() / 2;
}

std::string format_bytes(std::uint64_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
  else
    std::snprintf(buf, sizeof buf, "%.*f %s", v < 10 ? 2 : 1, v, units[u]);
  return buf;
}

std::uint64_t parse_bytes(std::string_view text) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  std::string_view suffix(end, std::size_t(text.data() + text.size() - end));
  double scale = 1;
  if (suffix.size() == 1 || (suffix.size() == 3 && suffix.substr(1) == "iB") ||
      (suffix.size() == 2 && (suffix[1] == 'B' || suffix[1] == 'b'))) {
    switch (suffix[0]) {
      case 'k':
      case 'K':
        scale = 1024.0;
        break;
      case 'm':
      case 'M':
        scale = 1024.0 * 1024;
        break;
      case 'g':
      case 'G':
        scale = 1024.0 * 1024 * 1024;
        break;
      case 't':
      case 'T':
        scale = 1024.0 * 1024 * 1024 * 1024;
        break;
      default:
        scale = 0;
    }
    suffix = {};
  }
  if (ec != std::errc() || !suffix.empty() || scale == 0 || !(v > 0) || v * scale > 1e18)
    throw ConfigError("'" + std::string(text) +
                      "' is not a size: expected a positive number of bytes, optionally with "
                      "K, M, G or T (powers of 1024), such as 512M or 4G");
  return std::uint64_t(v * scale);
}

// ---- reading ------------------------------------------------------------------------------

namespace {
// From this size on, an uncompressed regular file is read in byte ranges on several threads
// (read_all's `threads`): below it a thread costs more than it saves.
constexpr std::uint64_t kParallelReadBytes = std::uint64_t(16) << 20;

DataError changed_while_read(const std::string& path) {
  return DataError(path +
                   ": the file changed while it was being read: expected it to stay as it is "
                   "(copy it first if another program is writing it)");
}
}  // namespace

InputFile::InputFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd_ < 0) throw DataError(path + ": cannot open the file: " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int e = errno;
    ::close(fd_);
    throw DataError(path + ": cannot read the file: " + errno_text(e));
  }
  if (S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode)) {
    ::close(fd_);
    throw DataError(path + ": " + kind_of(st.st_mode) +
                    ", not a data file: expected a file, a pipe or standard input");
  }
  regular_ = S_ISREG(st.st_mode);
  size_ = std::uint64_t(st.st_size);
  mtime_ns_ = std::int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  // zlib reads through its own descriptor, so that closing it leaves ours to close.
  const int gz_fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  gzFile gz = gz_fd >= 0 ? gzdopen(gz_fd, "rb") : nullptr;
  if (gz == nullptr) {
    if (gz_fd >= 0) ::close(gz_fd);
    ::close(fd_);
    throw DataError(path + ": cannot open the file: out of memory or descriptors");
  }
  gzbuffer(gz, 1 << 17);
  gz_ = gz;
}

InputFile::~InputFile() {
  if (gz_ != nullptr) gzclose_r(static_cast<gzFile>(gz_));
  if (fd_ >= 0) ::close(fd_);
}

std::size_t InputFile::read(char* dst, std::size_t n) {
  gzFile gz = static_cast<gzFile>(gz_);
  std::size_t done = 0;
  while (done < n) {
    const unsigned ask = unsigned(std::min<std::size_t>(n - done, 1u << 30));
    const int got = gzread(gz, dst + done, ask);
    if (got < 0) {
      int code = 0;
      const char* msg = gzerror(gz, &code);
      if (code == Z_ERRNO) throw DataError(path_ + ": cannot read the file: " + errno_text(errno));
      throw DataError(path_ + ": cannot read the file: " + zlib_message(msg));
    }
    if (got == 0) {
      int code = 0;
      const char* msg = gzerror(gz, &code);
      if (code != Z_OK)
        throw DataError(path_ +
                        ": the compressed file is damaged or cut short: " + zlib_message(msg));
      break;
    }
    done += std::size_t(got);
  }
  return done;
}

std::size_t InputFile::reserve(Bytes& b, std::uint64_t bytes) const {
  char* p = static_cast<char*>(std::realloc(b.data_.get(), std::size_t(bytes)));
  if (p == nullptr)
    throw LimitError(path_ + ": out of memory reading " + format_bytes(bytes) + " of data",
                     "memory");
  (void)b.data_.release();
  b.data_.reset(p);
  return std::size_t(bytes);
}

Bytes InputFile::read_all(std::uint64_t max_bytes, bool stop_at_nul, int threads) {
  if (max_bytes == 0) max_bytes = default_max_input_bytes();
  const auto too_large = [&] {
    return LimitError(path_ + ": the data is larger than the input size limit of " +
                          format_bytes(max_bytes) + " (by default half the memory available)",
                      "max_input_bytes");
  };
  Bytes out;
  std::size_t capacity = 0;
  const auto grow = [&](std::uint64_t want) {
    // One byte more than the limit tells that the limit is hit.
    capacity = reserve(out, std::min<std::uint64_t>(want, max_bytes + 1));
  };
  // A regular file is read into a buffer of its size (plus one byte, to see that it grew).
  grow(std::max<std::uint64_t>(regular_ ? size_ + 1 : 0, std::uint64_t(1) << 16));
  if (threads > 1 && regular_ && size_ >= kParallelReadBytes && size_ <= max_bytes) {
    // The first bytes through zlib, which tells whether the file is compressed; the rest of an
    // uncompressed one in `threads` byte ranges at once, each with pread at its own offset: the
    // copies out of the page cache and the first writes to the buffer's pages (half of the
    // reading time of W5's 100 MB file) run side by side.
    out.size_ = read(out.data_.get(), std::size_t(1) << 16);
    if (gzdirect(static_cast<gzFile>(gz_)) == 1 && out.size_ == (std::size_t(1) << 16)) {
      const std::size_t from = out.size_, to = std::size_t(size_);
      std::vector<int> failure(std::size_t(threads), 0);  // errno, or -1 for an early end
      detail::run_spans(std::size_t(threads), [&](std::size_t k) {
        std::size_t at = from + (to - from) * k / std::size_t(threads);
        const std::size_t end = from + (to - from) * (k + 1) / std::size_t(threads);
        while (at < end) {
          const ssize_t got =
              ::pread(fd_, out.data_.get() + at,
                      std::min<std::size_t>(end - at, std::size_t(1) << 30), off_t(at));
          if (got < 0 && errno == EINTR) continue;
          if (got <= 0) {
            failure[k] = got < 0 ? errno : -1;
            return;
          }
          at += std::size_t(got);
        }
      });
      for (const int e : failure)
        if (e > 0) throw DataError(path_ + ": cannot read the file: " + errno_text(e));
      char more;
      if (std::find(failure.begin(), failure.end(), -1) != failure.end() ||
          ::pread(fd_, &more, 1, off_t(to)) != 0)
        throw changed_while_read(path_);
      out.size_ = to;
      check_unchanged();
      return out;
    }
  }
  for (;;) {
    if (out.size_ == capacity) {
      if (capacity > max_bytes) throw too_large();
      grow(std::max<std::uint64_t>(std::uint64_t(capacity) * 2, capacity + (1 << 16)));
    }
    const std::size_t chunk = std::min<std::size_t>(capacity - out.size_, std::size_t(1) << 24);
    const std::size_t got = read(out.data_.get() + out.size_, chunk);
    const bool nul = stop_at_nul && std::memchr(out.data_.get() + out.size_, 0, got) != nullptr;
    out.size_ += got;
    if (out.size_ > max_bytes) throw too_large();
    if (got < chunk || nul) break;
  }
  check_unchanged();
  return out;
}

Bytes InputFile::read_up_to(std::uint64_t n) {
  // From 1 MiB, room for all n at once in 2 MiB blocks that ask for huge pages (buffer.hpp):
  // Fashion-MNIST's 47 MB of pixels, grown by doubling and faulted in 4 KiB at a time, took about
  // 0.1 s of the 0.3 s read on the virtual machines of this project's sessions. Only where the
  // file can hold n bytes: a regular file of that size, or a compressed one from which deflate's
  // largest ratio (1032:1) could give them. A header that promises gigabytes over a short file or
  // a pipe asks for nothing it cannot fill: the buffer grows as the data arrives.
  constexpr std::uint64_t kMaxDeflateRatio = 1032;
  const std::uint64_t can_hold =
      !regular_        ? 0
      : gz_ == nullptr ? size_
      : size_ > std::numeric_limits<std::uint64_t>::max() / kMaxDeflateRatio
          ? std::numeric_limits<std::uint64_t>::max()
          : size_ * kMaxDeflateRatio;
  Bytes out;
  std::uint64_t capacity = 0;
  if (n >= detail::kPagedBytes && n <= can_hold) {
    try {  // (allocate_pages throws bad_alloc for a size no allocation can have)
      out.data_.reset(static_cast<char*>(detail::allocate_pages(std::size_t(n))));  // free()able
      capacity = n;
    } catch (const std::bad_alloc&) {
    }
  }
  while (out.size_ < n) {
    if (out.size_ == capacity)
      capacity =
          reserve(out, std::min<std::uint64_t>(n, std::max<std::uint64_t>(2 * capacity, 1 << 20)));
    const std::size_t chunk = std::size_t(capacity - out.size_);
    const std::size_t got = read(out.data_.get() + out.size_, chunk);
    out.size_ += got;
    if (got < chunk) break;
  }
  return out;
}

void InputFile::check_unchanged() const {
  if (!regular_) return;
  struct stat st {};
  if (::fstat(fd_, &st) != 0)
    throw DataError(path_ + ": cannot read the file: " + errno_text(errno));
  const std::int64_t mtime = std::int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (std::uint64_t(st.st_size) != size_ || mtime != mtime_ns_) throw changed_while_read(path_);
}

Bytes read_file(const std::string& path, std::uint64_t max_bytes) {
  InputFile in(path);
  return in.read_all(max_bytes);
}

// ---- writing ------------------------------------------------------------------------------

void write_all(int fd, std::string_view bytes, const std::string& what) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done,
                              std::min<std::size_t>(bytes.size() - done, std::size_t(1) << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(what + ": cannot write: " + errno_text(errno));
    }
    if (n == 0) throw Error(what + ": cannot write: the device accepts no more data");
    done += std::size_t(n);
  }
}

namespace {

// What is at `path` now, symlinks followed: the final path (for a symlink, its target) and
// whether anything exists there. Throws Error for what may not be replaced.
struct Existing {
  std::string target;
  bool exists = false;
  struct stat st {};
};

Existing existing(const std::string& path, const std::string& role) {
  Existing e;
  e.target = path;
  struct stat lst {};
  if (::lstat(path.c_str(), &lst) != 0) {
    if (errno != ENOENT) throw Error(path + ": cannot write " + role + ": " + errno_text(errno));
    return e;
  }
  if (S_ISLNK(lst.st_mode)) {
    char* resolved = ::realpath(path.c_str(), nullptr);
    if (resolved == nullptr)
      throw Error(path + ": a symbolic link to a missing or unreachable file: refusing to write " +
                  role + " through it");
    e.target = resolved;
    std::free(resolved);
    if (::stat(e.target.c_str(), &e.st) != 0)
      throw Error(path + ": cannot write " + role + ": " + errno_text(errno));
  } else {
    e.st = lst;
  }
  e.exists = true;
  return e;
}

void check_directory(const std::string& path, const std::string& target, const std::string& role) {
  const std::string dir = directory_of(target);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    throw Error(path + ": cannot write " + role + ": the directory " + dir +
                (errno == ENOENT ? " does not exist" : ": " + errno_text(errno)));
  if (!S_ISDIR(st.st_mode))
    throw Error(path + ": cannot write " + role + ": " + dir + " is not a directory");
  if (::access(dir.c_str(), W_OK) != 0)
    throw Error(path + ": cannot write " + role + " in " + dir + ": " + errno_text(errno));
}

bool is_stream(mode_t mode) {
  return S_ISCHR(mode) || S_ISFIFO(mode);
}

}  // namespace

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {
  }, sb{};
  return !a.empty() && !b.empty() && ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 &&
         sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

void check_writable(const std::string& path, const std::string& role, bool stream_ok) {
  if (path.empty()) throw Error("an empty file name for " + role);
  const Existing e = existing(path, role);
  if (e.exists && !S_ISREG(e.st.st_mode) && !(stream_ok && is_stream(e.st.st_mode)))
    throw Error(path + ": " + kind_of(e.st.st_mode) + ", not a regular file: refusing to write " +
                role + " over it");
  if (!e.exists || S_ISREG(e.st.st_mode)) check_directory(path, e.target, role);
  if (e.exists && S_ISREG(e.st.st_mode) && ::access(e.target.c_str(), W_OK) != 0)
    throw Error(path + ": cannot write " + role + ": " + errno_text(errno));
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  const std::string role = "the file";
  const Existing e = existing(path, role);
  if (e.exists && !S_ISREG(e.st.st_mode))
    throw Error(path + ": " + kind_of(e.st.st_mode) +
                ", not a regular file: refusing to replace it");
  check_directory(path, e.target, role);
  // mkostemp creates the name with O_EXCL: a file or symlink planted there makes it pick another.
  std::string tmp = directory_of(e.target) + "/." + base_name(e.target) + ".tmp.XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot write: " + errno_text(errno));
  try {
    const mode_t mode = e.exists ? (e.st.st_mode & 07777) : 0644;
    if (::fchmod(fd, mode) != 0) throw Error(path + ": cannot write: " + errno_text(errno));
    write_all(fd, bytes, path);
    if (::fsync(fd) != 0) throw Error(path + ": cannot write: " + errno_text(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(path + ": cannot write: " + errno_text(err));
  }
  if (std::rename(tmp.c_str(), e.target.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(path + ": cannot replace the file: " + errno_text(err));
  }
}

int open_output_stream(const std::string& path, bool append) {
  const std::string role = "the output";
  const Existing e = existing(path, role);
  if (e.exists && !S_ISREG(e.st.st_mode) && !is_stream(e.st.st_mode))
    throw Error(path + ": " + kind_of(e.st.st_mode) + ", not a regular file: refusing to write " +
                "to it");
  const int flags = e.exists && is_stream(e.st.st_mode)
                        ? O_WRONLY | O_CLOEXEC | O_NOCTTY
                        : O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | (append ? O_APPEND : O_TRUNC);
  const int fd = ::open(e.target.c_str(), flags, 0644);
  if (fd < 0) throw Error(path + ": cannot write: " + errno_text(errno));
  return fd;
}

void write_output(const std::string& path, std::string_view bytes) {
  const Existing e = existing(path, "the output");
  if (!e.exists || !is_stream(e.st.st_mode)) {
    write_file_atomically(path, bytes);
    return;
  }
  const int fd = open_output_stream(path, false);
  try {
    write_all(fd, bytes, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) throw Error(path + ": cannot write: " + errno_text(errno));
}

}  // namespace chainrule
